"""The ASGI fast path for rendered images gives the same answers as Django's full stack."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from rest_framework.authtoken.models import Token

from crossread.asgi import application
from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stored_frame_url, stow
from viewer import render_views, rendering
from viewer import grants
from viewer.grants import GRANTS, GrantMemory
from viewer.models import Membership

# Real transactions, as under a server: the request signals may close and reopen connections.
pytestmark = pytest.mark.django_db(transaction=True)


def asgi_get(path: str, query: str = "", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    headers = [(b"host", b"testserver"), *(headers or [])]  # as every HTTP/1.1 request has
    communicator = HttpCommunicator(application, "GET", f"{path}?{query}" if query else path, headers=headers)
    return async_to_sync(_response)(communicator, 30)


async def _response(communicator: HttpCommunicator, timeout: float) -> dict:
    """The communicator's response; or, as soon as the application raises, its exception. (asgiref looks
    at the application's task only once a wait for output has timed out: an error would take ``timeout``.)"""
    response = asyncio.ensure_future(communicator.get_response(timeout=timeout))
    await asyncio.wait([response, communicator.future], return_when=asyncio.FIRST_COMPLETED)
    application_task = communicator.future
    if not response.done() and application_task.done() and not application_task.cancelled() \
            and application_task.exception() is not None:
        response.cancel()
        raise application_task.exception()
    return await response


def test_rendered_images_through_the_fast_path(client, team):
    rendering.OUTPUT_CACHE.clear()
    path = stored_frame_url(client, team)
    auth = [(b"authorization", f"Token {token_for(team['viewer'])}".encode())]

    fast = asgi_get(path, "window=100,200&accept=image/png", auth)
    slow = client.get(path, {"window": "100,200", "accept": "image/png"}, HTTP_AUTHORIZATION=auth[0][1].decode())
    assert fast["status"] == 200
    assert fast["body"] == slow.content
    headers = dict(fast["headers"])
    assert headers[b"Content-Length"] == str(len(fast["body"])).encode()  # not a chunked body
    assert headers[b"ETag"].decode() == slow["ETag"]
    assert headers[b"X-Content-Type-Options"] == b"nosniff"

    # Authentication and access are the view's own: none, a bad token, an outsider, a session cookie.
    assert asgi_get(path)["status"] == 401
    assert asgi_get(path, headers=[(b"authorization", b"Token " + b"0" * 40)])["status"] == 401
    outsider = [(b"authorization", f"Token {token_for(team['outsider'])}".encode())]
    assert asgi_get(path, headers=outsider)["status"] == 404
    client.force_login(team["viewer"])
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    assert asgi_get(path, "window=100,200&accept=image/png", [(b"cookie", cookie)])["body"] == slow.content
    # Conditional GET and errors keep their shape.
    assert asgi_get(path, "window=100,200&accept=image/png", auth + [(b"if-none-match", headers[b"ETag"])])["status"] == 304
    assert asgi_get(path, "window=100", auth)["status"] == 400


# --------------------------------------------------------------------------- access from memory


def _stowed_frame(client, team) -> tuple[str, list[tuple[bytes, bytes]]]:
    ds = ct_dataset()
    assert stow(client, "trial", [to_bytes(ds)], token_for(team["reader"])).status_code == 200
    path = (
        f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/1/rendered"
    )
    return path, [(b"authorization", f"Token {token_for(team['viewer'])}".encode())]


def test_repeats_are_answered_from_memory_without_the_database(client, team, monkeypatch):
    path, auth = _stowed_frame(client, team)
    first = asgi_get(path, "window=100,200", auth)
    assert first["status"] == 200

    async def no_database(*args, **kwargs):
        raise AssertionError("went to the database")

    monkeypatch.setattr(render_views, "run_sync", no_database)
    again = asgi_get(path, "window=100,200", auth)
    assert again["status"] == 200
    assert again["body"] == first["body"]
    assert dict(again["headers"])[b"ETag"] == dict(first["headers"])[b"ETag"]
    assert asgi_get(path, "window=100,200", auth + [(b"if-none-match", dict(first["headers"])[b"ETag"])])["status"] == 304
    assert asgi_get(path, "window=50,300", auth)["status"] == 200  # a new window: rendered, no query
    with pytest.raises(AssertionError, match="database"):  # other credentials are decided in full
        asgi_get(path, "window=100,200", [(b"authorization", f"Token {token_for(team['reader'])}".encode())])


