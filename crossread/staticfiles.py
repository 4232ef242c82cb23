"""Static files served by the ASGI application itself: hashed names, immutable caching, compression.

A production server (``DJANGO_DEBUG=0``) needs no proxy to serve the browser's scripts and styles.
``manage.py collectstatic`` copies ``static/`` to ``STATIC_ROOT`` through :class:`ManifestStorage`
(WhiteNoise's ``CompressedManifestStaticFilesStorage``): each file also under a name carrying a hash
of its content (``viewer/viewer.3f2a….js``) with gzip and Brotli copies beside it, and the manifest
that ``{% static %}`` reads to name them in pages. The ES modules import each other by relative URL:
Django rewrites those ``import``/``export ... from "./x.js";`` statements and ``import("./x.js")`` in
the hashed copies to the hashed names (``support_js_module_import_aggregation``), so a page loads
every module under its hashed name, once, and a changed module changes the names of all that import
it. A hashed name never changes content: it is sent with ``Cache-Control: max-age=315360000, public,
immutable``; an unhashed one (the original names stay, for ``new URL("./x.css", import.meta.url)``)
for a minute.

:class:`StaticFiles` answers ``GET`` and ``HEAD`` under ``STATIC_URL`` before Django's middleware
chain, as the rendered images are (``viewer.fastpath``): WhiteNoise's Django middleware, the library's
own configuration from the settings (``WHITENOISE_*``), picks the file, the encoding the client
accepts (``.br``, ``.gz``), the caching headers and ``304`` answers; the file is read in a worker
thread, not the thread Django runs synchronous views in, and sent as ASGI messages. (WhiteNoise is a
WSGI library: placed in ``MIDDLEWARE`` under Django's ASGI handler it works too, but every file would
cross the synchronous middlewares' thread hops and Django would consume its synchronous file iterator
with a warning.) While debugging (no ``collectstatic``), WhiteNoise finds the files in ``static/``
through the staticfiles finders at each request, with ``max-age=0``.

The response carries the security headers of the site's other answers (``nosniff``, the CSP, HSTS
on a secure request); a request Django would refuse (a ``Host`` outside ``ALLOWED_HOSTS``, plain HTTP
under ``SECURE_SSL_REDIRECT``) and a path that names no file go to Django.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from io import BytesIO
from typing import Any, Protocol
from urllib.parse import urlparse

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest
from whitenoise.middleware import WhiteNoiseMiddleware
from whitenoise.storage import CompressedManifestStaticFilesStorage

ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]


class ManifestStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's hashed, compressed storage, with ES module imports rewritten to hashed names."""

    support_js_module_import_aggregation = True


class Headers(Protocol):
    """What the site's security headers give (``viewer.fastpath.SecurityHeaders``)."""

    always: dict[str, str]
    hsts: str

    def lets_through(self, request: HttpRequest) -> bool: ...


class StaticFiles:
    """An ASGI application: static files under ``STATIC_URL`` through WhiteNoise, the rest to ``app``."""

    def __init__(self, app: ASGIApp, headers: Headers) -> None:
        self.app = app
        self.headers = headers
        self.whitenoise = WhiteNoiseMiddleware(get_response=_no_file)
        self.prefix = "/" + urlparse(settings.STATIC_URL or "/static/").path.strip("/") + "/"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and scope["path"].startswith(self.prefix):
            request = ASGIRequest(scope, BytesIO())
            if self.headers.lets_through(request):
                # Not the thread of Django's synchronous views: a file read never waits behind a query.
                answer = await sync_to_async(self._answer, thread_sensitive=False)(request)
                if answer is not None:
                    await self._send(request, *answer, send)
                    return
        await self.app(scope, receive, send)

    def _answer(self, request: HttpRequest) -> tuple[int, list[tuple[str, str]], bytes] | None:
        response = self.whitenoise(request)
        if response is None:
            return None
        try:
            body = b"".join(response) if request.method == "GET" else b""
        finally:
            response.close()
        return response.status_code, list(response.items()), body

    async def _send(self, request: HttpRequest, status: int, items: list[tuple[str, str]], body: bytes, send: Any) -> None:
        headers = dict(items)
        for name, value in self.headers.always.items():
            headers.setdefault(name, value)
        if self.headers.hsts and request.is_secure():
            headers.setdefault("Strict-Transport-Security", self.headers.hsts)
        encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": encoded})
        await send({"type": "http.response.body", "body": body})


def _no_file(request: HttpRequest) -> None:
    """WhiteNoise's "next middleware": no static file has this path (Django answers it)."""
    return None
