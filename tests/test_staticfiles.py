"""The static files route of the ASGI application (crossread.staticfiles) while debugging: files found in
static/, with the site's security headers, before Django's middleware chain; what it does not serve goes
to Django. (Collected, hashed, compressed and cached for good with DJANGO_DEBUG=0:
tests/browser/test_production.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator

from tests.live import REPO

pytestmark = pytest.mark.django_db


def get(path: str, method: str = "GET", host: bytes = b"testserver", **headers: str) -> tuple[int, dict[str, str], bytes]:
    from crossread.asgi import application

    extra = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    communicator = HttpCommunicator(application, method, path, headers=[(b"host", host), *extra])
    response = async_to_sync(communicator.get_response)(timeout=30)
    return response["status"], {n.decode().lower(): v.decode() for n, v in response["headers"]}, response.get("body", b"")


def test_a_module_is_served_with_the_security_headers():
    status, headers, body = get("/static/viewer/viewer.js")
    assert status == 200 and body == (REPO / "static" / "viewer" / "viewer.js").read_bytes()
    assert headers["content-type"].startswith("text/javascript")
    assert headers["x-content-type-options"] == "nosniff" and "script-src 'self'" in headers["content-security-policy"]
    assert headers["cache-control"] == "max-age=0, public"  # while debugging, a file changes any time
    assert "access-control-allow-origin" not in headers and "set-cookie" not in headers
    assert get("/static/viewer/viewer.js", "HEAD")[::2] == (200, b"")
    again = get("/static/viewer/viewer.js", if_none_match=headers["etag"])
    assert again[0] == 304 and again[2] == b""


def test_what_the_route_does_not_serve_goes_to_django():
    assert get("/static/viewer/nothing.js")[0] == 404
    assert get("/static/../crossread/settings.py")[0] == 404
    assert get("/static/viewer/viewer.js", host=b"evil.example")[0] == 400  # Django's ALLOWED_HOSTS
    assert get("/static/viewer/viewer.js", "POST")[0] in (403, 404, 405)  # Django's, not a file


def test_the_route_runs_before_the_middleware_chain(monkeypatch: Any):
    """No session, no CSRF cookie, no database: the middlewares never see a static file."""
    from django.core.handlers.asgi import ASGIHandler

    called = []
    real = ASGIHandler.__call__

    async def spy(self: Any, scope: Any, receive: Any, send: Any) -> None:
        called.append(scope["path"])
        await real(self, scope, receive, send)

    monkeypatch.setattr(ASGIHandler, "__call__", spy)
    assert get("/static/css/crossread.css")[0] == 200
    assert called == []
    assert get("/static/css/nothing.css")[0] == 404
    assert called == ["/static/css/nothing.css"]
