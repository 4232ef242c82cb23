"""Logins under attack: one limit for every login form, the client's address behind a proxy, and a
per-username backoff that slows a guesser without locking the owner out."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from audit.models import Action, AuditEvent
from tests.factories.models import create_user

pytestmark = pytest.mark.django_db

WINDOW = 900
START = 1_000_000.0  # the clock below starts here


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from crossread import logins

    cache.clear()
    clock = Clock(START)
    monkeypatch.setattr(logins.LIMITER, "clock", clock)
    return clock


@pytest.fixture
def fresh() -> None:
    cache.clear()


def login(client: Any, username: str, password: str, address: str = "127.0.0.1", **headers: Any) -> Any:
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


# --------------------------------------------------------------------------------- every login form


def test_the_admin_login_is_rate_limited(client, settings, fresh):
    create_user("boss", is_staff=True, is_superuser=True)
    settings.CROSSREAD = {"LOGIN_ATTEMPTS": 3, "LOGIN_WINDOW_SECONDS": WINDOW}
    form = {"username": "boss", "password": "nope", "next": "/admin/"}
    for _ in range(3):
        assert client.post("/admin/login/", form).status_code == 200
    refused = client.post("/admin/login/", {**form, "password": "pw-boss-123!"}, HTTP_ACCEPT="text/html")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= WINDOW
    assert b"Try again in" in refused.content and b'href="/admin/login/"' in refused.content
    # A client that is not a browser gets the error vocabulary.
    api = client.post("/admin/login/", {**form, "password": "pw-boss-123!"}, HTTP_ACCEPT="application/json")
    assert api.status_code == 429 and api.json()["code"] == "rate_limited"
    assert api.json()["retry_after"] == int(api["Retry-After"])


def test_the_limit_ends_with_its_window_and_says_when(client, settings, clock):
    create_user("boss", is_staff=True, is_superuser=True)
    settings.CROSSREAD = {"LOGIN_ATTEMPTS": 3, "LOGIN_WINDOW_SECONDS": WINDOW}
    form = {"username": "boss", "password": "nope", "next": "/admin/"}
    first = clock.now  # the window starts with the first attempt
    for _ in range(3):
        assert client.post("/admin/login/", form).status_code == 200
        clock.now += 100
    refused = client.post("/admin/login/", {**form, "password": "pw-boss-123!"}, HTTP_ACCEPT="application/json")
    assert refused["Retry-After"] == str(WINDOW - 300)
    assert refused.json() == {
        "code": "rate_limited", "detail": "Too many failed attempts. Try again in 10 minutes.", "retry_after": 600,
    }
    clock.now = first + WINDOW - 1
    assert client.post("/admin/login/", {**form, "password": "pw-boss-123!"}).status_code == 429
    clock.now = first + WINDOW  # the window is over
    assert client.post("/admin/login/", {**form, "password": "pw-boss-123!"}).status_code == 302


def test_every_route_that_checks_a_password_goes_through_the_limited_backend(settings):
    from django.contrib.auth import get_backends

    from crossread import logins

    assert [type(backend) for backend in get_backends()] == [logins.RateLimitedModelBackend]


@pytest.mark.django_db(transaction=True)  # aauthenticate reads the database from another thread
def test_async_authentication_is_limited_too(team, settings, rf, fresh):
    from asgiref.sync import async_to_sync
    from django.contrib.auth import aauthenticate

    settings.CROSSREAD = {"LOGIN_ATTEMPTS": 2, "LOGIN_WINDOW_SECONDS": WINDOW}
    request = rf.post("/", REMOTE_ADDR="198.51.100.4")
    for _ in range(2):
        assert async_to_sync(aauthenticate)(request, username="reader", password="nope") is None
    with pytest.raises(Exception) as refused:
        async_to_sync(aauthenticate)(request, username="reader", password="pw-reader-123!")
    assert type(refused.value).__name__ == "LoginThrottled"


# ----------------------------------------------------------------------------- the client's address


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(settings):
    from crossread.proxies import decide, scope_client_address

    settings.CROSSREAD = {"TRUSTED_PROXIES": ["127.0.0.1/32", "10.0.0.0/8"]}
    # The proxy appends the address it saw: the right-most address that is not a proxy is the client.
    assert decide("127.0.0.1", "203.0.113.7") == "203.0.113.7"
    assert decide("127.0.0.1", "6.6.6.6, 203.0.113.7, 10.1.2.3") == "203.0.113.7"  # the left is the client's
    assert decide("::ffff:127.0.0.1", "2001:db8::1") == "2001:db8::1"
    assert decide("127.0.0.1", "") == "127.0.0.1"
    assert decide("127.0.0.1", "10.0.0.5, 10.0.0.9") == "10.0.0.5"  # all proxies: the furthest
    assert decide("127.0.0.1", "203.0.113.7, garbage") == "127.0.0.1"
    # From anyone else the header is the client's own say-so.
    assert decide("198.51.100.9", "203.0.113.7") == "198.51.100.9"
    settings.CROSSREAD = {}
    assert decide("127.0.0.1", "203.0.113.7") == "127.0.0.1"
    # Websockets: the scope's client and headers.
    settings.CROSSREAD = {"TRUSTED_PROXIES": ["127.0.0.1/32"]}
    scope = {"client": ["127.0.0.1", 5000], "headers": [(b"x-forwarded-for", b"203.0.113.7")]}
    assert scope_client_address(scope) == "203.0.113.7"


def test_trusted_proxies_come_from_the_environment(monkeypatch):
    from crossread.env import get_networks

    monkeypatch.setenv("CROSSREAD_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8 ,::1")
    assert get_networks("CROSSREAD_TRUSTED_PROXIES") == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    monkeypatch.setenv("CROSSREAD_TRUSTED_PROXIES", "nginx")
    with pytest.raises(ImproperlyConfigured, match="nginx"):
        get_networks("CROSSREAD_TRUSTED_PROXIES")


def test_behind_a_proxy_one_clients_failures_do_not_lock_out_the_others(
    client, team, settings, fresh, django_capture_on_commit_callbacks
):
    settings.CROSSREAD = {"LOGIN_ATTEMPTS": 3, "LOGIN_WINDOW_SECONDS": WINDOW, "TRUSTED_PROXIES": ["127.0.0.1"]}
    for _ in range(3):
        assert login(client, "nobody", "nope", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 200
    assert login(client, "reader", "pw-reader-123!", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    with django_capture_on_commit_callbacks(execute=True):
        assert login(client, "reader", "pw-reader-123!", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 302
    # The audit trail records the client, not the proxy.
    failed = AuditEvent.objects.filter(action=Action.LOGIN_FAILED).first()
    assert failed.source_ip == "203.0.113.7"
    assert AuditEvent.objects.get(action=Action.LOGIN).source_ip == "198.51.100.1"


def test_a_client_cannot_escape_its_limit_by_forging_forwarded_for(client, team, settings, fresh):
    settings.CROSSREAD = {"LOGIN_ATTEMPTS": 3, "LOGIN_WINDOW_SECONDS": WINDOW, "TRUSTED_PROXIES": ["127.0.0.1"]}
    for n in range(3):
        forged = f"192.0.2.{n}"
        assert login(client, f"nobody{n}", "x", "198.51.100.9", HTTP_X_FORWARDED_FOR=forged).status_code == 200
    forged = login(client, "reader", "pw-reader-123!", "198.51.100.9", HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert forged.status_code == 429
    # Nor behind the trusted proxy, by putting addresses to the left of the one the proxy appends.
    for n in range(3):
        assert login(client, f"nobody{n}", "x", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7").status_code == 200
    assert login(client, "reader", "pw-reader-123!", HTTP_X_FORWARDED_FOR="192.0.2.9, 203.0.113.7").status_code == 429


def test_ipv6_clients_are_counted_per_64(client, team, settings, fresh):
    settings.CROSSREAD = {"LOGIN_ATTEMPTS": 3, "LOGIN_WINDOW_SECONDS": WINDOW}
    for n in range(1, 4):
        assert login(client, "nobody", "x", f"2001:db8:1:2::{n}").status_code == 200
    assert login(client, "reader", "pw-reader-123!", "2001:db8:1:2::ffff").status_code == 429
    assert login(client, "reader", "pw-reader-123!", "2001:db8:1:3::1").status_code == 302


# ------------------------------------------------------------------------------ per-username backoff


def test_a_usernames_failures_slow_down_instead_of_locking_its_owner_out(client, team, settings, clock):
    settings.CROSSREAD = {
        "LOGIN_ATTEMPTS": 100, "LOGIN_WINDOW_SECONDS": WINDOW, "LOGIN_BACKOFF_AFTER": 3, "LOGIN_BACKOFF_MAX_SECONDS": 8,
    }
    # Guesses from many addresses: the first three are free, then each waits 1, 2, 4, 8, 8 s.
    waits = []
    for n in range(10):
        address = f"198.51.100.{n}"
        response = login(client, "reader", "guess", address)
        if response.status_code == 429:
            waits.append(int(response["Retry-After"]))
            assert b"Too many failed attempts. Try again in" in response.content
            clock.now += waits[-1]
            response = login(client, "reader", "guess", address)
        assert response.status_code == 200
    assert waits == [1, 2, 4, 8, 8, 8, 8]
    # The owner, from an address of their own, waits the last delay, not a long window.
    refused = login(client, "reader", "pw-reader-123!", "192.0.2.1")
    assert refused.status_code == 429 and refused["Retry-After"] == "8"
    assert b"Try again in 8 seconds" in refused.content
    clock.now += 8
    assert login(client, "reader", "pw-reader-123!", "192.0.2.1").status_code == 302
    # A success forgets the failures; other usernames never waited.
    assert login(client, "reader", "typo", "192.0.2.1").status_code == 200
    assert login(client, "reader", "pw-reader-123!", "192.0.2.1").status_code == 302


def test_one_attempt_passes_each_time_a_usernames_wait_ends(settings, clock):
    from crossread import logins

    settings.CROSSREAD = {"LOGIN_BACKOFF_AFTER": 1, "LOGIN_WINDOW_SECONDS": WINDOW}
    limiter = logins.LIMITER
    limiter.failed("reader")
    clock.now += 1
    limiter.claim_username("reader")  # the first of two parallel attempts
    with pytest.raises(logins.LoginThrottled):
        limiter.claim_username("reader")
    limiter.failed("reader")  # its outcome opens the next wait (2 s)
    with pytest.raises(logins.LoginThrottled) as refused:
        limiter.claim_username("reader")
    assert refused.value.retry_after == 2
    clock.now += 2
    limiter.claim_username("reader")


def test_waits_are_said_in_words():
    from crossread import logins

    assert [logins.in_words(s) for s in (1, 8, 59, 60, 61, 890)] == [
        "in 1 second", "in 8 seconds", "in 59 seconds", "in 1 minute", "in 2 minutes", "in 15 minutes",
    ]


# ------------------------------------------------------------------------- a real server behind a proxy


@pytest.mark.live
def test_a_production_server_behind_a_proxy(tmp_path):
    """daphne with DJANGO_DEBUG=0 and CROSSREAD_TRUSTED_PROXIES, as docs/deployment.md says: one client's
    failures lock out that client only; websockets close unknown paths and refuse other origins cleanly."""
    import asyncio
    import re

    import requests

    from tests.collab.wsclient import Closed, WebSocket
    from tests.live import LiveSite

    site = LiveSite.create(
        tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="live-test-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1", CROSSREAD_TRUSTED_PROXIES="127.0.0.1",
    )
    create = "from django.contrib.auth.models import User; User.objects.create_user('reader', password='pw-reader-123!')"
    site.manage("shell", "-c", create)
    (url,) = site.start()
    try:
        def attempt(client_address: str, password: str, username: str = "reader") -> requests.Response:
            session = requests.Session()
            page = session.get(f"{url}/accounts/login/", timeout=30)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            form = {"username": username, "password": password, "csrfmiddlewaretoken": token}
            return session.post(
                f"{url}/accounts/login/", data=form,
                headers={"X-Forwarded-For": f"6.6.6.6, {client_address}"}, allow_redirects=False, timeout=60,
            )

        for n in range(10):  # ten usernames: the per-username backoff stays out of this
            assert attempt("203.0.113.7", "nope", f"guess{n}").status_code == 200
        refused = attempt("203.0.113.7", "pw-reader-123!")
        assert refused.status_code == 429 and "Try again in" in refused.text and int(refused.headers["Retry-After"]) > 0
        assert attempt("198.51.100.1", "pw-reader-123!").status_code == 302  # another client behind the proxy

        async def websocket_outcome(path: str, origin: str) -> int | None:
            try:
                ws = await WebSocket.connect(url.replace("http://", "ws://") + path, origin=origin)
            except Closed as refused:
                return refused.code  # the handshake's HTTP status
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except Closed as closed:
                return closed.code
            return None

        assert asyncio.run(websocket_outcome("/ws/nope/", url)) == 4404
        assert asyncio.run(websocket_outcome("/ws/nope/", url.rsplit(":", 1)[0] + ":1")) == 403
    finally:
        site.stop()
    log = b"".join(path.read_bytes() for path in tmp_path.glob("daphne-*.log")).decode()
    assert "Traceback" not in log, log
