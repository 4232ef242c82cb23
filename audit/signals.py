"""Authentication events from Django's signals, and refusals from the foundation's."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.models import Action, Outcome
from audit.services import record
from crossread.errors import refused


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record(Action.LOGIN, actor=user, request=request)


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record(Action.LOGOUT, actor=user, request=request)


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    record(
        Action.LOGIN_FAILED,
        actor_name=str(credentials.get("username", ""))[:150],
        request=request,
        outcome=Outcome.FAILURE,
    )


@receiver(refused, dispatch_uid="audit.refused")
def _refused(sender: Any, request: Any, error: Any, **kwargs: Any) -> None:
    """A 404 or 403 that may be someone guessing identifiers: audited with the path asked for."""
    record(
        Action.ACCESS_DENIED,
        actor=getattr(request, "user", None),
        request=request,
        outcome=Outcome.FAILURE,
        object_type="path",
        object_id=request.path,
        code=str(error.code),
    )
