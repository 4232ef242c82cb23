"""The session's call: joining and leaving it (audited, the roster sent to everyone), and the check every
signalling message passes (:func:`check_caller`). Nothing of the media passes through the server: it
carries the WebRTC offers, answers and ICE candidates between two participants (``collab.hub``).
"""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction

from audit.models import Action
from collab.access import Forbidden, SessionAccess
from collab.ice import check_servers, ice_servers, reach
from collab.models import Connection
from collab.services.payloads import announce_call, call_roster
from collab.services.seats import seated_access
from collab.services.sessions import audit_session
from collab.visibility import may_call
from crossread.conf import option
from crossread.errors import NotFound


def check_caller(user: Any, session_id: int, confirmed: SessionAccess | None = None) -> SessionAccess:
    """The caller's access, if they may take part in the call now (else ``Forbidden``): a seat, the
    session active, and voice allowed in its mode (:func:`collab.visibility.may_call`).

    ``confirmed``: the access a websocket holds, which a seat check confirmed within the last second
    (``SessionHub.confirms``; any change of the session empties that memory); else read afresh.
    """
    usable = confirmed is not None and confirmed.session.pk == session_id and confirmed.user.pk == user.pk
    access = confirmed if usable and confirmed is not None else seated_access(user, session_id)
    session = access.session
    refusal = may_call(access.seat, status=session.status, mode=session.mode,
                       voice_when_blinded=session.voice_when_blinded)
    if refusal is not None:
        raise Forbidden(refusal)
    return access


def join_call(user: Any, session_id: int, connection_id: str, *, video: bool, ref: str,
              confirmed: SessionAccess | None = None) -> tuple[SessionAccess, dict[str, Any]]:
    """This connection joins the call: the ``call.joined`` answer (the ICE servers, with TURN credentials
    for this user when a secret is configured, how far calls reach, and who else is in the call)."""
    access = check_caller(user, session_id, confirmed)
    with transaction.atomic():
        changed = Connection.objects.filter(id=connection_id, session_id=session_id).update(in_call=True, video=video)
        if not changed:
            raise NotFound("This connection is not open.")
        audit_session(Action.CALL_JOINED, user, access.session, video=video)
        announce_call(access.session)
    configured = check_servers(option("ICE_SERVERS"))
    servers = ice_servers(configured, secret=option("TURN_SECRET"), user=str(user.pk), now=time.time(),
                          ttl=int(option("TURN_TTL_SECONDS")))
    me = user.get_username()
    return access, {
        "type": "call.joined", "ref": ref, "ice_servers": servers, "reach": reach(configured),
        "peers": [p for p in call_roster(access.session) if p["user"] != me],
    }


def leave_call(user: Any, session_id: int, connection_id: str) -> bool:
    """This connection leaves the call (audited, the roster sent); False when it was not in it. No
    check of the seat: anyone may always leave."""
    with transaction.atomic():
        row = Connection.objects.select_related("session__project").filter(id=connection_id, session_id=session_id,
                                                                           in_call=True).first()
        if row is None:
            return False
        Connection.objects.filter(pk=row.pk).update(in_call=False, video=False)
        audit_session(Action.CALL_LEFT, user, row.session)
        announce_call(row.session)
    return True
