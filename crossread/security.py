"""Hardening that every page shares: a Content Security Policy, and rate-limited logins (the
limits themselves are in :mod:`crossread.logins`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from crossread.errors import error_headers, error_response
from crossread.logins import LoginThrottled, in_words

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


class LoginThrottledMiddleware:
    """Answers a login refused by :mod:`crossread.logins` in any view that does not itself: a page
    saying when to try again (the admin's login), or ``{"code", "detail"}`` for a non-browser client."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, LoginThrottled):
            return None
        if "text/html" not in request.headers.get("Accept", ""):
            return error_response(exception)
        context = {"again": in_words(exception.retry_after), "back": request.get_full_path()}
        return TemplateResponse(
            request, "registration/throttled.html", context, status=429, headers=error_headers(exception)
        ).render()


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login view; a login refused by the limits of :mod:`crossread.logins` shows the form
    again with a 429 and says in words when to try again."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().post(request, *args, **kwargs)
        except LoginThrottled as refused:
            again = in_words(refused.retry_after)
            context = self.get_context_data(rate_limited=True, again=again, form=self.get_form())
            return self.render_to_response(context, status=429, headers=error_headers(refused))

