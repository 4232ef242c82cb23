"""What a session sends: the session, its participants, an annotation's frame, the snapshot a joining
participant is sent (the annotations it may see, by :func:`collab.visibility.may_see`), and the
presence broadcast.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils import timezone

from annotations import services as annotation_services
from collab import events
from collab.access import SessionAccess
from collab.models import ChatMessage, Connection, Participant, ReadingSession, SessionCase, SessionRole
from collab.ice import check_servers, reach
from collab.protocol import PROTOCOL_LEVEL
from collab.visibility import Seat, What, may_see
from crossread.conf import option
from crossread.errors import DomainError
from viewer.access import ProjectAccess, access_project
from viewer.models import Membership, Role, Study

#: The most recent chat messages a joining participant is sent (older ones: the export).
CHAT_SNAPSHOT = 50
#: How many of the latest messages the snapshot looks through for those this participant may read.
CHAT_SCAN = 1000
#: A connection not refreshed for this long no longer counts as online (its process died).
ONLINE_WINDOW = dt.timedelta(seconds=90)


def viewer_url(session: ReadingSession, study_uid: str) -> str:
    """The viewer page of one case, in this session (the viewer loads static/collab/session.js)."""
    path = reverse("viewer", kwargs={"slug": session.project.slug, "study_uid": study_uid})
    return f"{path}?session={session.pk}"


def session_payload(session: ReadingSession, access: ProjectAccess | None = None) -> dict[str, Any]:
    """The session as ``access``'s member may see it. Each case is labelled with its study's
    description and date only where the member's blinding allows (a trial's masked study takes its
    time point's label); without ``access`` (a frame broadcast to every participant) the cases carry
    no labels, and clients keep those they were told."""
    cases = SessionCase.objects.filter(session=session).select_related("study").order_by("position")
    return {
        "id": session.pk,
        "project": session.project.slug,
        "title": session.title,
        "description": session.description,
        "mode": session.mode,
        "status": session.status,
        "organizer": session.organizer.get_username(),
        "created_at": session.created_at.isoformat(),
        "closed_at": session.closed_at.isoformat() if session.closed_at else None,
        "voice": session.voice,
        "voice_when_blinded": session.voice_when_blinded,
        "lobby": f"/sessions/{session.pk}/",
        "cases": [
            {
                "index": index,
                "study": case.study.study_instance_uid,
                **case_label(case.study, access),
                "viewer": viewer_url(session, case.study.study_instance_uid),
            }
            for index, case in enumerate(cases)
        ],
    }


def sessions_payload(user: Any, sessions: list[ReadingSession]) -> list[dict[str, Any]]:
    """A list of sessions, each labelled as the user may see it (one project access per project)."""
    accesses: dict[str, ProjectAccess] = {}
    found = []
    for session in sessions:
        slug = session.project.slug
        if slug not in accesses:
            accesses[slug] = access_project(user, slug)
        found.append(session_payload(session, accesses[slug]))
    return found


def case_label(study: Study, access: ProjectAccess | None) -> dict[str, str]:
    """A case's description and date as the member may be told them (blank when not)."""
    blinding = access.blinding if access is not None else None
    if access is None or (blinding is not None and not blinding.lists(study.pk)):
        mask = blinding.mask(study.pk) if blinding is not None else None
        return {"description": mask.description if mask else "", "date": ""}
    return {"description": study.study_description, "date": study.study_date}


def participants_payload(session: ReadingSession) -> list[dict[str, Any]]:
    cutoff = timezone.now() - ONLINE_WINDOW
    online = set(
        Connection.objects.filter(session=session, seen_at__gte=cutoff).values_list("user_id", flat=True)
    )
    seats = Participant.objects.filter(session=session).select_related("user").order_by("added_at", "id")
    return [
        {
            "user": seat.user.get_username(),
            "name": seat.user.get_full_name() or seat.user.get_username(),
            "role": seat.role,
            "colour": seat.colour,
            "online": seat.user_id in online,
        }
        for seat in seats
    ]


def seats_by_username(session: ReadingSession) -> dict[str, Seat]:
    """Every participant's :class:`Seat`, for the visibility rules."""
    project_organizers = set(
        Membership.objects.filter(project=session.project, role=Role.ORGANIZER).values_list("user_id", flat=True)
    )
    organizers = project_organizers | {session.organizer_id}
    return {
        p.user.get_username(): Seat(p.user.get_username(), p.role, p.user_id in organizers, p.user_id in project_organizers)
        for p in Participant.objects.filter(session=session).select_related("user")
    }


def author_seat(seats: dict[str, Seat], username: str) -> Seat:
    """An author without a seat (removed since) is treated as a reader: hidden when blinded."""
    return seats.get(username) or Seat(username, SessionRole.READER, False)


