"""Two daphne processes, one database and one object store: concurrent STOW-RS of overlapping instances."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.factories.dicom import ct_bytes
from tests.live import LiveSite, demo_users_site
from tests.viewer.dicomweb_helpers import stow_body

pytestmark = pytest.mark.live


def test_overlapping_concurrent_stow_stores_each_instance_once(tmp_path: Path) -> None:
    site = LiveSite.create(tmp_path, copy_of=demo_users_site(tmp_path.parent))  # load_demo --no-studies
    token = site.token("reader1")
    first, second = site.start(2)
    try:
        shared = [ct_bytes() for _ in range(30)]
        only_a = [ct_bytes() for _ in range(10)]
        only_b = [ct_bytes() for _ in range(10)]

        def post(server: str, files: list[bytes]) -> requests.Response:
            body, content_type = stow_body(files)
            return requests.post(
                f"{server}/projects/demo/dicomweb/studies",
                data=body,
                headers={"Content-Type": content_type, "Authorization": f"Token {token}"},
                timeout=120,
            )

        rounds = []
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in range(3):  # several rounds: each one races on the same 30 instances
                futures = [
                    pool.submit(post, first, shared + only_a),
                    pool.submit(post, second, list(reversed(shared)) + only_b),
                ]
                rounds.append([f.result() for f in futures])
        for responses in rounds:
            for response in responses:
                assert response.status_code == 200, response.text
                assert len(json.loads(response.content)["00081199"]["Value"]) == 40
    finally:
        site.stop()

    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        rows = db.execute("SELECT sop_instance_uid, sha256 FROM viewer_instance").fetchall()
    assert len(rows) == len({uid for uid, _ in rows}) == 50
    objects = [p for p in (tmp_path / "data" / "objects").rglob("*") if p.is_file()]
    assert sorted(p.name for p in objects) == sorted(sha for _, sha in rows)  # no file lost, no orphan


def test_images_and_searches_are_answered_while_a_large_stow_is_ingested(tmp_path: Path) -> None:
    """One daphne process: while a STOW-RS of 480 phantom slices (250 MB) is parsed and indexed, rendered
    frames of a study already stored and QIDO-RS searches are answered, each well before the STOW ends
    (a request's sync work runs in its own thread, never on the event loop or a shared thread)."""
    import time

    from demo.phantom import write_phantom_studies

    with ThreadPoolExecutor(max_workers=1) as pool:  # the phantom is written while the site is set up
        phantom = pool.submit(write_phantom_studies, tmp_path / "phantom", slices=240)
        site = LiveSite.create(tmp_path, copy_of=demo_users_site(tmp_path.parent))  # load_demo --no-studies
        token = site.token("reader1")
        (server,) = site.start(1)
        paths = phantom.result()
    headers = {"Authorization": f"Token {token}"}
    base = f"{server}/projects/demo/dicomweb"
    try:
        first = ct_bytes()
        body, content_type = stow_body([first])
        assert requests.post(f"{base}/studies", data=body, headers={**headers, "Content-Type": content_type},
                             timeout=60).status_code == 200
        instance = requests.get(f"{base}/instances", headers=headers, timeout=30).json()[0]
        frame = (f"{base}/studies/{instance['0020000D']['Value'][0]}/series/{instance['0020000E']['Value'][0]}"
                 f"/instances/{instance['00080018']['Value'][0]}/frames/1/rendered")
        files = [p.read_bytes() for p in paths]
        big, big_type = stow_body(files)

        def large_stow() -> float:
            response = requests.post(f"{base}/studies", data=big, headers={**headers, "Content-Type": big_type},
                                     timeout=600)
            assert response.status_code == 200, response.text[:300]
            return time.monotonic()

        with ThreadPoolExecutor(max_workers=1) as pool:
            started = time.monotonic()
            done = pool.submit(large_stow)
            time.sleep(0.3)  # the body is on its way
            answered = []
            for n in range(6):
                url = frame + f"?window={400 + n},40" if n % 2 == 0 else f"{base}/studies"
                response = requests.get(url, headers=headers, timeout=60)
                assert response.status_code == 200
                answered.append(time.monotonic())
            ended = done.result()
        # (360 slices took 1.9 s once their objects were written while the next were parsed)
        assert ended - started > 1, "the STOW ended too soon to overlap anything; make it larger"
        assert max(answered) < ended, "an image or a search waited for the whole STOW"
    finally:
        site.stop()
