"""Seats: seating and unseating participants, a websocket's seated access, and the hubs' seat check of
many users at once (:func:`check_seats`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from audit.models import Action, Outcome
from audit.services import record
from collab import events
from collab.access import SessionAccess, access_session, load_seats
from collab.models import Participant, ReadingSession, Status
from collab.services.payloads import announce_presence
from collab.services.sessions import audit_session, check_seat_role, check_user, next_colour
from collab.visibility import NOBODY, Grant, Seat, judge_seat
from crossread.errors import BadRequest, Conflict, DomainError, ErrorCode, NotFound


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

    ``mode`` is ``None`` when the session is gone; ``private`` is its project's ``private_annotations``.
    ``seats`` holds the current seat of each user who still has one; ``refused`` the reason of each who
    lost it (``not_found``: no longer a member of the project, or the session is gone; ``forbidden``: a
    member without a seat; ``not_authenticated``: deactivated). ``grants``: for each seated user, what a
    write's access check would read (:class:`collab.visibility.Grant`).
    """

    mode: str | None
    seats: dict[str, Seat]
    refused: dict[str, ErrorCode]
    grants: dict[str, Grant] = field(default_factory=dict)
    private: bool = False


def check_seats(session_id: int, usernames: Iterable[str]) -> SeatCheck:
    """:func:`seated_access` for many users at once: what each process's hub asks about once a second,
    for all its local connections, so the cost does not grow with the readers. The same loader
    (:func:`collab.access.load_seats`, two statements) and rule (:func:`collab.visibility.judge_seat`)
    as :func:`access_session`."""
    wanted = set(usernames)
    facts, people = load_seats(session_id, wanted)
    if facts is None:
        return SeatCheck(None, {}, dict.fromkeys(wanted, ErrorCode.NOT_FOUND))
    seats: dict[str, Seat] = {}
    grants: dict[str, Grant] = {}
    refused: dict[str, ErrorCode] = {}
    for name in wanted:
        decision = judge_seat(facts, name, people.get(name, NOBODY), seat_required=True)
        if decision.refusal is not None:
            refused[name] = ErrorCode(decision.refusal)
        elif decision.seat is not None and decision.grant is not None:
            seats[name], grants[name] = decision.seat, decision.grant
    return SeatCheck(facts.mode, seats, refused, grants, facts.private)
