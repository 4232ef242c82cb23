"""Rendering over HTTP on loopback, Crossread against Orthanc (the baseline) in the same run.

Both servers get the same files: the 120-slice 512x512 phantom CT series and the 1955x1841 CR
(pydicom-data RG1_UNCI.dcm). Prints p50/p95 latencies of a CT frame with the decoded-frame cache
cold and warm, a 256x256 tile of the CR, the whole CR scaled to a 1024 viewport, frames per second
for one client scrolling the series in order, and bytes per frame for each media type.

Scrolling is measured two ways: one request at a time in order (latency-bound: the per-request
cost of server and client), and as the browser viewer loads a series (static/viewer/loader.js:
up to 6 requests in flight, nearest slices first), on the follow-up study's series so that its
"cold" pass decodes every slice as the in-order cold pass does.

Reformatted planes (MPR, ``--mpr-only`` for this part alone): two more copies of the phantom series
(new UIDs), never rendered before; the first sagittal image of one and the first coronal image of the
other (cold: the volume is assembled in that request, its slices decoded), then each next plane
(warm: the volume cached, each plane new), p50/p95, and frames per second scrolling sagittal planes
in order, against a rendered axial frame of the same series measured in the same run (decoded, each
slice new).

Usage: .venv/bin/python bench/render.py [--runs 60] [--mpr-only]
Needs Debian's orthanc and orthanc-dicomweb for the baseline (skipped, with a note, if absent).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import requests
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Orthanc, percentile, summary, timed_ms  # noqa: E402
from tests.live import LiveSite  # noqa: E402
from tests.viewer.dicomweb_helpers import stow_body  # noqa: E402
from demo import corpus  # noqa: E402
from demo.phantom import write_phantom_studies  # noqa: E402

CT_WINDOW, OTHER_WINDOW = "40,400,linear", "-600,1500,linear"


def frame_paths(files: list[bytes]) -> list[str]:
    paths = []
    for data in files:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        paths.append(f"studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}")
    return paths


def get_ok(session: requests.Session, url: str, headers: dict[str, str] | None = None, **params: str) -> requests.Response:
    # Literal commas: Orthanc does not decode %2C in window/viewport values.
    response = session.get(f"{url}?{urlencode(params, safe=',')}" if params else url, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code} for {url}: {response.text[:200]}")
    return response


#: The viewer's loader keeps at most this many requests in flight (MAX_IN_FLIGHT in loader.js).
VIEWER_IN_FLIGHT = 6


def scroll_fps(
    session: requests.Session, urls: list[str], window: str, parallel: int = 1, timings: list[float] | None = None
) -> float:
    """Frames per second fetching ``urls`` in order, ``parallel`` requests in flight (one connection each).

    With one in flight, each request's latency (ms) is appended to ``timings`` when given.
    """
    start = time.perf_counter()
    if parallel == 1:
        for url in urls:
            begun = time.perf_counter()
            get_ok(session, url, window=window)
            if timings is not None:
                timings.append((time.perf_counter() - begun) * 1000)
    else:
        local = threading.local()

        def fetch(url: str) -> None:
            if not hasattr(local, "session"):
                local.session = requests.Session()
                local.session.headers.update(session.headers)
            get_ok(local.session, url, window=window)

        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(fetch, urls))
    return len(urls) / (time.perf_counter() - start)


def renamed(files: list[bytes], tag: str) -> list[bytes]:
    """The series again under new Study, Series and SOP Instance UIDs (a series never rendered)."""
    copies = []
    for data in files:
        ds = pydicom.dcmread(io.BytesIO(data))
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            setattr(ds, keyword, f"{getattr(ds, keyword)}.{tag}"[:64])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        copies.append(buffer.getvalue())
    return copies


def mpr_section(session: requests.Session, server: str, series: list[list[bytes]], runs: int) -> None:
    """The MPR figures (see the module's doc) on two series never rendered before."""
    uids = [pydicom.dcmread(io.BytesIO(files[0]), stop_before_pixels=True).SeriesInstanceUID for files in series]
    mpr = [f"{server}/projects/demo/series/{uid}/mpr" for uid in uids]
    paths = frame_paths(series[0])
    print("\nReformatted planes (MPR) of the 120-slice 512x512 CT, on loopback:")
    sagittal_cold = timed_ms(lambda: get_ok(session, f"{mpr[0]}/sagittal/256", window=CT_WINDOW), 1)[0]
    coronal_cold = timed_ms(lambda: get_ok(session, f"{mpr[1]}/coronal/256", window=CT_WINDOW), 1)[0]
    print(f"  first sagittal image, series not decoded (cold)  {sagittal_cold:8.1f} ms")
    print(f"  first coronal image, series not decoded (cold)   {coronal_cold:8.1f} ms")
    first_coronal = timed_ms(lambda: get_ok(session, f"{mpr[0]}/coronal/256", window=CT_WINDOW), 1)[0]
    print(f"  first coronal image after the sagittal (volume cached) {first_coronal:8.1f} ms")
    description = session.get(f"{mpr[0]}/sagittal").json()
    print(f"  sagittal planes: {description['count']}, each {description['columns']}x{description['rows']}")
    base = f"{server}/projects/demo/dicomweb"
    axial_urls = [f"{base}/{p}/frames/1/rendered" for p in paths]  # decoded by the volume's assembly
    axial = [timed_ms(lambda u=axial_urls[i % 120]: get_ok(session, u, window="41,400,linear"), 1)[0]
             for i in range(min(runs, 120))]
    sagittal = [timed_ms(lambda i=i: get_ok(session, f"{mpr[0]}/sagittal/{i}", window="41,400,linear"), 1)[0]
                for i in range(min(runs, 512))]
    coronal = [timed_ms(lambda i=i: get_ok(session, f"{mpr[0]}/coronal/{i}", window="41,400,linear"), 1)[0]
               for i in range(min(runs, 512))]
    print(f"  axial frame, each next slice (decoded)   {summary(axial)}")
    print(f"  sagittal, each next plane (warm)         {summary(sagittal)}   ratio p50 to axial "
          f"{percentile(sagittal, 50) / percentile(axial, 50):.2f}")
    print(f"  coronal, each next plane (warm)          {summary(coronal)}   ratio p50 to axial "
          f"{percentile(coronal, 50) / percentile(axial, 50):.2f}")
    sagittal_urls = [f"{mpr[0]}/sagittal/{i}" for i in range(100, 356)]
    axial_fps = scroll_fps(session, axial_urls, "42,400,linear")
    sagittal_fps = scroll_fps(session, sagittal_urls, "42,400,linear")
    print(f"  scrolling in order, one client: sagittal planes {sagittal_fps:6.1f}/s   axial frames {axial_fps:6.1f}/s")
    sagittal_fps = scroll_fps(session, sagittal_urls, "43,400,linear", parallel=VIEWER_IN_FLIGHT)
    print(f"  scrolling sagittal planes, {VIEWER_IN_FLIGHT} in flight: {sagittal_fps:6.1f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=60, help="requests per latency figure")
    parser.add_argument("--server", choices=("daphne", "uvicorn"), default="daphne", help="ASGI server for Crossread")
    parser.add_argument("--mpr-only", action="store_true", help="only the reformatted planes (no Orthanc)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        both = [p.read_bytes() for p in write_phantom_studies(root / "phantom", slices=120)]
        ct_files, followup_files = both[:120], both[120:240]  # baseline and follow-up series
        cr_file = corpus.file("pydicom-data", "RG1_UNCI.dcm").read_bytes()
        ct_paths, followup_paths, (cr_path,) = frame_paths(ct_files), frame_paths(followup_files), frame_paths([cr_file])
        cr_sop = cr_path.rsplit("/", 1)[1]

        site = LiveSite.create(root / "crossread")
        site.manage("load_demo", "--no-studies")
        token = site.token("reader1")
        (server,) = site.start(server=args.server)
        ours = requests.Session()
        ours.headers["Authorization"] = f"Token {token}"
        base = f"{server}/projects/demo/dicomweb"
        for i in range(0, 240, 20):
            body, content_type = stow_body(both[i : i + 20])
            ours.post(f"{base}/studies", data=body, headers={"Content-Type": content_type}).raise_for_status()
        body, content_type = stow_body([cr_file])
        ours.post(f"{base}/studies", data=body, headers={"Content-Type": content_type}).raise_for_status()

        def stored_mpr_series() -> list[list[bytes]]:
            """Two copies of the CT, stored only now (after the other figures: none of them pays for it)."""
            copies = [renamed(ct_files, "1"), renamed(ct_files, "2")]
            for files in copies:
                for i in range(0, 120, 20):
                    body, content_type = stow_body(files[i : i + 20])
                    ours.post(f"{base}/studies", data=body, headers={"Content-Type": content_type}).raise_for_status()
            return copies

        if args.mpr_only:
            try:
                mpr_section(ours, server, stored_mpr_series(), args.runs)
            finally:
                site.stop()
            return

        orthanc = Orthanc(root / "orthanc") if Orthanc.available() else None
        theirs = requests.Session()
        if orthanc:
            orthanc.start()
            for data in both + [cr_file]:
                theirs.post(f"{orthanc.url}/instances", data=data).raise_for_status()

        servers = {"crossread": (ours, base)}
        if orthanc:
            servers["orthanc"] = (theirs, f"{orthanc.url}/dicom-web")
        rows: dict[str, dict[str, str]] = {}
        p50: dict[tuple[str, str], float] = {}

        def record(label: str, name: str, timings: list[float]) -> None:
            rows.setdefault(label, {})[name] = summary(timings)
            p50[(label, name)] = percentile(timings, 50)

        try:
            print(f"Rendering over HTTP on loopback ({args.server}); {args.runs} requests per latency figure.\n")
            print("Scrolling the 120-slice CT in order, one client (frames/s):")
            for name, (session, root_url) in servers.items():
                urls = [f"{root_url}/{p}/frames/1/rendered" for p in ct_paths]
                first_looks: list[float] = []
                cold = scroll_fps(session, urls, CT_WINDOW, timings=first_looks)
                record("CT 512x512 frame, first request of each slice (cold, scrolling in order)", name, first_looks)
                warm = scroll_fps(session, urls, OTHER_WINDOW)
                parallel = scroll_fps(session, urls, "50,350,linear", parallel=4)
                print(f"  {name:<10} cold {cold:7.1f}   warm {warm:7.1f}   warm, 4 connections {parallel:7.1f}")
            print(f"Loading the follow-up 120-slice series as the viewer prefetches ({VIEWER_IN_FLIGHT} in flight, frames/s):")
            for name, (session, root_url) in servers.items():
                urls = [f"{root_url}/{p}/frames/1/rendered" for p in followup_paths]
                cold = scroll_fps(session, urls, CT_WINDOW, parallel=VIEWER_IN_FLIGHT)
                warm = scroll_fps(session, urls, OTHER_WINDOW, parallel=VIEWER_IN_FLIGHT)
                print(f"  {name:<10} cold {cold:7.1f}   warm {warm:7.1f}")

            for name, (session, root_url) in servers.items():
                urls = [f"{root_url}/{p}/frames/1/rendered" for p in ct_paths]
                # Cold: a window not used yet on slices not decoded yet (a fresh process for ours
                # would be colder still; the scroll above already decoded every slice, so use the CR's
                # first rendering below for a true cold decode).
                record("CT 512x512 frame, new window (decode cached)", name,
                       [timed_ms(lambda u=urls[i % 120], w=f"{30 + i},{300 + i},linear": get_ok(session, u, window=w), 1)[0]
                        for i in range(args.runs)])
                record("CT 512x512 frame, same URL again", name,
                       timed_ms(lambda: get_ok(session, urls[60], window=CT_WINDOW), args.runs))
                cr = f"{root_url}/{cr_path}/rendered"
                record("CR 1955x1841 whole, first request (cold)", name,
                       timed_ms(lambda: get_ok(session, cr, viewport="1024,1024", quality="89"), 1))
                record("CR 1955x1841 scaled to 1024 viewport", name,
                       [timed_ms(lambda q=str(70 + i % 30): get_ok(session, cr, viewport="1024,1024", quality=q), 1)[0]
                        for i in range(args.runs)])
            tile = f"{server}/projects/demo/tiles/{cr_sop}/1_files/11/1_1.jpeg"
            record("CR 256x256 tile", "crossread",
                   [timed_ms(lambda w=f"{2000 + i},4096,linear": get_ok(ours, tile, window=w), 1)[0] for i in range(args.runs)])
            if orthanc:
                crop = f"{orthanc.url}/dicom-web/{cr_path}/rendered"
                try:
                    get_ok(theirs, crop, viewport="256,256,253,253,256,256", window="2000,4096,linear")
                    supported = True
                except RuntimeError as exc:
                    supported = False
                    print(f"(Orthanc cannot crop a tile: {exc})")
                if supported:
                    record("CR 256x256 tile", "orthanc",
                           [timed_ms(lambda w=f"{2000 + i},4096,linear": get_ok(theirs, crop, viewport="256,256,253,253,256,256", window=w), 1)[0]
                            for i in range(args.runs)])

            print("\nLatency:")
            for label, by_server in rows.items():
                print(f"  {label}")
                for name, text in by_server.items():
                    print(f"    {name:<10} {text}")
                if ("orthanc" in by_server) and ("crossread" in by_server):
                    ratio = p50[(label, "crossread")] / p50[(label, "orthanc")]
                    print(f"    ratio p50 crossread/orthanc: {ratio:.2f}")

            mpr_section(ours, server, stored_mpr_series(), args.runs)

            print("\nBytes per CT frame (window 40,400, quality 90):")
            for media in ("image/jpeg", "image/png", "image/webp", "image/gif"):
                size = len(get_ok(ours, f"{base}/{ct_paths[60]}/frames/1/rendered", window=CT_WINDOW, accept=media).content)
                line = f"  {media:<11} crossread {size:8d}"
                if orthanc:
                    try:
                        size = len(get_ok(theirs, f"{orthanc.url}/dicom-web/{ct_paths[60]}/frames/1/rendered",
                                          headers={"Accept": media}, window=CT_WINDOW).content)
                        line += f"   orthanc {size:8d}"
                    except RuntimeError:
                        line += "   orthanc      n/a"
                print(line)
        finally:
            site.stop()
            if orthanc:
                orthanc.stop()


if __name__ == "__main__":
    main()
