"""Ingest and search over real HTTP on loopback, Crossread against Orthanc (the baseline) in one run.

Prints, for each server:
- STOW-RS instances per second for the 120-slice 512x512 phantom CT series (one request, and in
  batches of 10), the requests made beforehand, after one small untimed request to each server;
- QIDO-RS latency (p50, p95) for common searches with at least 10,000 instances indexed (the same
  synthetic instances, stored through STOW-RS into both);
- DIMSE: dcmtk's storescu sending another 120-slice phantom series to Crossread's listener
  (``manage.py dicom_listener``) and to Orthanc's DICOM port (instances/s, one association), and
  findscu latency (p50, p95; each run a process and an association, as a workstation's query) for
  study searches over the same index.

Usage: .venv/bin/python bench/ingest.py [--instances 10000] [--queries 50] [--database-url URL]
Needs Debian's orthanc and orthanc-dicomweb for the baseline (skipped, with a note, if absent).

Crossread is measured as deployed: ``DJANGO_DEBUG=0`` (with a secret key and allowed hosts, its static
files collected), one daphne process. Without ``--database-url`` both servers keep their index in
SQLite (Crossread's own file; Orthanc's default). With
``--database-url postgres://postgres@127.0.0.1:5432/crossread_bench`` Crossread's index is that
PostgreSQL database and Orthanc's a second one, ``<name>_orthanc``, through its PostgreSQL index
plugin (Debian's orthanc-postgresql); both are created (they must not exist) and dropped at the end,
and both are ANALYZEd before the searches (as autovacuum would do in time).
Each server stores its files on the local file system.

Search at scale, ``--index-only`` (Crossread alone, no Orthanc, no STOW-RS):

    .venv/bin/python bench/ingest.py --index-only --instances 1000000 \
        --database-url postgres://postgres@127.0.0.1:5432/crossread_scale

creates that database (it must not exist; it is dropped at the end), migrates it, loads the demo
project and users (``load_demo --no-studies``), indexes the synthetic instances straight into the
index in bulk (``manage.py fill_index``, :mod:`demo.scale`: studies of one series of 10 instances,
with the attributes of the stored ones above; rows only, no files), runs ANALYZE, and then times
over HTTP, as ``reader1``, the same searches plus the worklist's first page: the page itself (its
HTML, as a logged-in browser gets it) and the request ``static/viewer/worklist.js`` makes on
opening (up to 1,000 studies with their descriptions, in that session). Without
``--database-url`` the site uses its own SQLite file. ``--keep`` leaves the filled database;
``--reuse`` (same ``--instances``) measures it again without filling, e.g. another checkout's code.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

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
    # The same names, as Orthanc finds them too (it finds none with the "^" above).
    "studies?PatientName=Bench?Patient0004*": ("studies", {"PatientName": "Bench?Patient0004*"}),
    "studies?StudyDate=range": ("studies", {"StudyDate": "20240301-20240315"}),
    "studies?ModalitiesInStudy=MR&limit=100": ("studies", {"ModalitiesInStudy": "MR", "limit": 100}),
    "studies?AccessionNumber=": ("studies", {"AccessionNumber": "A000500"}),
    "studies (first 100)": ("studies", {"limit": 100}),
    "instances?SOPInstanceUID=": ("instances", None),
    "studies/{uid}/series": ("series-of-study", None),
}

#: Crossread's environment as deployed (docs/deployment.md): debugging off, a secret key, the hosts.
DEPLOYED = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-ingest-" + "k" * 51,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
}

#: The worklist's request on opening (static/viewer/worklist.js: ``MAX_RESULTS``, its one column
#: beyond the required ones); ``--index-only`` times it too.
WORKLIST = ("studies", {"limit": 1000, "includefield": "StudyDescription"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=10_000, help="instances to index before searching")
    parser.add_argument("--queries", type=int, default=50, help="repetitions of each search")
    parser.add_argument("--index-only", action="store_true",
                        help="index synthetic rows in bulk (no STOW-RS, no Orthanc) and time the searches")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL database to create, use and drop (and <name>_orthanc for Orthanc)")
    parser.add_argument("--keep", action="store_const", const="keep", dest="keep", default="",
                        help="with --database-url: leave the filled database")
    parser.add_argument("--reuse", action="store_const", const="reuse", dest="keep",
                        help="with --database-url: measure a database a --keep run left (same --instances)")
    args = parser.parse_args()
    if args.index_only:
        index_only(args.instances, args.queries, args.database_url, args.keep)
        return

    database_url = args.database_url
    orthanc_url = f"{database_url}_orthanc" if database_url else ""
    with tempfile.TemporaryDirectory() as tmp, scratch_database(database_url), scratch_database(orthanc_url):
        root = Path(tmp)
        files = write_phantom_studies(root / "phantom", slices=120)
        baseline = [p.read_bytes() for p in files[:120]]
        followup = [p.read_bytes() for p in files[120:240]]
        dimse_series = write_phantom_studies(root / "phantom-dimse", slices=120, seed=1)[:120]
        fill = synthetic_batches(max(0, args.instances - 240))
        # The requests are made before they are timed (the same bytes for both servers).
        whole_series = stow_body(baseline)
        series_in_tens = [stow_body(followup[i : i + 10]) for i in range(0, 120, 10)]
        fill_bodies = [stow_body(batch) for batch in fill]

        site = LiveSite.create(root / "crossread", database_url, **DEPLOYED)
        site.manage("load_demo", "--no-studies")
        ours = requests.Session()
        ours.headers["Authorization"] = f"Token {site.token('reader1')}"
        (server,) = site.start()
        dicom_port = site.start_dicom()
        servers = {"crossread": (ours, f"{server}/projects/demo/dicomweb")}
        orthanc = Orthanc(root / "orthanc", dicom=True, database_url=orthanc_url) if Orthanc.available(orthanc_url) else None
        if orthanc:
            orthanc.start()
            servers["orthanc"] = (requests.Session(), f"{orthanc.url}/dicom-web")
        else:
            print("(Orthanc is not installed: no baseline; apt-get install orthanc orthanc-dicomweb"
                  + (" orthanc-postgresql)" if orthanc_url else ")"))
        print(f"(index: {'PostgreSQL' if database_url else 'SQLite'}; Crossread as deployed, DJANGO_DEBUG=0)")

        try:
            warm_up = stow_body([ct_bytes(PatientID="WARMUP", PatientName="Warm^Up")])
            for session, base in servers.values():  # one small request first, not timed: steady state
                stow(session, base, warm_up)
            print(f"STOW-RS phantom CT, 120 x 512x512 ({sum(map(len, baseline)) / 1e6:.1f} MB per series), instances/s:")
            for name, (session, base) in servers.items():
                one = timed(lambda: stow(session, base, whole_series))
                batched = timed(lambda: [stow(session, base, body) for body in series_in_tens])
                print(f"  {name:<10} one request {120 / one:7.1f}   batches of 10 {120 / batched:7.1f}")

            print(f"\nIndexing {240 + sum(map(len, fill))} instances (small CTs in batches of 200), instances/s:")
            for name, (session, base) in servers.items():
                seconds = timed(lambda: [stow(session, base, body) for body in fill_bodies])
                print(f"  {name:<10} {sum(map(len, fill)) / seconds:7.1f}")

            for url in (database_url, orthanc_url):  # statistics for the planner, as autovacuum would in time
                analyze(url)
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
                    full = f"{url}?{urlencode(query, safe=',^*?')}" if query else url  # Orthanc does not decode %5E
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


def index_only(instances: int, queries: int, database_url: str, keep: str = "") -> None:
    """Searches over ``instances`` synthetic instances indexed directly (see the module's docstring).
    ``keep``: ``"keep"`` leaves the database, ``"reuse"`` measures one a ``keep`` run left."""
    with tempfile.TemporaryDirectory() as tmp, scratch_database(database_url, keep):
        site = LiveSite.create(Path(tmp) / "crossread", database_url)
        if keep != "reuse":
            site.manage("load_demo", "--no-studies")
            start = time.perf_counter()
            print(site.manage("fill_index", "--project", "demo", "--instances", str(instances)).strip())
            print(f"  (fill and VACUUM ANALYZE: {time.perf_counter() - start:.1f} s, "
                  f"on {database_url.split('://')[0] or 'sqlite'})")
        session = requests.Session()
        session.headers["Authorization"] = f"Token {site.token('reader1')}"
        (server,) = site.start()
        base = f"{server}/projects/demo/dicomweb"
        middle = {"AccessionNumber": f"A{instances // 10 // 2:06d}"}  # demo/scale.py's study numbers
        study_uid = session.get(f"{base}/studies", params=middle).json()[0]["0020000D"]["Value"][0]
        some = session.get(f"{base}/studies/{study_uid}/instances", params={"limit": 1}).json()[0]
        sop = some["00080018"]["Value"][0]
        searches = {**SEARCHES, "worklist first page (limit=1000)": WORKLIST, "worklist page (HTML)": ("page", None)}
        browser = logged_in(server, "reader1", "demo-reader1-pass")  # the worklist's own requests
        try:
            print(f"\nQIDO-RS latency over HTTP, {instances} instances indexed, {queries} runs each, p50 / p95 in ms:")
            everything: list[float] = []
            for label, (path, params) in searches.items():
                if path == "instances":
                    url, query = f"{base}/instances", {"SOPInstanceUID": sop}
                elif path == "series-of-study":
                    url, query = f"{base}/studies/{study_uid}/series", {}
                elif path == "page":
                    url, query = f"{server}/projects/demo/", {}
                else:
                    url, query = f"{base}/{path}", params or {}
                client = browser if label.startswith("worklist") else session
                timings, count = [], 0
                for _ in range(queries):
                    begin = time.perf_counter()
                    response = client.get(url, params=query, headers={"Accept": "application/dicom+json"})
                    timings.append((time.perf_counter() - begin) * 1000)
                    response.raise_for_status()
                    count = len(response.json()) if path != "page" and response.content else 1
                everything += timings
                print(f"  {label:<42}{percentile(timings, 50):8.1f} /{percentile(timings, 95):6.1f} ({count:4d})")
            print(f"  {'all searches':<42}{percentile(everything, 50):8.1f} /{percentile(everything, 95):6.1f}")
        finally:
            site.stop()


def logged_in(server: str, username: str, password: str) -> requests.Session:
    """A session logged in through the login form, as a browser is."""
    browser = requests.Session()
    browser.get(f"{server}/accounts/login/").raise_for_status()
    response = browser.post(
        f"{server}/accounts/login/", allow_redirects=False,
        data={"username": username, "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": f"{server}/accounts/login/"},
    )
    assert response.status_code == 302, response.text[:500]
    return browser


@contextmanager
def scratch_database(url: str, keep: str = "") -> Iterator[None]:
    """Create the PostgreSQL database ``url`` names (it must not exist) and drop it afterwards
    (``keep``: ``"keep"`` leaves it, ``"reuse"`` neither creates nor drops it)."""
    if not url or keep == "reuse":
        yield
        return
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not parts.scheme.startswith("postgres") or not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit("--database-url: postgres://user@host:port/name, a new database's plain name")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield
    finally:
        if keep == "keep":
            print(f"(the database is left: {url}; measure again with --reuse, drop it with DROP DATABASE {name})")
        else:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def analyze(url: str) -> None:
    """``ANALYZE`` the PostgreSQL database ``url`` names (nothing for SQLite: an empty url)."""
    if url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("ANALYZE")


def stow(session: requests.Session, base: str, request: tuple[bytes, str]) -> None:
    """POST one STOW-RS request made beforehand (``stow_body``): the time is the server's, not that
    of encoding the body."""
    body, content_type = request
    response = session.post(f"{base}/studies", data=body, headers={"Content-Type": content_type}, timeout=600)
    response.raise_for_status()


def timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
