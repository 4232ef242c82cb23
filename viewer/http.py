"""Plumbing shared by the plain (non-DRF) HTTP endpoints such as DICOMweb.

:func:`project_endpoint` authenticates the caller exactly as the REST API does (a DRF token, or the
browser session with its CSRF check on unsafe methods), resolves the project through
:func:`viewer.access.access_project`, and renders any :class:`DomainError` as JSON.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request

from crossread.errors import DomainError, ErrorCode, NotAuthenticated, error_response, log_refusal
from viewer.access import ProjectAccess, access_project
from viewer import grants
from viewer.fastpath import fast_path, run_sync
from viewer.models import Role

log = logging.getLogger(__name__)

View = Callable[..., HttpResponse]


class _SessionAuthentication(SessionAuthentication):
    """DRF's session authentication, with Django's CSRF check run on Django's own request.

    DRF runs the check on its :class:`Request`, whose ``POST`` parses the body with DRF's parsers:
    a body none of them reads (STOW-RS's multipart/related) raised UnsupportedMediaType, a 500,
    and a body one of them read could no longer be read as ``request.body``. Django's request
    looks for ``csrfmiddlewaretoken`` in form bodies only and leaves any other body unread.
    """

    def enforce_csrf(self, request: Request) -> None:
        super().enforce_csrf(request._request)


def authenticate(request: HttpRequest) -> Any:
    """The user behind a token or a session; AnonymousUser when neither. Raises on a bad token or CSRF."""
    drf_request = Request(request, authenticators=[TokenAuthentication(), _SessionAuthentication()])
    try:
        return drf_request.user
    except drf_exceptions.AuthenticationFailed as exc:
        raise NotAuthenticated(str(exc.detail)) from None
    except drf_exceptions.PermissionDenied as exc:  # CSRF failure on a session-authenticated unsafe request
        raise DomainError(str(exc.detail), code=ErrorCode.FORBIDDEN) from None


def project_endpoint(
    methods: tuple[str, ...], minimum: dict[str, str] | None = None, *, remember_access: bool = False
) -> Callable[[View], View]:
    """Decorate ``view(request, access, **kwargs)``; ``minimum`` maps a method to the role it needs.

    ``remember_access`` (only for views whose GET needs no more than the viewer role: reads) keeps a
    GET's granted decision in the one memory of grants (:mod:`viewer.grants`), and a GET whose
    credentials were granted the project within its TTL is served with that decision, without
    authenticating and reading the membership again. A refusal always takes the full path.
    """
    needed = {method: Role.VIEWER for method in methods} | (minimum or {})
    if remember_access and needed.get("GET", Role.VIEWER) != Role.VIEWER:
        raise ValueError("remember_access is for views whose GET needs the viewer role only")

    def decorator(view: View) -> View:
        @csrf_exempt  # CSRF is enforced in authenticate() for session users, as DRF does
        @functools.wraps(view)
        def wrapper(request: HttpRequest, slug: str, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise DomainError(
                        f"Method {request.method} is not allowed here.", code=ErrorCode.BAD_REQUEST
                    )
                remembered = remember_access and request.method in ("GET", "HEAD")
                access = grants.recent_access(request, slug) if remembered else None
                if access is not None:
                    request.user = _member(access)
                else:
                    generation = grants.GRANTS.generation  # read before the check (see GrantMemory.remember)
                    request.user = authenticate(request)
                    access = access_project(request.user, slug, minimum=needed[request.method])
                    if remembered:
                        grants.remember_access(request, slug, access, generation)
                return view(request, access, **kwargs)
            except DomainError as error:
                log_refusal(request, error)
                response = error_response(error)
                if request.method not in methods:
                    response.status_code = 405
                    response["Allow"] = ", ".join(methods)
                return response

        return wrapper

    return decorator


def _member(access: ProjectAccess) -> Any:
    """The user a remembered decision was granted to (read only if the view asks)."""
    return SimpleLazyObject(lambda: access.membership.user)


def fast_endpoint(
    methods: tuple[str, ...] = ("GET",), minimum: dict[str, str] | None = None
) -> Callable[[View], Callable[..., Any]]:
    """:func:`project_endpoint` with ``remember_access``, as an async view that :mod:`viewer.fastpath`
    serves on its lean route (no middleware chain): the searches of QIDO-RS, asked for by every
    worklist, study and series a client opens, in the one thread of that route; STOW-RS's POST, in a
    thread of its own (an ingest takes seconds: it holds up no search or image). Its CSRF check for a
    session's POST is :func:`authenticate`'s, as for any POST here."""

    def decorator(view: View) -> Callable[..., Any]:
        checked = project_endpoint(methods, minimum, remember_access=True)(view)

        @functools.wraps(view)
        async def endpoint(request: HttpRequest, slug: str, **kwargs: Any) -> HttpResponse:
            long = request.method not in ("GET", "HEAD")
            return await run_sync(checked, request, slug, own_thread=long, **kwargs)

        endpoint.csrf_exempt = True  # type: ignore[attr-defined]  # (checked in authenticate(), as DRF does)
        return fast_path(endpoint, methods=("GET", "HEAD", *(m for m in methods if m == "POST")))

    return decorator


__all__ = ["ProjectAccess", "authenticate", "fast_endpoint", "project_endpoint"]
