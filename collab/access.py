"""``access_session``: the one place that decides who reaches a reading session.

Built on :func:`viewer.access.access_project`. One condition per line:

- not logged in → ``not_authenticated``;
- an id that is not a positive integer, no such session, or a session of a project the user is not a
  member of → ``not_found`` (existence does not leak);
- a member of the project who has no seat and does not organize → ``forbidden`` (the member may know the
  project's sessions exist, as ``access_project`` answers 403 to a member without the role);
- otherwise a :class:`SessionAccess`: the seat (or ``None`` for an organizer without one) and whether the
  user manages the session (its organizer or a project organizer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crossread.errors import DomainError, ErrorCode, NotAuthenticated, NotFound
from viewer.access import ProjectAccess, access_project
from viewer.models import Role

from collab.models import Participant, ReadingSession, Status
from collab.visibility import ANNOTATING_ROLES, Seat, decide_seat, manages_session


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


@dataclass(frozen=True)
class Grant:
    """Everything a write's access check reads about one participant, as plain values.

    The hub's once-a-second seat check (:func:`collab.services.seats.check_seats`) reads the same values for
    all its connections; where they equal those of the :class:`SessionAccess` a connection holds, that
    access stands for a new one and a live write reads nothing to decide it (see ``SessionHub.confirms``).
    """

    seat: Seat
    project_role: str
    status: str
    mode: str


@dataclass(frozen=True)
class SessionAccess:
    session: ReadingSession
    project: ProjectAccess
    participant: Participant | None
    user: Any

    @property
    def manages(self) -> bool:
        return manages_session(is_session_organizer=self.session.organizer_id == self.user.pk,
                               project_role=self.project.role)

    @property
    def seat(self) -> Seat | None:
        if self.participant is None:
            return None
        return Seat(user=self.user.get_username(), role=self.participant.role, organizer=self.manages,
                    project_organizer=self.project.role == Role.ORGANIZER)

    @property
    def grant(self) -> Grant | None:
        seat = self.seat
        if seat is None:
            return None
        return Grant(seat, self.project.role, self.session.status, self.session.mode)

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


def access_session(user: Any, session_id: object) -> SessionAccess:
    if not user.is_authenticated:
        raise NotAuthenticated("Authentication credentials were not provided.")
    pk = parse_session_id(session_id)
    session = ReadingSession.objects.select_related("project", "organizer").filter(pk=pk).first()
    if session is None:
        raise NotFound("No such session.")
    try:
        project = access_project(user, session.project.slug)
    except NotFound:
        raise NotFound("No such session.") from None
    participant = Participant.objects.filter(session=session, user=user).first()
    access = SessionAccess(session=session, project=project, participant=participant, user=user)
    refusal = decide_seat(authenticated=True, project_role=project.role,
                          seat_role=participant.role if participant else None, manages=access.manages,
                          seat_required=False)
    if refusal is not None:  # (only "forbidden" is left: the others are answered above)
        raise Forbidden("You are not a participant of this session.")
    return access
