"""Real server processes for tests: daphne serving ``crossread.asgi:application`` on loopback.

The processes share a fresh data folder and database (SQLite file), set up with the same
management commands a deployment uses.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveSite:
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path, database_url: str = "", *, copy_of: Path | None = None, **extra_env: str) -> LiveSite:
        """A site in ``root``: its own SQLite file unless ``database_url`` names an empty database.

        ``copy_of``: the root of another SQLite site, whose commands have all ended: this one starts from a
        copy of its database and data folder instead of migrating an empty database (a site set up once for
        several, as :func:`demo_users_site`)."""
        root.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "CROSSREAD_PUBLIC_URL")}
        env.update(
            CROSSREAD_DATA_DIR=str(root / "data"),
            DATABASE_URL=database_url or f"sqlite:///{root / 'db.sqlite3'}",
            DJANGO_SETTINGS_MODULE="crossread.settings",
            PYTHONUNBUFFERED="1",
            **extra_env,
        )
        site = cls(root, env)
        if copy_of is None:
            site.manage("migrate", "--noinput")
        else:
            assert not database_url, "only a SQLite site is copied"
            site._copy_from(copy_of)
        if not site.debug:
            site.collect_static()
        return site

    @property
    def debug(self) -> bool:
        return self.env.get("DJANGO_DEBUG", "1").strip().lower() not in ("0", "false", "no", "off", "")

    def collect_static(self) -> None:
        """``collectstatic`` as a deployment runs it (DJANGO_DEBUG=0 pages name the collected, hashed
        files). Run once per test process: later sites get a copy of the first one's files."""
        target = Path(self.env["CROSSREAD_DATA_DIR"]) / "static-root"
        if _collected:
            shutil.copytree(_collected[0], target, dirs_exist_ok=True)
            return
        self.manage("collectstatic", "--noinput")
        _collected.append(target)

    def _copy_from(self, source: Path) -> None:
        assert (source / "db.sqlite3").is_file(), f"no SQLite site in {source}"
        shutil.copytree(source / "data", Path(self.env["CROSSREAD_DATA_DIR"]), dirs_exist_ok=True)
        # SQLite's backup: a consistent copy, whatever is still in the source's write-ahead log.
        with closing(sqlite3.connect(source / "db.sqlite3")) as old, \
                closing(sqlite3.connect(self.root / "db.sqlite3")) as new:
            old.backup(new)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args],
            env=self.env, cwd=REPO, capture_output=True, text=True, timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def token(self, username: str) -> str:
        out = self.manage("drf_create_token", username)
        match = re.search(r"token ([0-9a-f]{40})", out)
        assert match, out
        return match.group(1)

    def start(self, count: int = 1, server: str = "daphne") -> list[str]:
        """Start ``count`` server processes (``daphne``, or ``uvicorn`` where installed)."""
        for _ in range(count):
            port = free_port()
            log = open(self.root / f"daphne-{port}.log", "wb")
            url = f"http://127.0.0.1:{port}"
            command = {
                "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port)],
                "uvicorn": ["-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            }[server]
            process = subprocess.Popen(
                [sys.executable, *command, "crossread.asgi:application"],
                # (a site behind a proxy names the proxy's URL in its environment)
                env={"CROSSREAD_PUBLIC_URL": url, **self.env}, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            )
            self.processes.append(process)
            _wait_for_port(port, process)
            self.urls.append(url)
        return self.urls

    def start_dicom(self, ae_title: str = "CROSSREAD", **extra_env: str) -> int:
        """Start ``manage.py dicom_listener`` (DIMSE) on a free port, with ``extra_env``; its port."""
        port = free_port()
        log = open(self.root / f"dicom-{port}.log", "wb")
        process = subprocess.Popen(
            [sys.executable, str(REPO / "manage.py"), "dicom_listener", "--port", str(port), "--ae-title", ae_title],
            env={**self.env, **extra_env}, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        _wait_for_port(port, process)
        return port

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


_collected: list[Path] = []

#: The site :func:`demo_users_site` set up, once per test process.
_demo_users: list[Path] = []


def demo_users_site(parent: Path) -> Path:
    """The root of a site, never started, migrated and with the demo project and users
    (``manage.py load_demo --no-studies``), set up once per test process in a new folder of ``parent``.
    A site starts from a copy of it with ``LiveSite.create(root, copy_of=demo_users_site(...))``: the
    rows those commands would write again (nothing they write depends on a site's environment)."""
    if not _demo_users:
        root = Path(tempfile.mkdtemp(prefix="demo-users-site-", dir=parent))
        LiveSite.create(root).manage("load_demo", "--no-studies")
        _demo_users.append(root)
    return _demo_users[0]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"daphne did not listen on {port} within {timeout} s")
