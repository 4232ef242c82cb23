"""Hardening that every page shares: a Content Security Policy and rate-limited logins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from crossread.conf import option

#: Scripts only from this origin (ES modules, no inline script); websockets and fetch to this origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


def _attempt_keys(request: HttpRequest) -> list[str]:
    address = request.META.get("REMOTE_ADDR", "")
    username = str(request.POST.get("username", ""))[:150].lower()
    return [f"login-attempts:ip:{address}", f"login-attempts:user:{username}"]


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login view, refusing with 429 after too many failed attempts per address or username."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        limit, window = option("LOGIN_ATTEMPTS"), option("LOGIN_WINDOW_SECONDS")
        keys = _attempt_keys(request)
        if any((cache.get(key) or 0) >= limit for key in keys):
            response = self.render_to_response(self.get_context_data(rate_limited=True, form=self.get_form()))
            response.status_code = 429
            response["Retry-After"] = str(window)
            return response
        response = super().post(request, *args, **kwargs)
        if response.status_code != 302:  # a failed attempt
            for key in keys:
                cache.add(key, 0, timeout=window)
                cache.incr(key)
        return response
