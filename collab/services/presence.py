"""Connections and presence: a websocket opens, refreshes and closes its connection; each change is
announced to the session, and an opened or refreshed connection gets the snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import record
from collab.access import SessionAccess
from collab.models import Connection, ReadingSession
from collab.services.payloads import announce_call, announce_presence, snapshot
from collab.services.seats import seated_access


def open_connection(user: Any, session_id: Any, connection_id: str) -> dict[str, Any]:
    """Record a connection (presence), announce it, and return the ``session.state`` snapshot."""
    access = seated_access(user, session_id)
    with transaction.atomic():
        Connection.objects.create(id=connection_id, session=access.session, user=user, seen_at=timezone.now())
        announce_presence(access.session)
        record(Action.SESSION_JOINED, actor=user, project=access.session.project, object_type="session",
               object_id=str(access.session.pk))
    return snapshot(access)


def close_connection(session_id: int, connection_id: str) -> None:
    with transaction.atomic():
        closed = Connection.objects.filter(id=connection_id).select_related("user").first()
        deleted, _ = Connection.objects.filter(id=connection_id).delete()
        session = ReadingSession.objects.filter(pk=session_id).select_related("project").first()
        if deleted and session is not None:
            announce_presence(session)
            if closed is not None and closed.in_call:  # leaving the session leaves its call
                record(Action.CALL_LEFT, actor=closed.user, project=session.project, object_type="session",
                       object_id=str(session.pk))
                announce_call(session)
            record(Action.SESSION_LEFT, actor=closed.user if closed else None, project=session.project,
                   object_type="session", object_id=str(session.pk))


def touch_connections(connection_ids: Sequence[str]) -> None:
    Connection.objects.filter(id__in=list(connection_ids)).update(seen_at=timezone.now())


def refreshed_state(user: Any, session_id: Any) -> tuple[SessionAccess, dict[str, Any]]:
    """A fresh access (with its seat) and snapshot after a change of role or mode."""
    access = seated_access(user, session_id)
    return access, snapshot(access)
