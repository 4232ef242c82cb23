"""Small helpers shared by the bench scripts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.live import _wait_for_port, free_port  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed_ms(call: Callable[[], object], runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def summary(timings: list[float]) -> str:
    return f"p50 {percentile(timings, 50):7.2f} ms   p95 {percentile(timings, 95):7.2f} ms"


class Orthanc:
    """An Orthanc server (Debian packages orthanc, orthanc-dicomweb) on loopback, for baselines."""

    BINARY = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

    #: Orthanc's DICOM (DIMSE) AE title when started with ``dicom=True``.
    AE_TITLE = "ORTHANC"

    #: The PostgreSQL index plugin (Debian package orthanc-postgresql), for ``database_url``.
    POSTGRESQL_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"

    def __init__(self, root: Path, *, dicom: bool = False, database_url: str = "") -> None:
        """``database_url``: a PostgreSQL database (``postgres://user@host:port/name``) for Orthanc's
        index (its files stay in ``root``), through the PostgreSQL index plugin; else its own SQLite."""
        self.root = root
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dicom_port = free_port() if dicom else None
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def available(cls, database_url: str = "") -> bool:
        plugins = [cls.PLUGIN] + ([cls.POSTGRESQL_PLUGIN] if database_url else [])
        return Path(cls.BINARY).exists() and all(Path(p).exists() for p in plugins)

    def start(self) -> None:
        config = {
            "Name": "bench",
            "HttpPort": self.port,
            "DicomServerEnabled": self.dicom_port is not None,
            **({"DicomPort": self.dicom_port, "DicomAet": self.AE_TITLE, "DicomAlwaysAllowStore": True,
                "DicomAlwaysAllowFind": True, "DicomCheckCalledAet": False} if self.dicom_port else {}),
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "index"),
            "Plugins": [self.PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "KeepAlive": True,
        }
        if self.database_url:
            parts = urlsplit(self.database_url)
            config["Plugins"].append(self.POSTGRESQL_PLUGIN)
            config["PostgreSQL"] = {
                "EnableIndex": True, "EnableStorage": False, "Host": parts.hostname or "127.0.0.1",
                "Port": parts.port or 5432, "Database": parts.path.lstrip("/"), "Username": parts.username or "postgres",
                "Password": parts.password or "", "EnableSsl": False, "Lock": False,
            }
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "orthanc.json").write_text(json.dumps(config))
        log = open(self.root / "orthanc.log", "wb")
        self.process = subprocess.Popen([self.BINARY, str(self.root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
        _wait_for_port(self.port, self.process)  # type: ignore[arg-type]
        if self.dicom_port is not None:
            _wait_for_port(self.dicom_port, self.process)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
