"""Ingest and search over real HTTP on loopback, Crossread against Orthanc (the baseline) in one run.

Prints, for each server:
- STOW-RS instances per second for the 120-slice 512x512 phantom CT series (one request, and in
  batches of 10);
- QIDO-RS latency (p50, p95) for common searches with at least 10,000 instances indexed (the same
  synthetic instances, stored through STOW-RS into both);
- DIMSE: dcmtk's storescu sending another 120-slice phantom series to Crossread's listener
  (``manage.py dicom_listener``) and to Orthanc's DICOM port (instances/s, one association), and
  findscu latency (p50, p95; each run a process and an association, as a workstation's query) for
  study searches over the same index.

Usage: .venv/bin/python bench/ingest.py [--instances 10000] [--queries 50]
Needs Debian's orthanc and orthanc-dicomweb for the baseline (skipped, with a note, if absent).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Orthanc, percentile  # noqa: E402
from tests.factories.dicom import ct_bytes  # noqa: E402
from tests.live import LiveSite  # noqa: E402
from tests.viewer.dicomweb_helpers import stow_body  # noqa: E402
from demo.phantom import write_phantom_studies  # noqa: E402


def synthetic_batches(count: int, size: int = 200) -> list[list[bytes]]:
    """Small CT instances, 10 per study, with varied names, IDs, dates and modalities."""
    batches = []
    for first in range(0, count, size):
        batch = []
        for n in range(first, min(count, first + size)):
            study = n // 10
            batch.append(
                ct_bytes(
                    PatientID=f"P{study % 2000:05d}",
                    PatientName=f"Bench^Patient{study % 2000:05d}",
                    StudyDate=f"2024{1 + study % 12:02d}{1 + study % 28:02d}",
                    StudyInstanceUID=f"1.2.826.0.1.3680043.8.498.1.{study}",
                    SeriesInstanceUID=f"1.2.826.0.1.3680043.8.498.2.{study}",
                    AccessionNumber=f"A{study:06d}",
                    Modality="CT" if study % 3 else "MR",
                )
            )
        batches.append(batch)
    return batches


SEARCHES = {
    "studies?PatientID=": ("studies", {"PatientID": "P00042"}),
    "studies?PatientName=Bench^Patient0004*": ("studies", {"PatientName": "Bench^Patient0004*"}),
    "studies?StudyDate=range": ("studies", {"StudyDate": "20240301-20240315"}),
    "studies?ModalitiesInStudy=MR&limit=100": ("studies", {"ModalitiesInStudy": "MR", "limit": 100}),
    "studies?AccessionNumber=": ("studies", {"AccessionNumber": "A000500"}),
    "studies (first 100)": ("studies", {"limit": 100}),
    "instances?SOPInstanceUID=": ("instances", None),
    "studies/{uid}/series": ("series-of-study", None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=10_000, help="instances to index before searching")
    parser.add_argument("--queries", type=int, default=50, help="repetitions of each search")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = write_phantom_studies(root / "phantom", slices=120)
        baseline = [p.read_bytes() for p in files[:120]]
        followup = [p.read_bytes() for p in files[120:240]]
        dimse_series = write_phantom_studies(root / "phantom-dimse", slices=120, seed=1)[:120]
        fill = synthetic_batches(max(0, args.instances - 240))

        site = LiveSite.create(root / "crossread")
        site.manage("load_demo", "--no-studies")
        ours = requests.Session()
        ours.headers["Authorization"] = f"Token {site.token('reader1')}"
        (server,) = site.start()
        dicom_port = site.start_dicom()
        servers = {"crossread": (ours, f"{server}/projects/demo/dicomweb")}
        orthanc = Orthanc(root / "orthanc", dicom=True) if Orthanc.available() else None
        if orthanc:
            orthanc.start()
            servers["orthanc"] = (requests.Session(), f"{orthanc.url}/dicom-web")
        else:
            print("(Orthanc is not installed: no baseline; apt-get install orthanc orthanc-dicomweb)")

        try:
            print(f"STOW-RS phantom CT, 120 x 512x512 ({sum(map(len, baseline)) / 1e6:.1f} MB per series), instances/s:")
            for name, (session, base) in servers.items():
                one = timed(lambda: stow(session, base, baseline))
                batched = timed(lambda: [stow(session, base, followup[i : i + 10]) for i in range(0, 120, 10)])
                print(f"  {name:<10} one request {120 / one:7.1f}   batches of 10 {120 / batched:7.1f}")

            print(f"\nIndexing {240 + sum(map(len, fill))} instances (small CTs in batches of 200), instances/s:")
            for name, (session, base) in servers.items():
                seconds = timed(lambda: [stow(session, base, batch) for batch in fill])
                print(f"  {name:<10} {sum(map(len, fill)) / seconds:7.1f}")

            print(f"\nQIDO-RS latency over HTTP, {args.queries} runs each, p50 / p95 in ms:")
            print(f"  {'search':<42}" + "".join(f"{name:>22}" for name in servers))
            totals: dict[str, list[float]] = {name: [] for name in servers}
            middle = (240 + sum(map(len, fill))) // 2
            some = ours.get(f"{servers['crossread'][1]}/instances", params={"limit": 1, "offset": middle}).json()[0]
            sop, study_uid = some["00080018"]["Value"][0], some["0020000D"]["Value"][0]
            for label, (path, params) in SEARCHES.items():
                line = f"  {label:<42}"
                for name, (session, base) in servers.items():
                    if path == "instances":
                        url, query = f"{base}/instances", {"SOPInstanceUID": sop}
                    elif path == "series-of-study":
                        url, query = f"{base}/studies/{study_uid}/series", {}
                    else:
                        url, query = f"{base}/{path}", params or {}
                    full = f"{url}?{urlencode(query, safe=',^*')}" if query else url  # Orthanc does not decode %5E
                    timings, count = [], 0
                    for _ in range(args.queries):
                        start = time.perf_counter()
                        response = session.get(full, headers={"Accept": "application/dicom+json"})
                        timings.append((time.perf_counter() - start) * 1000)
                        response.raise_for_status()
                        count = len(response.json()) if response.content else 0
                    totals[name] += timings
                    line += f"{percentile(timings, 50):8.1f} /{percentile(timings, 95):6.1f} ({count:3d})"
                print(line)
            line = f"  {'all searches':<42}"
            for name in servers:
                line += f"{percentile(totals[name], 50):8.1f} /{percentile(totals[name], 95):6.1f}      "
            print(line)

            if shutil.which("storescu") is None:
                print("\n(dcmtk is not installed: no DIMSE figures; apt-get install dcmtk)")
                return
            nodes = {"crossread": ("DEMO", dicom_port)}
            if orthanc and orthanc.dicom_port:
                nodes["orthanc"] = (Orthanc.AE_TITLE, orthanc.dicom_port)
            size = sum(p.stat().st_size for p in dimse_series) / 1e6
            print(f"\nDIMSE C-STORE (storescu, one association), phantom CT 120 x 512x512 ({size:.1f} MB), instances/s:")
            for name, (ae_title, port) in nodes.items():
                seconds = timed(lambda: dcmtk("storescu", ae_title, port, files=dimse_series))
                print(f"  {name:<10} {120 / seconds:7.1f}")
            print(f"\nDIMSE C-FIND latency (findscu: a process and an association each), {args.queries} runs, "
                  "p50 / p95 in ms:")
            print(f"  {'search':<42}" + "".join(f"{name:>22}" for name in nodes))
            for label, keys in FINDS.items():
                line = f"  {label:<42}"
                for name, (ae_title, port) in nodes.items():
                    timings = timed_runs(lambda: dcmtk("findscu", ae_title, port, "-S", *keys), args.queries)
                    line += f"{percentile(timings, 50):8.1f} /{percentile(timings, 95):6.1f}       "
                print(line)
        finally:
            site.stop()
            if orthanc:
                orthanc.stop()


#: C-FIND searches at the study level (Study Root), as findscu keys.
FINDS = {
    "STUDY PatientID=": ["-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=P00042", "-k", "StudyInstanceUID"],
    "STUDY PatientName=Bench^Patient0004*": ["-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName=Bench^Patient0004*",
                                             "-k", "StudyInstanceUID"],
    "STUDY AccessionNumber=": ["-k", "QueryRetrieveLevel=STUDY", "-k", "AccessionNumber=A000500",
                               "-k", "StudyInstanceUID"],
}


def dcmtk(tool: str, ae_title: str, port: int, *options: str, files: list[Path] = []) -> None:  # noqa: B006
    done = subprocess.run([tool, "-aet", "BENCH", "-aec", ae_title, *options, "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed: {done.stderr[-2000:]}")


def timed_runs(action: object, runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        timings.append(timed(action) * 1000)
    return timings


def stow(session: requests.Session, base: str, files: list[bytes]) -> None:
    body, content_type = stow_body(files)
    response = session.post(f"{base}/studies", data=body, headers={"Content-Type": content_type}, timeout=600)
    response.raise_for_status()


def timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
