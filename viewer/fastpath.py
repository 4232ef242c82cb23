"""A lean ASGI route for rendered images: the hot path of scrolling a stack.

Django's ASGI handler runs each synchronous middleware through ``sync_to_async``: about a dozen
thread hops per request, which cost more than rendering a cached 512x512 frame. Views marked with
:func:`fast_path` (the rendered, thumbnail and tile views) are called directly instead: the URL is
resolved by Django's own URLconf, the session and user are attached exactly as the session and
authentication middlewares would, and the view does its usual authentication and project access
checks. What the skipped middlewares would add to an image response (security headers) is added
here. Everything else goes to Django untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import import_module
from io import BytesIO
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.core import signals
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.utils.functional import SimpleLazyObject

ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]
FAST_METHODS = ("GET", "HEAD")


def fast_path(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an async, read-only view as safe to serve without the middleware chain."""
    view.fast_path = True  # type: ignore[attr-defined]
    return view


class FastImageRoutes:
    def __init__(self, django_app: ASGIHandler) -> None:
        self.django_app = django_app
        self.session_engine = import_module(settings.SESSION_ENGINE)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in FAST_METHODS:
            try:
                match = resolve(scope["path"])
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "fast_path", False):
                await self.serve(match, scope, send)
                return
        await self.django_app(scope, receive, send)

    async def serve(self, match: Any, scope: dict[str, Any], send: Any) -> None:
        await signals.request_started.asend(sender=self.__class__, scope=scope)
        try:
            request = ASGIRequest(scope, BytesIO())
            request.session = self.session_engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
            request.user = SimpleLazyObject(lambda: auth.get_user(request))
            response: HttpResponse = await match.func(request, *match.args, **match.kwargs)
            response.setdefault("X-Content-Type-Options", "nosniff")
            response.setdefault("Referrer-Policy", settings.SECURE_REFERRER_POLICY or "same-origin")
            if scope["method"] == "HEAD":
                response.content = b""
            await self.django_app.send_response(response, send)
        finally:
            await signals.request_finished.asend(sender=self.__class__)
