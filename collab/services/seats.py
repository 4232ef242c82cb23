"""Seats: seating and unseating participants, a websocket's seated access, and the hubs' seat check of
many users at once (:func:`check_seats`, over two SQL statements).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from audit.models import Action, Outcome
from audit.services import record
from collab import events
from collab.access import Grant, SessionAccess, access_session
from collab.models import Participant, ReadingSession, Status
from collab.services.payloads import announce_presence
from collab.services.sessions import audit_session, check_seat_role, check_user, next_colour
from collab.visibility import Seat, decide_seat, manages_session
from crossread.errors import BadRequest, Conflict, DomainError, ErrorCode, NotFound
from viewer.models import Membership, Project, Role


def seat_participant(access: SessionAccess, username: Any, role: Any) -> Participant:
    """Seat a project member, or change the role of a seated one."""
    access.require_manager()
    if access.session.status == Status.CLOSED:
        raise Conflict("The session is closed.")
    return give_seat(access.session, access.project, check_user(username), role, access.user)


def give_seat(session: ReadingSession, project_access: Any, user: Any, role: Any, actor: Any) -> Participant:
    """Seat ``user`` with ``role``, or change the role of their seat (audited as ``actor``'s act); the
    session is told who is present. For :func:`seat_participant` and an accepted invitation."""
    _, role = check_seat_role(project_access, user, role)
    with transaction.atomic():
        seat = Participant.objects.select_for_update().filter(session=session, user=user).first()
        if seat is None:
            seat = Participant.objects.create(session=session, user=user, role=role, colour=next_colour(session))
            audit_session(Action.SESSION_SEATED, actor, session, user=user.get_username(), role=role)
        elif seat.role != role:
            audit_session(Action.SESSION_SEATED, actor, session, user=user.get_username(), role=role, previous=seat.role)
            seat.role = role
            seat.save(update_fields=["role"])
            # What this user may see changed: their connections take a fresh snapshot.
            events.broadcast(session.pk, events.hub_message("seat", user=user.get_username()))
        announce_presence(session)
    return seat


def remove_participant(access: SessionAccess, username: Any) -> None:
    """Unseat a participant; their open connections are closed (4403) at once."""
    access.require_manager()
    user = check_user(username)
    if user.pk == access.session.organizer_id:
        raise BadRequest("The session's organizer keeps a seat.")
    with transaction.atomic():
        deleted, _ = Participant.objects.filter(session=access.session, user=user).delete()
        if not deleted:
            raise NotFound("No such participant.")
        audit_session(Action.SESSION_UNSEATED, access.user, access.session, user=user.get_username())
        announce_presence(access.session)  # (the connections are closed by lost_access._on_seat_deleted)


def seated_access(user: Any, session_id: Any) -> SessionAccess:
    """``access_session`` for a websocket: a seat is needed (an organizer without one is refused).

    A refusal (not found, forbidden) is audited as HTTP refusals are (``crossread.errors.log_refusal``):
    a socket opened on a guessed session id leaves an ``access.denied`` entry.
    """
    try:
        access = access_session(user, session_id)
        access.require_seat()
    except DomainError as error:
        if error.code in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN):
            record(Action.ACCESS_DENIED, actor=user, outcome=Outcome.FAILURE, object_type="session",
                   object_id=str(session_id)[:200], code=str(error.code), via="websocket")
        raise
    return access


@dataclass(frozen=True)
class SeatCheck:
    """Who of a process's connected participants still holds a seat, as :func:`access_session` decides.

    ``mode`` is ``None`` when the session is gone; ``private`` is its project's ``private_annotations``. ``seats`` holds the current seat of each user who still
    has one; ``refused`` the reason of each who lost it (``not_found``: no longer a member of the project,
    or the session is gone; ``forbidden``: a member without a seat; ``not_authenticated``: deactivated).
    ``grants``: for each seated user, what a write's access check would read (:class:`collab.access.Grant`).
    """

    mode: str | None
    seats: dict[str, Seat]
    refused: dict[str, ErrorCode]
    grants: dict[str, Grant] = field(default_factory=dict)
    private: bool = False


def check_seats(session_id: int, usernames: Iterable[str]) -> SeatCheck:
    """:func:`seated_access` for many users in two statements: what each process's hub asks every second.

    The hub asks for all its local connections at once, so the cost does not grow with the readers. The
    statements are plain SQL over the models' tables (:func:`_seat_check_sql`): the ORM's four queries
    cost 2.9 ms for 25 readers on an idle machine, nearly all of it compiling them, and three times that
    under load, while the thread they run in is the one every live write waits for; these cost 0.2 ms.
    """
    wanted = set(usernames)
    session_sql, seats_sql = _seat_check_sql(len(wanted))
    with connection.cursor() as cursor:
        cursor.execute(session_sql, [session_id])
        session = cursor.fetchone()
        if session is None:
            return SeatCheck(None, {}, dict.fromkeys(wanted, ErrorCode.NOT_FOUND))
        mode, status, project_id, organizer_id, private = session
        rows = []
        if wanted:
            cursor.execute(seats_sql, [project_id, session_id, *wanted])
            rows = cursor.fetchall()
    found = {name: (pk, active, role, seated) for pk, name, active, role, seated in rows}
    seats: dict[str, Seat] = {}
    grants: dict[str, Grant] = {}
    refused: dict[str, ErrorCode] = {}
    for name in wanted:
        pk, active, role, seated = found.get(name, (None, False, None, None))
        organizer = manages_session(is_session_organizer=pk is not None and pk == organizer_id, project_role=role)
        refusal = decide_seat(authenticated=pk is not None and bool(active), project_role=role, seat_role=seated,
                              manages=organizer, seat_required=True)
        if refusal is not None:
            refused[name] = ErrorCode(refusal)
        else:
            seats[name] = Seat(name, seated, organizer, role == Role.ORGANIZER)
            grants[name] = Grant(seats[name], role, status, mode)
    return SeatCheck(mode, seats, refused, grants, bool(private))


@functools.lru_cache(maxsize=64)
def _seat_check_sql(users: int) -> tuple[str, str]:
    """The two statements of :func:`check_seats` for ``users`` usernames, with the models' own table and
    column names: the session's mode, status, project, organizer and whether its project's annotations
    are private; then, for each of those users who
    exists, its id, username, whether it is active, its project role and its seat's role (``NULL`` when it
    has none)."""
    quote = connection.ops.quote_name
    User = get_user_model()

    def column(model: Any, name: str) -> str:
        return quote(model._meta.get_field(name).column)

    session, user = quote(ReadingSession._meta.db_table), quote(User._meta.db_table)
    membership, participant = quote(Membership._meta.db_table), quote(Participant._meta.db_table)
    user_pk, username = quote(User._meta.pk.column), column(User, User.USERNAME_FIELD)
    project = quote(Project._meta.db_table)
    session_sql = (
        f"SELECT s.{column(ReadingSession, 'mode')}, s.{column(ReadingSession, 'status')}, "
        f"s.{column(ReadingSession, 'project')}, s.{column(ReadingSession, 'organizer')}, "
        f"p.{column(Project, 'private_annotations')} FROM {session} s "
        f"JOIN {project} p ON p.{quote(Project._meta.pk.column)} = s.{column(ReadingSession, 'project')} "
        f"WHERE s.{quote(ReadingSession._meta.pk.column)} = %s"
    )
    seats_sql = (
        f"SELECT u.{user_pk}, u.{username}, u.{column(User, 'is_active')}, m.{column(Membership, 'role')}, "
        f"p.{column(Participant, 'role')} FROM {user} u "
        f"LEFT JOIN {membership} m ON m.{column(Membership, 'user')} = u.{user_pk} "
        f"AND m.{column(Membership, 'project')} = %s "
        f"LEFT JOIN {participant} p ON p.{column(Participant, 'user')} = u.{user_pk} "
        f"AND p.{column(Participant, 'session')} = %s "
        f"WHERE u.{username} IN ({', '.join(['%s'] * users)})"
    )
    return session_sql, seats_sql
