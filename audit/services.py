"""Writing the audit trail. Every app calls :func:`record`; nothing else writes AuditEvent rows."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from audit.context import current_request
from audit.models import Action, AuditEvent, Outcome
from crossread.proxies import client_address as crossread_client_address


def client_address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return crossread_client_address(request) or None


def record(
    action: Action | str,
    *,
    actor: Any = None,
    actor_name: str = "",
    request: HttpRequest | None = None,
    project: Any = None,
    object_type: str = "",
    object_id: str = "",
    outcome: Outcome | str = Outcome.SUCCESS,
    in_transaction: bool = False,
    source_ip: str | None = None,
    **detail: Any,
) -> None:
    """Append one event, after the surrounding transaction commits (a rolled-back action is not logged).

    A failed or refused action is recorded at once: it must be logged although nothing committed.
    ``in_transaction`` writes the event now, inside the surrounding transaction: it commits or rolls
    back with the rows it describes, and no crash between the commit and its hooks can lose it.
    ``source_ip``: the caller's address when there is no HTTP request (a DICOM node over DIMSE).
    """
    request = request if request is not None else current_request.get()
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    event = AuditEvent(
        actor=user,
        actor_name=actor_name or (user.get_username() if user else ""),
        action=str(action),
        outcome=str(outcome),
        project=getattr(project, "slug", project or "") or "",
        object_type=object_type,
        object_id=str(object_id)[:200],
        detail=detail,
        source_ip=source_ip or client_address(request),
        user_agent=(request.headers.get("User-Agent", "") if request is not None else "")[:300],
    )
    if in_transaction or outcome == Outcome.FAILURE or not transaction.get_connection().in_atomic_block:
        event.save()
    else:
        transaction.on_commit(event.save)