def test_revocations_in_this_process_take_effect_at_once(client, team):
    path, auth = _stowed_frame(client, team)
    assert asgi_get(path, "window=100,200", auth)["status"] == 200
    Membership.objects.filter(project=team["project"], user=team["viewer"]).delete()
    assert asgi_get(path, "window=100,200", auth)["status"] == 404

    reader = [(b"authorization", f"Token {token_for(team['reader'])}".encode())]
    assert asgi_get(path, "window=100,200", reader)["status"] == 200
    Token.objects.filter(user=team["reader"]).delete()
    assert asgi_get(path, "window=100,200", reader)["status"] == 401

    organizer = [(b"authorization", f"Token {token_for(team['organizer'])}".encode())]
    assert asgi_get(path, "window=100,200", organizer)["status"] == 200
    team["organizer"].is_active = False
    team["organizer"].save()
    assert asgi_get(path, "window=100,200", organizer)["status"] == 401


def test_a_revocation_no_signal_announces_is_bounded_by_the_ttl(client, team, monkeypatch):
    monkeypatch.setattr(GRANTS, "ttl", 0.3)
    path, auth = _stowed_frame(client, team)
    assert asgi_get(path, "window=100,200", auth)["status"] == 200
    # A raw delete sends no signal (as another process's removal would not reach this one).
    queryset = Membership.objects.filter(project=team["project"], user=team["viewer"])
    queryset._raw_delete(queryset.db)
    assert asgi_get(path, "window=100,200", auth)["status"] == 200  # within the TTL
    time.sleep(0.35)
    assert asgi_get(path, "window=100,200", auth)["status"] == 404


def test_remembered_image_access_keys_on_every_credential_and_drops_stale_decisions(rf, monkeypatch):
    now = [100.0]
    memory = GrantMemory(ttl=1.0, clock=lambda: now[0])
    monkeypatch.setattr(grants, "GRANTS", memory)
    access = object()
    request = rf.get("/", HTTP_AUTHORIZATION="Token abc")
    grants.remember_access(request, "trial", access, memory.generation)
    assert grants.recent_access(rf.get("/", HTTP_AUTHORIZATION="Token abc"), "trial") is access
    assert grants.recent_access(rf.get("/", HTTP_AUTHORIZATION="Token abd"), "trial") is None
    assert grants.recent_access(rf.get("/", HTTP_AUTHORIZATION="Token abc"), "other") is None
    with_cookie = rf.get("/", HTTP_AUTHORIZATION="Token abc", HTTP_COOKIE="sessionid=x")
    assert grants.recent_access(with_cookie, "trial") is None
    # Nothing is remembered for a request without credentials.
    grants.remember_access(rf.get("/"), "trial", access, memory.generation)
    assert grants.recent_access(rf.get("/"), "trial") is None
    # Entries expire after the TTL of the memory's clock.
    now[0] = 100.999
    assert grants.recent_access(request, "trial") is access
    now[0] = 101.0
    assert grants.recent_access(request, "trial") is None
    # A decision made before a clear() (a revocation) is not stored after it.
    before = memory.generation
    memory.clear()
    grants.remember_access(request, "trial", access, before)
    assert grants.recent_access(request, "trial") is None


def test_the_memory_is_bounded_and_keeps_nothing_with_a_zero_ttl():
    now = [0.0]
    memory = GrantMemory(ttl=1.0, clock=lambda: now[0], size=3)
    for key in "abc":
        memory.remember(key, key, memory.generation)
    now[0] = 2.0  # all three expired: the next entry sweeps them out
    memory.remember("d", "d", memory.generation)
    assert len(memory._items) == 1 and memory.get("d") == "d"
    for key in "efg":  # full of live entries: emptied rather than grown
        memory.remember(key, key, memory.generation)
    assert len(memory._items) <= 3 and memory.get("g") == "g"
    off = GrantMemory(ttl=0)
    off.remember("a", "a", off.generation)
    assert off.get("a") is None


