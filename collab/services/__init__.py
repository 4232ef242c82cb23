"""The actions of reading sessions: every write that others must see goes through here.

Each action authorises through :func:`collab.access.access_session` (or ``access_project`` to create),
validates, writes in one transaction, and broadcasts after commit (:mod:`collab.events`). REST views,
pages and the websocket consumer call these and nothing else; annotations are stored by
:mod:`annotations.services`, with :mod:`.live` adding the session's rules (seat, status, blinding).

One module a concern, each importing only those below it here (an import contract in pyproject.toml):

- :mod:`.invitations`: signed links that seat whoever follows them
- :mod:`.presence`: a websocket's connection opened, refreshed and closed, and its snapshot
- :mod:`.live`: annotations written in a session (the writer's seat, the instance in the session, the
  point budgets, the announcement on commit)
- :mod:`.call`: the session's call (joining, leaving, the check of every signalling message)
- :mod:`.chat`: the session's chat (a message posted, the export)
- :mod:`.lost_access`: the signal receivers that close the connections of a seat, membership or account
  taken away (connected when this package is imported: ``collab.apps``)
- :mod:`.seats`: seating and unseating, a websocket's seated access, the hubs' seat check (``check_seats``)
- :mod:`.sessions`: creating, changing and closing a session; the checks of its fields; its audit
- :mod:`.payloads`: what is sent (the session, its participants, an annotation, the snapshot, presence)

Re-exported here are the calls the views, the consumer, the hub and the tests make through
``collab.services``.
"""

from collab.access import access_session
from collab.services import lost_access  # noqa: F401  (connects the receivers)
from collab.services.call import check_caller, join_call, leave_call
from collab.services.chat import export_chat, post_chat
from collab.services.invitations import (
    accept_invitation,
    check_invitation,
    create_invitation,
    invitation_payload,
    invitation_token,
    invitations_of,
    revoke_invitation,
)
from collab.services.live import (
    create_annotation,
    delete_annotation,
    delete_session_annotation,
    prepare_live_writes,
    update_annotation,
)
from collab.services.payloads import call_roster, participants_payload, session_payload, sessions_payload, snapshot, visible_session_annotations
from collab.services.presence import close_connection, open_connection, refreshed_state, touch_connections
from collab.services.seats import SeatCheck, check_seats, remove_participant, seat_participant, seated_access
from collab.services.sessions import close_session, create_session, sessions_for, update_session

__all__ = [
    "SeatCheck", "accept_invitation", "access_session", "call_roster", "check_caller", "export_chat", "join_call", "leave_call", "post_chat", "check_invitation", "check_seats", "close_connection",
    "close_session", "create_annotation", "create_invitation", "create_session", "delete_annotation",
    "delete_session_annotation", "invitation_payload", "invitation_token", "invitations_of", "open_connection",
    "participants_payload", "prepare_live_writes", "refreshed_state", "remove_participant", "revoke_invitation",
    "seat_participant", "seated_access", "session_payload", "sessions_for", "sessions_payload", "snapshot", "touch_connections",
    "update_annotation", "update_session", "visible_session_annotations",
]
