"""Hardening that every page shares: a Content Security Policy, rate-limited logins (the limits
themselves are in :mod:`crossread.logins`) and same-origin websockets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.template.response import TemplateResponse
from django.utils.deprecation import MiddlewareMixin

from crossread.conf import option
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


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Sync and async alike (``MiddlewareMixin``): under ASGI a sync-only middleware costs every
    request two thread hops."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class LoginThrottledMiddleware(MiddlewareMixin):
    """Answers a login refused by :mod:`crossread.logins` in any view that does not itself: a page
    saying when to try again (the admin's login), or ``{"code", "detail"}`` for a non-browser client."""

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


# --------------------------------------------------------------------------------------- websockets


class SameOriginWebsockets:
    """ASGI middleware: a websocket handshake goes on only from this site's own pages.

    A browser sends the page's origin (scheme, host and port) with every handshake, and only the
    site's own pages may use a reader's session cookie for a live socket. The origin must equal
    the site's: ``CROSSREAD_PUBLIC_URL``'s when set, or the one the handshake was addressed to, its
    ``Host`` header (one of ``ALLOWED_HOSTS``) with the scheme it came by (``wss``, or behind a TLS
    proxy the ``SECURE_PROXY_SSL_HEADER``). Ports count, default ports implied; a handshake without
    an Origin (not a browser) is refused too. Channels' ``AllowedHostsOriginValidator`` compares
    host names only, so any port or scheme on an allowed host passed.
    """

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and not same_origin(scope):
            await WebsocketDenier()(scope, receive, send)
            return
        await self.application(scope, receive, send)


def same_origin(scope: dict[str, Any]) -> bool:
    headers = {name: value.decode("latin-1") for name, value in scope.get("headers", ())}
    origin = _origin(headers.get(b"origin", ""))
    if origin is None:
        return False
    public = _origin(option("PUBLIC_URL"))
    if public is not None and origin == public:
        return True
    domain, port = split_domain_port(headers.get(b"host", ""))
    allowed = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])  # as Django
    if not domain or not validate_host(domain, allowed):
        return False
    proxy_ssl = settings.SECURE_PROXY_SSL_HEADER
    secure = scope.get("scheme") == "wss" or (
        proxy_ssl is not None
        and headers.get(proxy_ssl[0].removeprefix("HTTP_").lower().replace("_", "-").encode(), "").split(",")[0].strip()
        == proxy_ssl[1]
    )
    scheme = "https" if secure else "http"
    return origin == (scheme, domain, int(port) if port else _DEFAULT_PORTS[scheme])


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(text: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an http(s) origin or URL, default ports filled in; None if it is not one."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # urlsplit drops an IPv6 literal's brackets; a Host header keeps them
        host = f"[{host}]"
    return parts.scheme, host, port if port is not None else _DEFAULT_PORTS[parts.scheme]
