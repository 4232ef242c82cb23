"""One error vocabulary for HTTP (pages, REST, DICOMweb) and websockets.

Services raise a :class:`DomainError`; the DRF exception handler, the plain Django views and the
websocket consumers all render it the same way: ``{"code": ..., "detail": ..., **data}``.
"""

from __future__ import annotations

import enum
from typing import Any

from django.dispatch import Signal
from django.http import JsonResponse


class ErrorCode(enum.StrEnum):
    BAD_REQUEST = "bad_request"
    NOT_AUTHENTICATED = "not_authenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    NOT_ACCEPTABLE = "not_acceptable"
    TOO_LARGE = "too_large"
    INVALID_DICOM = "invalid_dicom"
    UNPROCESSABLE = "unprocessable"
    RATE_LIMITED = "rate_limited"


_STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.NOT_AUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.NOT_ACCEPTABLE: 406,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.INVALID_DICOM: 400,
    ErrorCode.UNPROCESSABLE: 422,
    ErrorCode.RATE_LIMITED: 429,
}


class DomainError(Exception):
    """An error a user can act on. ``detail`` must never contain patient data."""

    code: ErrorCode = ErrorCode.BAD_REQUEST

    def __init__(self, detail: str, *, code: ErrorCode | None = None, **data: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.data = data

    @property
    def status(self) -> int:
        return _STATUS[self.code]

    def as_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "detail": self.detail, **self.data}


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class Conflict(DomainError):
    code = ErrorCode.CONFLICT


class BadRequest(DomainError):
    code = ErrorCode.BAD_REQUEST


class NotAuthenticated(DomainError):
    code = ErrorCode.NOT_AUTHENTICATED


#: Sent with ``request`` and ``error`` for a refusal that may be someone guessing identifiers (404,
#: 403). The audit trail records it (``audit.signals``); the foundation imports no app.
refused = Signal()


def log_refusal(request: Any, error: DomainError) -> None:
    """Refusals that may be someone guessing identifiers (404, 403) go to the audit trail."""
    if error.code not in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN) or request is None:
        return
    refused.send(sender=DomainError, request=request, error=error)


def error_headers(error: DomainError) -> dict[str, str]:
    """Headers a response carrying ``error`` needs: how to authenticate, when to try again."""
    if error.code == ErrorCode.NOT_AUTHENTICATED:
        return {"WWW-Authenticate": 'Token realm="crossread"'}
    if error.code == ErrorCode.RATE_LIMITED and "retry_after" in error.data:
        return {"Retry-After": str(error.data["retry_after"])}
    return {}


def error_response(error: DomainError) -> JsonResponse:
    return JsonResponse(error.as_dict(), status=error.status, headers=error_headers(error))


def drf_exception_handler(exc: Exception, context: dict[str, Any]):  # type: ignore[no-untyped-def]
    """DRF's handler, extended to render DomainError and to use the same ``code``/``detail`` shape."""
    from rest_framework import exceptions
    from rest_framework.response import Response
    from rest_framework.views import exception_handler

    if isinstance(exc, exceptions.NotFound):
        exc = NotFound(str(exc.detail))
    if isinstance(exc, DomainError):
        log_refusal(context.get("request"), exc)
        return Response(exc.as_dict(), status=exc.status, headers=error_headers(exc))
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": str(ErrorCode.BAD_REQUEST), "detail": "Invalid input.", "errors": response.data}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else str(ErrorCode.BAD_REQUEST)
        detail = response.data.get("detail", str(exc)) if isinstance(response.data, dict) else str(exc)
        response.data = {"code": code, "detail": str(detail)}
    return response
