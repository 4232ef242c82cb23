"""Hardening shared by every page: CSP, cookies, login rate limit, no patient data in errors, websocket
origins and paths, the same security headers on the image fast route."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.core.cache import cache

pytestmark = pytest.mark.django_db


def test_pages_carry_a_content_security_policy(client, team):
    client.force_login(team["reader"])
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert client.get("/accounts/login/")["X-Frame-Options"] == "DENY"


def test_session_cookie_is_httponly(client, team):
    response = client.post("/accounts/login/", {"username": "reader", "password": "pw-reader-123!"})
    assert response.status_code == 302
    assert response.cookies["sessionid"]["httponly"] is True


def test_login_attempts_are_rate_limited(client, team, settings):
    cache.clear()
    settings.CROSSREAD = {"LOGIN_ATTEMPTS": 3, "LOGIN_WINDOW_SECONDS": 60}
    for _ in range(3):
        assert client.post("/accounts/login/", {"username": "reader", "password": "nope"}).status_code == 200
    refused = client.post("/accounts/login/", {"username": "reader", "password": "pw-reader-123!"})
    assert refused.status_code == 429 and b"Too many failed attempts. Try again in" in refused.content
    assert 1 <= int(refused["Retry-After"]) <= 60  # the rest of the window
    cache.clear()
    assert client.post("/accounts/login/", {"username": "reader", "password": "pw-reader-123!"}).status_code == 302


# --------------------------------------------------------------------------------- websocket edges


def websocket(path: str, origin: bytes | None, host: bytes = b"testserver", *extra: tuple[bytes, bytes]) -> Any:
    from crossread.asgi import application

    headers = [(b"host", host), *extra] + ([(b"origin", origin)] if origin is not None else [])
    return WebsocketCommunicator(application, path, headers=headers)


async def handshake(path: str, origin: bytes | None, host: bytes = b"testserver", *extra: tuple[bytes, bytes]) -> Any:
    """The handshake's outcome: False if refused, else the close the server sent at once."""
    comm = websocket(path, origin, host, *extra)
    connected, _ = await comm.connect()
    outcome = (await comm.receive_output(1)) if connected else False
    await comm.disconnect()
    return outcome


def test_an_unknown_websocket_path_is_closed_cleanly(caplog):
    outcome = async_to_sync(handshake)("/ws/nope/", b"http://testserver")
    assert outcome == {"type": "websocket.close", "code": 4404}
    assert async_to_sync(handshake)("/ws/sessions/1/extra/", b"http://testserver") == outcome
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_websockets_refuse_any_other_origin():
    foreign = [
        b"http://evil:8000", b"http://evil.example", b"http://testserver.evil.example",
        b"http://evil.example/http://testserver", b"null", b"", None,
        # The right host is not enough: another port or scheme is another origin.
        b"http://testserver:8000", b"https://testserver", b"ws://testserver",
    ]
    assert [origin for origin in foreign if async_to_sync(handshake)("/ws/nope/", origin) is not False] == []


def test_websockets_accept_the_sites_own_origin_scheme_host_and_port(settings):
    closed = {"type": "websocket.close", "code": 4404}  # accepted, then the unknown path is closed
    assert async_to_sync(handshake)("/ws/nope/", b"http://testserver") == closed
    assert async_to_sync(handshake)("/ws/nope/", b"http://testserver:80") == closed
    assert async_to_sync(handshake)("/ws/nope/", b"http://testserver:8000", b"testserver:8000") == closed
    assert async_to_sync(handshake)("/ws/nope/", b"http://testserver", b"testserver:8000") is False
    # A Host that is not one of ALLOWED_HOSTS is not this site, whatever the Origin says.
    assert async_to_sync(handshake)("/ws/nope/", b"http://evil.example", b"evil.example") is False
    # Behind a TLS proxy the page is https.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proto = (b"x-forwarded-proto", b"https")
    assert async_to_sync(handshake)("/ws/nope/", b"https://testserver", b"testserver", proto) == closed
    assert async_to_sync(handshake)("/ws/nope/", b"http://testserver", b"testserver", proto) is False
    # The public URL, for a proxy that sends Host without the port.
    settings.CROSSREAD = {"PUBLIC_URL": "https://crossread.example.org:8443"}
    assert async_to_sync(handshake)("/ws/nope/", b"https://crossread.example.org:8443") == closed
    assert async_to_sync(handshake)("/ws/nope/", b"https://crossread.example.org") is False


# ------------------------------------------------------------------------- the image fast route

SECURITY_HEADERS = {
    "content-security-policy", "x-content-type-options", "referrer-policy", "cross-origin-opener-policy",
    "x-frame-options", "strict-transport-security", "vary",
}


def _asgi_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, str]]:
    communicator = HttpCommunicator(app, "GET", path, headers=[(b"host", b"testserver"), *headers])
    response = async_to_sync(communicator.get_response)(timeout=30)
    return response["status"], {name.decode().lower(): value.decode() for name, value in response["headers"]}


@pytest.mark.django_db(transaction=True)  # real transactions, as the fast route's request signals expect
def test_the_image_fast_route_sends_the_security_headers_of_djangos_path(client, team, settings):
    from django.core.asgi import get_asgi_application

    from crossread.asgi import application, django_asgi_app
    from tests.factories.models import token_for
    from tests.viewer.dicomweb_helpers import stored_frame_url
    from viewer.fastpath import FastImageRoutes

    path = stored_frame_url(client, team)
    token = [(b"authorization", f"Token {token_for(team['viewer'])}".encode())]
    client.force_login(team["viewer"])
    cookie = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]

    def both(headers: list[tuple[bytes, bytes]], django: Any = django_asgi_app) -> tuple[dict, dict]:
        fast_status, fast = _asgi_get(application, path, headers)
        django_status, plain = _asgi_get(django, path, headers)
        assert fast_status == django_status
        return fast, plain

    for credentials in (token, cookie):
        fast, plain = both(credentials)
        assert {k: v for k, v in fast.items() if k in SECURITY_HEADERS} == {
            k: v for k, v in plain.items() if k in SECURITY_HEADERS
        }
        assert "content-security-policy" in fast and fast["x-frame-options"] == "DENY"
    assert "Cookie" in fast["vary"]
    # A Host that is not this site's is refused by both, as Django's middleware refuses it.
    communicator = HttpCommunicator(application, "GET", path, headers=[(b"host", b"evil.example"), *token])
    assert async_to_sync(communicator.get_response)(timeout=30)["status"] == 400

    # Behind TLS: HSTS on secure requests, and a plain-HTTP request is redirected, as Django does.
    # (Django's middlewares read the settings when its handler is made: a new one reads these.)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000
    fast, plain = both(token + [(b"x-forwarded-proto", b"https")], get_asgi_application())
    assert fast["strict-transport-security"] == plain["strict-transport-security"] == "max-age=31536000"
    assert {k: v for k, v in fast.items() if k in SECURITY_HEADERS} == {
        k: v for k, v in plain.items() if k in SECURITY_HEADERS
    }
    settings.SECURE_SSL_REDIRECT = True
    status, redirected = _asgi_get(FastImageRoutes(get_asgi_application()), path, token)
    assert status == 301 and redirected["location"].startswith("https://")
