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
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request

from crossread.errors import DomainError, ErrorCode, NotAuthenticated, error_response, log_refusal
from viewer.access import ProjectAccess, access_project
from viewer import grants
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

    ``remember_access`` keeps a granted decision in the one memory of grants (:mod:`viewer.grants`) for
    the image views' in-memory path (only for GET views that need the viewer role).
    """
    needed = {method: Role.VIEWER for method in methods} | (minimum or {})

    def decorator(view: View) -> View:
        @csrf_exempt  # CSRF is enforced in authenticate() for session users, as DRF does
        @functools.wraps(view)
        def wrapper(request: HttpRequest, slug: str, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise DomainError(
                        f"Method {request.method} is not allowed here.", code=ErrorCode.BAD_REQUEST
                    )
                generation = grants.GRANTS.generation  # read before the check (see GrantMemory.remember)
                request.user = authenticate(request)
                access = access_project(request.user, slug, minimum=needed[request.method])
                if remember_access:
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


__all__ = ["ProjectAccess", "authenticate", "project_endpoint"]