# --------------------------------------------------------------------------- QIDO-RS searches


@pytest.fixture
def chain(monkeypatch) -> list[str]:
    """The paths of the requests that went through Django's middleware chain."""
    from django.core.handlers import base

    paths: list[str] = []
    original = base.BaseHandler.get_response_async

    async def counted(self, request):
        paths.append(request.path)
        return await original(self, request)

    monkeypatch.setattr(base.BaseHandler, "get_response_async", counted)
    return paths


def test_searches_are_served_on_the_lean_route_with_the_same_answers(client, team, chain):
    """QIDO-RS GETs skip the middleware chain (one thread hop, not one per middleware), answer as
    Django's full stack does, and decide access the same way: refusals in full, every time."""
    ds = ct_dataset()
    assert stow(client, "trial", [to_bytes(ds)], token_for(team["reader"])).status_code == 200
    auth = [(b"authorization", f"Token {token_for(team['viewer'])}".encode())]
    paths = [
        ("/projects/trial/dicomweb/studies", f"PatientID={ds.PatientID}"),
        (f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series", ""),
        (f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances", ""),
        ("/projects/trial/dicomweb/instances", f"SOPInstanceUID={ds.SOPInstanceUID}"),
    ]
    for path, query in paths:
        fast = asgi_get(path, query, auth)
        slow = client.get(f"{path}?{query}", HTTP_AUTHORIZATION=auth[0][1].decode())
        assert fast["status"] == slow.status_code == 200, fast["body"]
        assert fast["body"] == slow.content and len(json.loads(fast["body"])) == 1
        headers = dict(fast["headers"])
        assert headers[b"Content-Type"] == b"application/dicom+json"
        assert headers[b"X-Content-Type-Options"] == b"nosniff" and b"Content-Security-Policy" in headers
    assert chain == []  # none of them went through Django's middleware chain

    search = paths[0]
    assert asgi_get(*search)["status"] == 401
    assert asgi_get(*search, [(b"authorization", f"Token {token_for(team['outsider'])}".encode())])["status"] == 404
    assert asgi_get(search[0], "PatientID=" + "x" * 300, auth)["status"] == 400  # errors keep their shape
    Membership.objects.filter(project=team["project"], user=team["viewer"]).delete()  # remembered, then revoked
    assert asgi_get(*search, auth)["status"] == 404


def test_a_remembered_search_reads_no_credentials_and_no_membership(client, team):
    """Within the TTL, a search with the same credentials is served with the remembered decision:
    no token, membership or blinding query, only the search's own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ds = ct_dataset()
    assert stow(client, "trial", [to_bytes(ds)], token_for(team["reader"])).status_code == 200
    auth = [(b"authorization", f"Token {token_for(team['viewer'])}".encode())]
    path, query = "/projects/trial/dicomweb/studies", f"PatientID={ds.PatientID}"
    with CaptureQueriesContext(connection) as first:
        assert asgi_get(path, query, auth)["status"] == 200
    with CaptureQueriesContext(connection) as again:
        assert asgi_get(path, query, auth)["status"] == 200
    tables = " ".join(q["sql"] for q in again.captured_queries)
    assert "authtoken_token" in " ".join(q["sql"] for q in first.captured_queries)
    assert "authtoken_token" not in tables and "viewer_membership" not in tables and "trials_" not in tables
    assert len(again.captured_queries) == 2  # the page of studies, and their series with their counts


# --------------------------------------------------------------------------- STOW-RS


def asgi_post(path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> dict:
    headers = [(b"host", b"testserver"), *headers]
    communicator = HttpCommunicator(application, "POST", path, body=body, headers=headers)
    return async_to_sync(communicator.get_response)(timeout=60)


def test_stow_is_served_on_the_lean_route_with_its_checks_and_its_audit_trail(client, team, chain):
    """STOW-RS's POST skips the middleware chain too (its body spooled as Django's handler does), and
    keeps what the chain gave it: CSRF for a browser session (authenticate()'s check), the request
    behind every audit event (the de-identification events too), the role a POST needs."""
    from audit.models import AuditEvent
    from tests.viewer.dicomweb_helpers import stow_body

    team["project"].deidentification = {"profile": "basic", "options": []}
    team["project"].save()
    body, content_type = stow_body([to_bytes(ct_dataset())])
    kind = [(b"content-type", content_type.encode()), (b"user-agent", b"stow-lean-route-test")]
    path = "/projects/trial/dicomweb/studies"

    stored = asgi_post(path, body, kind + [(b"authorization", f"Token {token_for(team['reader'])}".encode())])
    assert stored["status"] == 200, stored["body"]
    assert len(json.loads(stored["body"])["00081199"]["Value"]) == 1
    assert dict(stored["headers"])[b"X-Content-Type-Options"] == b"nosniff"
    events = AuditEvent.objects.filter(project="trial", user_agent="stow-lean-route-test")
    assert {"upload", "deidentification.applied"} <= set(events.values_list("action", flat=True)), list(events.values("action"))

    # A viewer may not store; a browser session must send its CSRF token.
    viewer = [(b"authorization", f"Token {token_for(team['viewer'])}".encode())]
    assert asgi_post(path, body, kind + viewer)["status"] == 403
    client.force_login(team["reader"])
    client.get("/projects/trial/")  # the page sets the CSRF cookie
    cookies = f"sessionid={client.cookies['sessionid'].value}; csrftoken={client.cookies['csrftoken'].value}"
    session = [(b"cookie", cookies.encode()), (b"referer", b"http://testserver/projects/trial/")]
    refused = asgi_post(path, body, kind + session)
    assert refused["status"] == 403 and b"CSRF" in refused["body"], refused["body"]
    token = [(b"x-csrftoken", client.cookies["csrftoken"].value.encode())]
    assert asgi_post(path, body, kind + session + token)["status"] == 200  # (already stored: a success)
    assert chain == []


def test_a_stow_body_over_the_bound_is_refused_before_it_is_read(team, settings, chain):
    """A body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is refused from its declared length, unread;
    one that declares no length (chunked) is refused once it passes the bound, its remaining
    messages never asked for. Nothing is stored."""
    from viewer.models import Instance

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    path = "/projects/trial/dicomweb/studies"
    reader = (b"authorization", f"Token {token_for(team['reader'])}".encode())
    kind = (b"content-type", b'multipart/related; type="application/dicom"; boundary=xyz')

    declared = [(b"host", b"testserver"), reader, kind, (b"content-length", b"10000000")]
    received: list[dict] = []
    refused = _call_asgi("POST", path, declared, [b"x" * 1024] * 4, received)
    assert refused["status"] == 413, refused
    assert json.loads(refused["body"])["code"] == "too_large"
    assert received == []  # not one message of the body was read

    chunked = [(b"host", b"testserver"), reader, kind]
    received.clear()
    refused = _call_asgi("POST", path, chunked, [b"x" * 16 * 1024] * 100, received)
    assert refused["status"] == 413, refused
    assert len(received) == 5  # 64 KiB, then the message that passes it: no more
    assert chain == []
    assert not Instance.objects.exists()


def _call_asgi(method: str, path: str, headers: list, chunks: list[bytes], received: list) -> dict:
    """Call the application with a body sent in ``chunks``, recording each body message it asks for."""
    scope = {
        "type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "scheme": "http", "headers": headers,
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }
    pending = list(chunks)
    sent: list[dict] = []

    async def receive() -> dict:
        message = {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending)}
        received.append(message)
        return message

    async def send(message: dict) -> None:
        sent.append(message)

    async_to_sync(application)(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {"status": start["status"], "body": body}
