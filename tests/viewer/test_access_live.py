"""A member removed by another process loses access to rendered images within the access memory's
TTL (viewer.grants, 1 s by default), on a real daphne process."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from tests.factories.dicom import ct_dataset, to_bytes
from tests.live import LiveSite, demo_users_site
from tests.viewer.dicomweb_helpers import stow_body

pytestmark = pytest.mark.live


def test_a_removal_in_another_process_is_honoured_within_the_ttl(tmp_path: Path) -> None:
    site = LiveSite.create(tmp_path, copy_of=demo_users_site(tmp_path.parent))  # load_demo --no-studies
    uploader, reader = site.token("reader1"), site.token("reader2")
    (server,) = site.start()
    try:
        ds = ct_dataset()
        body, content_type = stow_body([to_bytes(ds)])
        requests.post(
            f"{server}/projects/demo/dicomweb/studies", data=body, timeout=60,
            headers={"Content-Type": content_type, "Authorization": f"Token {uploader}"},
        ).raise_for_status()
        url = (
            f"{server}/projects/demo/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}/frames/1/rendered"
        )
        session = requests.Session()
        session.headers["Authorization"] = f"Token {reader}"
        assert session.get(url, timeout=30).status_code == 200

        # Keep the decision fresh in the server's memory while another process removes the member.
        stop = threading.Event()

        def scroll() -> None:
            while not stop.is_set():
                session.get(url, timeout=30)

        scroller = threading.Thread(target=scroll)
        scroller.start()
        try:
            site.manage("shell", "-c", "from viewer.models import Membership; "
                        "Membership.objects.filter(user__username='reader2').delete()")
            removed = time.monotonic()
        finally:
            stop.set()
            scroller.join()
        while (status := session.get(url, timeout=30).status_code) == 200:
            assert time.monotonic() - removed < 1.5, "still served more than the TTL after the removal"
        assert status == 404
    finally:
        site.stop()
