"""Two daphne processes, one database and one object store: concurrent STOW-RS of overlapping instances."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.factories.dicom import ct_bytes
from tests.live import LiveSite
from tests.viewer.dicomweb_helpers import stow_body

pytestmark = pytest.mark.live


def test_overlapping_concurrent_stow_stores_each_instance_once(tmp_path: Path) -> None:
    site = LiveSite.create(tmp_path)
    site.manage("load_demo", "--no-studies")
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
