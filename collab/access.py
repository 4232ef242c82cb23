"""``access_session``: the one place that decides who reaches a reading session.

One loader (:func:`load_seats`: two SQL statements, for one user or a hub's many) and one rule
(:func:`collab.visibility.judge_seat`) over what it loads:

- not logged in, or a deactivated account → ``not_authenticated``;
- an id that is not a positive integer, no such session, or a session of a project the user is not a
  member of → ``not_found`` (existence does not leak);
- a member of the project who has no seat and does not organize → ``forbidden`` (the member may know the
  project's sessions exist, as ``access_project`` answers 403 to a member without the role);
- otherwise a :class:`SessionAccess`: the seat (or ``None`` for an organizer without one) and whether the
  user manages the session (its organizer or a project organizer).

The hubs' once-a-second check of all their sockets (``collab.services.seats.check_seats``) loads and
decides the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from crossread.errors import DomainError, ErrorCode, NotAuthenticated, NotFound
from viewer.access import ProjectAccess
from viewer.models import Membership, Project, Role

from collab.models import Participant, ReadingSession, Status
from collab.visibility import (ANNOTATING_ROLES, NOBODY, Grant, PersonFacts, Seat, SeatDecision, SessionFacts,
                               judge_seat)


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


@dataclass(frozen=True)
class SessionAccess:
    session: ReadingSession
    project: ProjectAccess
    user: Any
    decision: SeatDecision = SeatDecision(None)

    @property
    def manages(self) -> bool:
        return self.decision.manages

    @property
    def seat(self) -> Seat | None:
        return self.decision.seat

    @property
    def grant(self) -> Grant | None:
        return self.decision.grant

    def require_manager(self) -> None:
        if not self.manages:
            raise Forbidden("Only the session's organizer may do this.")

    def require_seat(self) -> Seat:
        seat = self.seat
        if seat is None:
            raise Forbidden("You are not a participant of this session.")
        return seat

    def require_annotator(self) -> Seat:
        seat = self.require_seat()
        if seat.role not in ANNOTATING_ROLES:
            raise Forbidden(f"A {seat.role} does not annotate in this session.")
        if not self.project.can(Role.READER):
            raise Forbidden("Annotating needs the reader role in the project.")
        if self.session.status != Status.ACTIVE:
            raise Forbidden(f"The session is {self.session.status}; annotations are accepted while it is active.")
        return seat


def parse_session_id(session_id: object) -> int:
    text = str(session_id)
    if not text.isascii() or not text.isdigit() or len(text) > 18 or int(text) <= 0:
        raise NotFound("No such session.")
    return int(text)


def _refused(code: str) -> DomainError:
    if code == "not_authenticated":
        return NotAuthenticated("Authentication credentials were not provided.")
    if code == "not_found":
        return NotFound("No such session.")
    return Forbidden("You are not a participant of this session.")


def access_session(user: Any, session_id: object) -> SessionAccess:
    if not user.is_authenticated:
        raise NotAuthenticated("Authentication credentials were not provided.")
    pk = parse_session_id(session_id)
    username = user.get_username()
    facts, people = load_seats(pk, [username])
    if facts is None:
        raise NotFound("No such session.")
    decision = judge_seat(facts, username, people.get(username, NOBODY), seat_required=False)
    if decision.refusal is not None:
        raise _refused(decision.refusal)
    # Granted: the session's row for the services, and the project access the facts give (no second read).
    session = ReadingSession.objects.select_related("project", "organizer").filter(pk=pk).first()
    if session is None:
        raise NotFound("No such session.")
    membership = Membership(project=session.project, user=user, role=people[username].project_role)
    return SessionAccess(session=session, project=ProjectAccess(session.project, membership), user=user,
                         decision=decision)


def load_seats(session_id: int, usernames: Iterable[str]) -> tuple[SessionFacts | None, dict[str, PersonFacts]]:
    """The facts of the seat rule for a session and some users, in two statements: the session (``None``
    when there is none), then each of those users who exists, with their project role and seat.

    One loader for a REST call (one user) and a hub's check of all its sockets (many): plain SQL over the
    models' tables (:func:`_seat_sql`), as the ORM's four queries cost 2.9 ms for 25 readers on an idle
    machine, nearly all of it compiling them, and three times that under load, in the thread every live
    write waits for; these cost 0.2 ms.
    """
    wanted = sorted(set(usernames))
    session_sql, seats_sql = _seat_sql(len(wanted))
    with connection.cursor() as cursor:
        cursor.execute(session_sql, [session_id])
        row = cursor.fetchone()
        if row is None:
            return None, {}
        mode, status, project_id, organizer_id, private = row
        rows = []
        if wanted:
            cursor.execute(seats_sql, [project_id, session_id, *wanted])
            rows = cursor.fetchall()
    facts = SessionFacts(mode, status, project_id, organizer_id, bool(private))
    return facts, {name: PersonFacts(pk, bool(active), role, seated) for pk, name, active, role, seated in rows}


@functools.lru_cache(maxsize=64)
def _seat_sql(users: int) -> tuple[str, str]:
    """The two statements of :func:`load_seats` for ``users`` usernames, with the models' own table and
    column names: the session's mode, status, project, organizer and whether its project's annotations
    are private; then, for each of those users who exists, its id, username, whether it is active, its
    project role and its seat's role (``NULL`` when it has none)."""
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
