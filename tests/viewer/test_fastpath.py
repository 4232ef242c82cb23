"""The ASGI fast path for rendered images gives the same answers as Django's full stack."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator

from crossread.asgi import application
from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stow
from viewer import rendering

# Real transactions, as under a server: the request signals may close and reopen connections.
pytestmark = pytest.mark.django_db(transaction=True)


def asgi_get(path: str, query: str = "", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    communicator = HttpCommunicator(application, "GET", f"{path}?{query}" if query else path, headers=headers or [])
    return async_to_sync(communicator.get_response)(timeout=30)


def test_rendered_images_through_the_fast_path(client, team):
    rendering.OUTPUT_CACHE.clear()
    ds = ct_dataset()
    assert stow(client, "trial", [to_bytes(ds)], token_for(team["reader"])).status_code == 200
    path = (
        f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/1/rendered"
    )
    auth = [(b"authorization", f"Token {token_for(team['viewer'])}".encode())]

    fast = asgi_get(path, "window=100,200&accept=image/png", auth)
    slow = client.get(path, {"window": "100,200", "accept": "image/png"}, HTTP_AUTHORIZATION=auth[0][1].decode())
    assert fast["status"] == 200
    assert fast["body"] == slow.content
    headers = dict(fast["headers"])
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