def annotation_frame(data: dict[str, Any]) -> dict[str, Any]:
    """An annotation as sent on the wire (``annotations.services.serialize`` without internals)."""
    return {key: value for key, value in data.items() if key not in ("deleted", "session")}


def visible_session_annotations(access: SessionAccess) -> list[dict[str, Any]]:
    """The session's annotations this user may see: the one rule for REST and websocket alike."""
    viewer = access.seat or Seat(access.user.get_username(), SessionRole.OBSERVER, access.manages,
                                 access.project.role == Role.ORGANIZER)
    seats = seats_by_username(access.session)
    found = annotation_services.visible_annotations(access.project, session_id=access.session.pk)
    private = access.session.project.private_annotations
    return [
        annotation_frame(annotation_services.serialize(a))
        for a in found
        if may_see(viewer, author_seat(seats, a.author.get_username()), access.session.mode, What.ANNOTATION,
                   private=private, quarantined=a.instance.quarantined)
    ]


def snapshot(access: SessionAccess) -> dict[str, Any]:
    """``session.state``: everything this participant may see now."""
    seat = access.require_seat()
    participants = participants_payload(access.session)
    you = next(p for p in participants if p["user"] == seat.user)
    return {
        "type": "session.state",
        "protocol": PROTOCOL_LEVEL,
        "session": session_payload(access.session, access.project),
        "you": {**you, "organizer": seat.organizer, "can_annotate": _can_annotate(access)},
        "participants": participants,
        "chat": visible_chat(access, limit=CHAT_SNAPSHOT),
        "call": {"peers": call_roster(access.session), "reach": reach(check_servers(option("ICE_SERVERS")))},
        "annotations": visible_session_annotations(access),
    }


def _can_annotate(access: SessionAccess) -> bool:
    try:
        access.require_annotator()
    except DomainError:
        return False
    return True


def announce_presence(session: ReadingSession) -> None:
    events.broadcast(session.pk, events.hub_message("presence", {"type": "presence", "participants": participants_payload(session)}))


# -- the call and the chat -------------------------------------------------------------------------


def call_roster(session: ReadingSession) -> list[dict[str, Any]]:
    """Who is in the session's call (connections online, once per user; ``video`` if any has it)."""
    cutoff = timezone.now() - ONLINE_WINDOW
    roster: dict[str, bool] = {}
    for username, video in (Connection.objects.filter(session=session, in_call=True, seen_at__gte=cutoff)
                            .order_by("opened_at").values_list("user__username", "video")):
        roster[username] = roster.get(username, False) or video
    return [{"user": user, "video": video} for user, video in roster.items()]


def announce_call(session: ReadingSession) -> None:
    """Everyone is sent the call's roster (``call``) once the surrounding transaction commits."""
    frame = {"type": "call", "peers": call_roster(session)}
    events.broadcast(session.pk, events.hub_message("call", frame, users=[p["user"] for p in frame["peers"]]))


def chat_frame(message: ChatMessage, name: str | None = None) -> dict[str, Any]:
    """A chat message as sent and exported: id, author (username and name), time, text, view."""
    author = message.author
    return {
        "id": message.pk,
        "author": author.get_username(),
        "name": name or author.get_full_name() or author.get_username(),
        "at": message.created_at.isoformat(),
        "text": message.text,
        "view": message.view,
    }


def visible_chat(access: SessionAccess, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The session's chat messages this user may read (:func:`may_see` with ``What.CHAT``), oldest
    first; ``limit``: only the most recent (of the latest :data:`CHAT_SCAN`). A view whose study this
    user does not reach (a trial reader's hidden study) is left out of the message."""
    viewer = access.seat or Seat(access.user.get_username(), SessionRole.OBSERVER, access.manages,
                                 access.project.role == Role.ORGANIZER)
    seats = seats_by_username(access.session)
    private = access.session.project.private_annotations
    found = ChatMessage.objects.filter(session=access.session).select_related("author").order_by("-created_at", "-id")
    if limit is not None:
        found = found[:CHAT_SCAN]
    visible = [m for m in found if may_see(viewer, author_seat(seats, m.author.get_username()), access.session.mode,
                                           What.CHAT, private=private)]
    if limit is not None:
        visible = visible[:limit]
    reached: dict[str, bool] = {}
    out = []
    for message in reversed(visible):
        frame = chat_frame(message)
        study = (message.view or {}).get("study")
        if study is not None:
            if study not in reached:
                reached[study] = access.project.studies(listed=False).filter(study_instance_uid=study).exists()
            if not reached[study]:
                frame["view"] = None
        out.append(frame)
    return out
