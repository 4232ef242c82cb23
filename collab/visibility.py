"""Who sees whose annotations, drafts, cursors and viewports in a reading session. Pure: no Django.

The websocket fan-out (:mod:`collab.hub`), the session snapshot and the REST API all ask
:func:`may_see`; nothing else decides visibility.

In a project with private annotations (``Project.private_annotations``: blinded reads across the
project, as ``annotations.services`` lists the project's own), a participant sees only their own
annotations and drafts unless they organise the *project*; that holds in every mode, for the live
fan-out, the snapshot and REST alike.

In any mode, nobody sees an observer's drafts: observers watch and do not annotate, so a shape an
observer draws is not shown as work in progress (the websocket refuses their annotations).

Open mode: everyone sees everything else. Blinded mode:

- the session's organizers (the session organizer, the project's organizers) and adjudicators see all;
- everyone sees their own work;
- otherwise annotations and drafts of others are hidden, and so are their cursors and viewports,
  except the presenter's cursor and viewport (followers follow the presenter, who shows no findings);
- chat messages of others are hidden too, except those of the session's organizers and the presenter
  (who speak to everyone). In a project with private annotations chat is private as annotations are.

The session's call (voice and video) is :func:`may_call`: any seat of an active session, in a blinded
session only when its organizer allowed voice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class What(enum.StrEnum):
    ANNOTATION = "annotation"
    DRAFT = "draft"
    CURSOR = "cursor"
    VIEWPORT = "viewport"
    CHAT = "chat"


@dataclass(frozen=True)
class Seat:
    """A participant as the rules see them: a username, a session role, whether they organize (the
    session or the project), and whether they organise the project (who sees private annotations)."""

    user: str
    role: str  # presenter | reader | adjudicator | observer
    organizer: bool = False
    project_organizer: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"user": self.user, "role": self.role, "organizer": self.organizer,
                "project_organizer": self.project_organizer}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seat:
        return cls(user=str(data["user"]), role=str(data["role"]), organizer=bool(data.get("organizer", False)),
                   project_organizer=bool(data.get("project_organizer", False)))


#: Seats that may annotate (observers watch).
ANNOTATING_ROLES = frozenset({"presenter", "reader", "adjudicator"})


def manages_session(*, is_session_organizer: bool, project_role: str | None) -> bool:
    """The session's organizer and the project's organizers manage a session (and see everything)."""
    return is_session_organizer or project_role == "organizer"


def decide_seat(*, authenticated: bool, project_role: str | None, seat_role: str | None, manages: bool,
                seat_required: bool) -> str | None:
    """Who reaches a reading session: ``None`` when granted, else the refusal's code.

    ``not_authenticated``: nobody logged in (or a deactivated account); ``not_found``: not a member of the
    session's project (the session's existence does not leak); ``forbidden``: a member without a seat
    who does not manage the session, or without a seat where one is required (a websocket). Asked by
    :func:`judge_seat`.
    """
    if not authenticated:
        return "not_authenticated"
    if project_role is None:
        return "not_found"
    if seat_role is None and (seat_required or not manages):
        return "forbidden"
    return None


@dataclass(frozen=True)
class SessionFacts:
    """What deciding a seat reads about a session: its mode and status, its project, its organizer, and
    whether its project keeps annotations private."""

    mode: str
    status: str
    project_id: int
    organizer_id: int | None
    private: bool


@dataclass(frozen=True)
class PersonFacts:
    """What deciding a seat reads about one user: their id and whether the account is active (``None``
    and ``False`` for a name nobody has), their role in the session's project and their seat's role
    (``None`` when they have none)."""

    user_id: int | None
    active: bool
    project_role: str | None
    seat_role: str | None


NOBODY = PersonFacts(None, False, None, None)


@dataclass(frozen=True)
class Grant:
    """A seated user's access as a live write reads it: the seat, the project role, the session's status
    and mode. Where the hub's last seat check read the same grant as a connection holds, that access
    stands for a new one (``collab.hub.SessionHub.confirms``)."""

    seat: Seat
    project_role: str
    status: str
    mode: str


@dataclass(frozen=True)
class SeatDecision:
    """:func:`judge_seat`'s answer: the refusal's code, or whether the user manages the session and their
    seat (``None`` for a manager without one, where no seat is required)."""

    refusal: str | None
    manages: bool = False
    seat: Seat | None = None
    grant: Grant | None = None


def judge_seat(session: SessionFacts, username: str, person: PersonFacts, *, seat_required: bool) -> SeatDecision:
    """The one seat rule over the facts :func:`collab.access.load_seats` loads: what the REST and page check
    (``collab.access.access_session``) and the hubs' check of all their sockets at once
    (``collab.services.seats.check_seats``) both answer."""
    manages = manages_session(is_session_organizer=person.user_id is not None and person.user_id == session.organizer_id,
                              project_role=person.project_role)
    refusal = decide_seat(authenticated=person.user_id is not None and person.active, project_role=person.project_role,
                          seat_role=person.seat_role, manages=manages, seat_required=seat_required)
    if refusal is not None:
        return SeatDecision(refusal)
    if person.seat_role is None:
        return SeatDecision(None, manages)
    seat = Seat(username, person.seat_role, manages, person.project_role == "organizer")
    assert person.project_role is not None  # (decide_seat refuses non-members)
    return SeatDecision(None, manages, seat, Grant(seat, person.project_role, session.status, session.mode))


def sees_all(viewer: Seat, mode: str) -> bool:
    if mode != "blinded":
        return True
    if viewer.organizer:
        return True
    return viewer.role == "adjudicator"


def may_see(viewer: Seat, author: Seat, mode: str, what: What, *, private: bool = False,
            quarantined: bool = False) -> bool:
    """May ``viewer`` see ``what`` by ``author`` in a session of ``mode``, in a project whose annotations
    are ``private`` or not, on an instance ``quarantined`` or not (then only the project's organizers
    see it, as they alone see the image: ``viewer.rules.sees_instance``)?"""
    if what == What.DRAFT and author.role not in ANNOTATING_ROLES:
        return False
    if quarantined and not viewer.project_organizer:  # marks, drafts, cursors and viewports alike
        return False
    if what == What.CHAT:
        return _may_read(viewer, author, mode, private=private)
    if private and what in (What.ANNOTATION, What.DRAFT) and viewer.user != author.user and not viewer.project_organizer:
        return False
    if sees_all(viewer, mode):
        return True
    if viewer.user == author.user:
        return True
    if what in (What.CURSOR, What.VIEWPORT):
        return author.role == "presenter"
    return False


def _may_read(viewer: Seat, author: Seat, mode: str, *, private: bool) -> bool:
    """A chat message: its author, the session's organizers and the presenter speak to everyone;
    other messages reach those who see everyone's work (:func:`sees_all`), and in a project with
    private annotations the project's organizers only."""
    if viewer.user == author.user or author.organizer or author.role == "presenter":
        return True
    if private:
        return viewer.project_organizer
    return sees_all(viewer, mode)


def may_call(seat: Seat | None, *, status: str, mode: str, voice_when_blinded: bool) -> str | None:
    """May ``seat`` take part in the session's call (join it, signal to a peer)? ``None`` when it may,
    else why not. Any seat may, observers included (they listen), while the session is active; a
    blinded session only when its organizer allowed voice (``voice_when_blinded``)."""
    if seat is None:
        return "You are not a participant of this session."
    if status != "active":
        return f"The session is {status}; its call is open while it is active."
    if mode == "blinded" and not voice_when_blinded:
        return "This blinded session does not allow voice."
    return None
