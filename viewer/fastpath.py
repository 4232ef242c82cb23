"""A lean ASGI route for rendered images (the hot path of scrolling a stack) and QIDO-RS searches
(asked for by every worklist, study and series a client opens).

Django's ASGI handler runs each synchronous middleware through ``sync_to_async``: about a dozen
thread hops per request, which cost more than rendering a cached 512x512 frame. Views marked with
:func:`fast_path` (the rendered, thumbnail and tile views; the searches, ``viewer.http.fast_endpoint``)
are called directly instead: the URL is
resolved by Django's own URLconf, the session and user are attached exactly as the session and
authentication middlewares would, and the view does its usual authentication and project access
checks. What the skipped middlewares would add to an image response is added here: the security
headers (:class:`SecurityHeaders`: Content-Security-Policy, X-Content-Type-Options, Referrer-Policy,
Cross-Origin-Opener-Policy, X-Frame-Options, HSTS on a secure request), worked out once from the
settings, and ``Vary: Cookie`` when the session was read. A request Django's middlewares would stop
(a Host not in ``ALLOWED_HOSTS``, plain HTTP under ``SECURE_SSL_REDIRECT``) goes to Django.
Everything else goes to Django untouched.

Django's request signals (``request_started``, ``request_finished``: reset the query log, close
stale database connections, close cache connections) are sent around the view's synchronous,
database-using part, in the thread that runs it (:func:`run_sync`), as Django's WSGI handler does.
A request answered from memory on the event loop uses neither the database nor a thread, so it
sends none (sending them from the event loop costs two thread hops, more than the whole answer).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from importlib import import_module
from io import BytesIO
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import auth
from django.core import signals
from django.core.exceptions import DisallowedHost, RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils.cache import patch_vary_headers
from django.utils.functional import SimpleLazyObject

from audit.context import current_request
from crossread.bodies import BodyTooLarge, declared_length, request_too_large
from crossread.errors import DomainError, error_response

ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]
FAST_METHODS = ("GET", "HEAD")
#: Methods a view may also take on this route (``fast_path(view, methods=...)``): STOW-RS's POST.
ALL_FAST_METHODS = (*FAST_METHODS, "POST")


def fast_path(view: Callable[..., Any], methods: tuple[str, ...] = FAST_METHODS) -> Callable[..., Any]:
    """Mark an async view as safe to serve without the middleware chain for ``methods`` (read-only
    views; a POST only for a view that checks CSRF itself, as ``viewer.http.authenticate`` does)."""
    view.fast_path = True  # type: ignore[attr-defined]
    view.fast_methods = methods  # type: ignore[attr-defined]
    return view


class SecurityHeaders:
    """The headers Django's security middlewares give an image response, worked out from the settings
    once (and again when a test changes them): those of ``SecurityMiddleware``,
    ``crossread.security.ContentSecurityPolicyMiddleware`` and ``XFrameOptionsMiddleware``."""

    def __init__(self) -> None:
        self.load()
        signals.setting_changed.connect(self._changed, weak=False)

    def load(self) -> None:
        from crossread.security import CONTENT_SECURITY_POLICY

        always: dict[str, str] = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}
        if settings.SECURE_CONTENT_TYPE_NOSNIFF:
            always["X-Content-Type-Options"] = "nosniff"
        policy = settings.SECURE_REFERRER_POLICY
        if policy:
            items = [v.strip() for v in policy.split(",")] if isinstance(policy, str) else list(policy)
            always["Referrer-Policy"] = ",".join(items)
        if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
            always["Cross-Origin-Opener-Policy"] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
        always["X-Frame-Options"] = getattr(settings, "X_FRAME_OPTIONS", "DENY").upper()
        self.always = always
        self.hsts = ""
        if settings.SECURE_HSTS_SECONDS:
            self.hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
            self.hsts += "; includeSubDomains" if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS else ""
            self.hsts += "; preload" if settings.SECURE_HSTS_PRELOAD else ""
        self.ssl_redirect = bool(settings.SECURE_SSL_REDIRECT)
        self.hosts: dict[str, bool] = {}

    def lets_through(self, request: HttpRequest) -> bool:
        """False for a request Django's middlewares would not let reach the view: a Host not in
        ALLOWED_HOSTS (CommonMiddleware's 400), plain HTTP under SECURE_SSL_REDIRECT."""
        host = request.META.get("HTTP_HOST", "")
        allowed = self.hosts.get(host)
        if allowed is None:  # Django's own check, remembered per Host header (a few per site)
            try:
                request.get_host()
                allowed = True
            except DisallowedHost:
                allowed = False
            if len(self.hosts) < 64 and not settings.USE_X_FORWARDED_HOST:
                self.hosts[host] = allowed
        return allowed and not (self.ssl_redirect and not request.is_secure())

    def _changed(self, **kwargs: Any) -> None:
        self.load()

    def add(self, request: HttpRequest, response: HttpResponse) -> None:
        headers = response.headers
        for name, value in self.always.items():
            headers.setdefault(name, value)
        if self.hsts and request.is_secure():
            headers.setdefault("Strict-Transport-Security", self.hsts)
        if request.session.accessed:  # as SessionMiddleware: the answer depends on who asks
            patch_vary_headers(response, ("Cookie",))


class FastImageRoutes:
    def __init__(self, django_app: ASGIHandler) -> None:
        self.django_app = django_app
        self.session_engine = import_module(settings.SESSION_ENGINE)
        self.security_headers = SecurityHeaders()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ALL_FAST_METHODS:
            match = _fast_match(settings.ROOT_URLCONF, scope["path"])
            if match is not None and scope["method"] in getattr(match.func, "fast_methods", FAST_METHODS):
                await self.serve(match, scope, receive, send)
                return
        await self.django_app(scope, receive, send)

    async def serve(self, match: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = ASGIRequest(scope, BytesIO())
        if not self.security_headers.lets_through(request):
            await self.django_app(scope, receive, send)  # a 400 or a redirect to HTTPS (or an exemption)
            return
        body = None
        if scope["method"] not in FAST_METHODS:  # a body, spooled as Django's handler does
            # A body larger than any request this server takes is refused from its declared length,
            # unread, or once it passes the bound while it arrives (a chunked body declares none).
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            if limit is not None and declared_length(request.META) > limit:
                await self.refuse(request_too_large(), send)
                return
            try:
                body = await self.django_app.read_body(receive, limit)
            except RequestAborted:  # the client went away: nothing to answer
                return
            except BodyTooLarge:
                await self.refuse(request_too_large(), send)
                return
            request = ASGIRequest(scope, body)
        request.served_fast = True  # type: ignore[attr-defined]  # (run_sync sends the request signals)
        request.session = self.session_engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
        request.user = SimpleLazyObject(lambda: auth.get_user(request))
        token = current_request.set(request)  # (as audit.context.AuditContextMiddleware: for the audit trail)
        try:
            response: HttpResponse = await match.func(request, *match.args, **match.kwargs)
        finally:
            current_request.reset(token)
            if body is not None:
                body.close()
        self.security_headers.add(request, response)
        if not response.streaming and not response.has_header("Content-Length"):
            # (as Django's CommonMiddleware would: a known length, not a chunked body)
            response["Content-Length"] = str(len(response.content))
        if scope["method"] == "HEAD":
            response.content = b""
        await self.django_app.send_response(response, send)


    async def refuse(self, error: DomainError, send: Any) -> None:
        """``error`` as JSON, before the request has a session or a view (its body left unread)."""
        response = error_response(error)
        for name, value in self.security_headers.always.items():
            response.headers.setdefault(name, value)
        response["Connection"] = "close"
        await self.django_app.send_response(response, send)


@functools.lru_cache(maxsize=4096)
def _fast_match(urlconf: str, path: str) -> ResolverMatch | None:
    """The URL match of ``path`` if its view is a fast-path view, else None.

    Cached per (URLconf, path): URL patterns do not change while the process runs, a scrolling
    reader asks for the same few hundred paths again (one per slice and window does not change the
    path), and resolving walks every pattern of the site. The view reads only ``args``/``kwargs``
    of the match, which it does not modify.
    """
    try:
        match = resolve(path, urlconf)
    except Resolver404:
        return None
    return match if getattr(match.func, "fast_path", False) else None


def _between_request_signals(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    signals.request_started.send(sender=FastImageRoutes)
    try:
        return func(*args, **kwargs)
    finally:
        signals.request_finished.send(sender=FastImageRoutes)


async def run_sync(
    func: Callable[..., Any], request: HttpRequest, *args: Any, own_thread: bool = False, **kwargs: Any
) -> Any:
    """Call ``func(request, ...)`` (synchronous, may use the database) in Django's thread for
    synchronous code. Served by :class:`FastImageRoutes`, between ``request_started`` and
    ``request_finished`` as a synchronous handler would: one thread hop for the signals and the work
    together. Served by Django's own handler (another deployment's routing, the test client), Django
    sends them itself: sending them again here would close the connection under a test's transaction."""
    if getattr(request, "served_fast", False):
        # ``own_thread``: long work (an ingest) in a thread of the pool, not the one thread all the
        # other requests of this route share, so that it holds none of them up.
        call = sync_to_async(_between_request_signals, thread_sensitive=not own_thread)
        return await call(func, request, *args, **kwargs)
    return await sync_to_async(func)(request, *args, **kwargs)
