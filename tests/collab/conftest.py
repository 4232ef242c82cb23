"""Fixtures of the collab tests: a project with one user per seat, a study with images, a session,
logged-in cookies for websockets, and every broadcast captured after a JSON round trip; for the
browser tests, the demo served live with two sessions and a reader's logged-in viewer page."""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from collab import events, hub, services
from tests.conftest import CHROMIUM
from tests.factories.dicom import ct_bytes
from tests.factories.models import create_project, create_user
from tests.live import LiveSite
from viewer.ingest import ingest_files
from viewer.models import Role

ORIGIN = b"http://testserver"


def run_async(test: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Run an async test function on a fresh event loop (no pytest-asyncio needed)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return async_to_sync(test)(*args, **kwargs)

    return wrapper


@pytest.fixture(autouse=True)
def _fresh_layer(settings: Any) -> Any:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    hub._hubs.clear()
    yield
    hub._hubs.clear()


@pytest.fixture(autouse=True)
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every channel-layer message of the services, JSON round-tripped as Redis would carry it."""
    captured: list[dict[str, Any]] = []

    def send(session_id: int, message: dict[str, Any]) -> None:
        message = json.loads(json.dumps(message, allow_nan=False))
        captured.append(message)
        events._send(session_id, message)

    monkeypatch.setattr(events, "sender", send)
    return captured


@pytest.fixture
def crew(db: None) -> dict[str, Any]:
    """Project 'trial' (one study of two 16x16 CT images, 0.5 mm pixels) and its people."""
    users = {name: create_user(name) for name in ("org", "r1", "r2", "adj", "watcher", "member", "outsider")}
    project = create_project("trial", members={
        users["org"]: Role.ORGANIZER, users["r1"]: Role.READER, users["r2"]: Role.READER,
        users["adj"]: Role.READER, users["watcher"]: Role.VIEWER, users["member"]: Role.READER,
    })
    create_project("elsewhere", members={users["outsider"]: Role.ORGANIZER})
    study_uid = "1.2.826.0.1.3680043.8.498.1"
    files = [
        (f"{n}.dcm", ct_bytes(StudyInstanceUID=study_uid, SeriesInstanceUID=study_uid + ".1",
                              SOPInstanceUID=f"{study_uid}.1.{n}", InstanceNumber=n, PixelSpacing=[0.5, 0.5]))
        for n in (1, 2)
    ]
    report = ingest_files(project, files)
    assert all(r.ok for r in report.results), report.as_dict()
    other_uid = "1.2.826.0.1.3680043.8.498.2"
    ingest_files(project, [("o.dcm", ct_bytes(StudyInstanceUID=other_uid, SOPInstanceUID=other_uid + ".1.1"))])
    return {**users, "project": project, "study": study_uid, "other_study": other_uid,
            "instance": f"{study_uid}.1.1", "instance2": f"{study_uid}.1.2", "other_instance": other_uid + ".1.1"}


def make_session(crew: dict[str, Any], mode: str = "open", status: str = "active") -> Any:
    return services.create_session(
        crew["org"], project="trial", title=f"{mode} read", studies=[crew["study"]], mode=mode, status=status,
        participants=[("r1", "reader"), ("r2", "reader"), ("adj", "adjudicator"), ("watcher", "observer")],
    )


@pytest.fixture
def session(crew: dict[str, Any]) -> Any:
    return make_session(crew)


@pytest.fixture
def blinded(crew: dict[str, Any]) -> Any:
    return make_session(crew, mode="blinded")


@pytest.fixture
def cookies(crew: dict[str, Any]) -> dict[str, bytes]:
    """A Cookie header (a real Django session) per username."""
    out = {}
    for name in ("org", "r1", "r2", "adj", "watcher", "member", "outsider"):
        client = Client()
        client.force_login(crew[name])
        out[name] = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()
    return out


def communicator(session_id: Any, cookie: bytes | None, origin: bytes = ORIGIN) -> WebsocketCommunicator:
    from crossread.asgi import application

    headers = [(b"origin", origin), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, f"/ws/sessions/{session_id}/", headers=headers)


# ------------------------------------------------------------------------------------------------
# Browser tests: the demo served by daphne, and readers logged in on the viewer
# ------------------------------------------------------------------------------------------------

#: The demo's logins (``load_demo``).
PASSWORDS = {"organizer": "demo-organizer-pass", "reader1": "demo-reader1-pass", "reader2": "demo-reader2-pass"}
#: An open and a blinded session of reader1 and reader2 on the demo's CT study; prints the viewer URL of each.
SETUP = r"""
import json
import re
from django.contrib.auth import get_user_model
from collab import services
from viewer.models import Study
organizer = get_user_model().objects.get(username="organizer")
study = Study.objects.filter(project__slug="demo", series__modality="CT").order_by("id").first()
ids = {}
for mode in ("open", "blinded"):
    session = services.create_session(organizer, project="demo", title=mode, studies=[study.study_instance_uid],
        mode=mode, status="active", participants=[("reader1", "reader"), ("reader2", "reader")])
    ids[mode] = services.session_payload(session)["cases"][0]["viewer"]
print("RESULT" + json.dumps(ids))
"""


@pytest.fixture(scope="module")
def live_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo (8 slices) served by daphne with the sessions of :data:`SETUP`: ``{"base": its URL,
    "viewer": {"open": ..., "blinded": ...}}``, the viewer URL of each session's case. One per module."""
    if not shutil.which(CHROMIUM):
        pytest.skip(f"needs chromium at {CHROMIUM} (apt-get install chromium)")
    site = LiveSite.create(tmp_path_factory.mktemp("collab-site"))
    site.manage("load_demo", "--slices", "8")
    out = site.manage("shell", "-c", SETUP)
    urls = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[6:])
    base = site.start(1)[0]
    try:
        yield {"base": base, "viewer": urls}
    finally:
        site.stop()


def log_in(page: Any, username: str) -> None:
    """Through the login page, as a person does."""
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def open_reader(browser: Any, live_demo: dict[str, Any], username: str, errors: list[str], mode: str = "open",
                timeout: float = 15_000) -> Any:
    """A page of a new browser context, ``username`` logged in on the viewer of the ``mode`` session, its
    first image shown and its session connected; the page's JavaScript errors go to ``errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=live_demo["base"])
    context.set_default_timeout(timeout)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(f"{username}: {error}"))
    log_in(page, username)
    page.goto(live_demo["viewer"][mode])
    page.wait_for_selector("body[data-first-image][data-modes]")
    page.wait_for_selector("#collab-panel .collab-connection.online")
    return page
