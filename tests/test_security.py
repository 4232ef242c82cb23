"""Hardening shared by every page: CSP, cookies, login rate limit, no patient data in errors."""

from __future__ import annotations

import pytest
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
