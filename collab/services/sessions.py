"""Sessions: creating one (with its first seats), changing and closing it, listing a user's; the checks
of titles, texts, choices, studies, users and seat roles; the audit of an act on a session.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import record
from collab import events
from collab.access import SessionAccess
from collab.models import PALETTE, Connection, Mode, Participant, ReadingSession, SessionCase, SessionRole, Status
from collab.services.payloads import announce_call, session_payload
from collab.visibility import ANNOTATING_ROLES
from crossread.errors import BadRequest, Conflict, NotFound
from viewer.access import access_project
from viewer.models import Membership, Role, Study

log = logging.getLogger(__name__)

MAX_TITLE = 200
MAX_CASES = 500


def audit_session(action: Action, actor: Any, session: ReadingSession, **detail: Any) -> None:
    """An act on a session in the audit trail (after the surrounding transaction commits): identifiers
    and choices only, never titles or descriptions (free text)."""
    record(action, actor=actor, project=session.project, object_type="session", object_id=str(session.pk), **detail)


def _session_changed(session: ReadingSession, *, refresh: bool) -> None:
    frame = {"type": "session.updated", "session": session_payload(session)}
    events.broadcast(session.pk, events.hub_message("session", frame, mode=session.mode, refresh=refresh))


def check_title(title: Any) -> str:
    if not isinstance(title, str) or not title.strip():
        raise BadRequest("title must be non-empty text.")
    if len(title) > MAX_TITLE:
        raise BadRequest(f"title must be at most {MAX_TITLE} characters.")
    return title.strip()


def check_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be text.")
    return value


def check_choice(value: Any, choices: type, what: str) -> str:
    allowed = [c.value for c in choices]  # type: ignore[attr-defined]
    if value not in allowed:
        raise BadRequest(f"{what} must be one of {', '.join(allowed)}.")
    return str(value)


def check_flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"{what} must be true or false.")
    return value


def end_call(actor: Any, session: ReadingSession) -> None:
    """The session's call ends (voice no longer allowed, the session no longer active): every
    connection leaves it, audited, and the empty roster is sent (clients hang up on it)."""
    in_call = list(Connection.objects.filter(session=session, in_call=True).select_related("user"))
    if not in_call:
        return
    Connection.objects.filter(pk__in=[c.pk for c in in_call]).update(in_call=False, video=False)
    for connection in in_call:
        audit_session(Action.CALL_LEFT, connection.user, session, ended_by=actor.get_username())
    announce_call(session)


def check_studies(access: Any, uids: Any) -> list[Study]:
    if not isinstance(uids, list) or not uids or not all(isinstance(u, str) and u for u in uids):
        raise BadRequest("studies must be a non-empty list of StudyInstanceUIDs.")
    if len(uids) > MAX_CASES:
        raise BadRequest(f"A session has at most {MAX_CASES} cases.")
    if len(set(uids)) != len(uids):
        raise BadRequest("A study appears twice in studies.")
    studies = []
    for uid in uids:
        try:
            studies.append(access.study(uid))
        except NotFound:
            raise BadRequest(f"No study {uid} in this project.", study=uid) from None
    return studies


def check_seat_role(project_access: Any, user: Any, role: Any) -> tuple[Membership, str]:
    role = check_choice(role, SessionRole, "role")
    membership = Membership.objects.filter(project=project_access.project, user=user).first()
    if membership is None:
        raise BadRequest("Participants must be members of the session's project.")
    if role in ANNOTATING_ROLES and not membership.has_role(Role.READER):
        raise BadRequest(f"A {role} needs the reader role in the project; a project viewer may observe.")
    return membership, role


def check_user(username: Any) -> Any:
    if not isinstance(username, str) or not username:
        raise BadRequest("username must be text.")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise BadRequest("No such user.")
    return user


def next_colour(session: ReadingSession) -> str:
    used = list(Participant.objects.filter(session=session).values_list("colour", flat=True))
    free = [c for c in PALETTE if c not in used]
    return free[0] if free else PALETTE[len(used) % len(PALETTE)]


def _set_cases(session: ReadingSession, studies: Sequence[Study]) -> None:
    SessionCase.objects.filter(session=session).delete()
    SessionCase.objects.bulk_create(
        SessionCase(session=session, study=study, position=index) for index, study in enumerate(studies)
    )


def create_session(
    user: Any,
    *,
    project: Any,
    title: Any,
    studies: Any,
    mode: Any = Mode.OPEN,
    description: Any = "",
    status: Any = Status.DRAFT,
    participants: Iterable[tuple[Any, Any]] = (),
    voice_when_blinded: Any = False,
) -> ReadingSession:
    """A new session of ``project`` (slug) organised by ``user``, who needs the organizer role there.

    The organizer is seated as presenter; ``participants`` are ``(username, role)`` pairs.
    """
    if not isinstance(project, str):
        raise BadRequest("project must be a project slug.")
    project_access = access_project(user, project, minimum=Role.ORGANIZER)
    title = check_title(title)
    description = check_text(description, "description")
    mode = check_choice(mode, Mode, "mode")
    status = check_choice(status, Status, "status")
    if status == Status.CLOSED:
        raise BadRequest("A new session cannot be closed.")
    cases = check_studies(project_access, studies)
    voice_when_blinded = check_flag(voice_when_blinded, "voice_when_blinded")
    seats = [(check_user(name), role) for name, role in participants]
    seats = [(u, check_seat_role(project_access, u, r)[1]) for u, r in seats if u.pk != user.pk]
    with transaction.atomic():
        session = ReadingSession.objects.create(
            project=project_access.project, title=title, description=description,
            organizer=user, mode=mode, status=status, voice_when_blinded=voice_when_blinded,
        )
        _set_cases(session, cases)
        Participant.objects.create(session=session, user=user, role=SessionRole.PRESENTER, colour=PALETTE[0])
        for seat_user, role in seats:
            Participant.objects.update_or_create(
                session=session, user=seat_user, defaults={"role": role, "colour": next_colour(session)}
            )
        audit_session(Action.SESSION_CREATED, user, session, mode=mode, status=status, cases=len(cases))
        for seat_user, role in [(user, SessionRole.PRESENTER), *seats]:
            audit_session(Action.SESSION_SEATED, user, session, user=seat_user.get_username(), role=str(role))
    log.info("collab: session %s created by %s in %s", session.pk, user, project)
    return session


def sessions_for(user: Any, *, project: str | None = None, status: str | None = None) -> list[ReadingSession]:
    """Sessions the user has a seat in or organises (as the session's or the project's organizer)."""
    if not user.is_authenticated:
        return []
    from django.db.models import Q

    organized_projects = Membership.objects.filter(user=user, role=Role.ORGANIZER).values("project_id")
    member_projects = Membership.objects.filter(user=user).values("project_id")
    queryset = (
        ReadingSession.objects.filter(project_id__in=member_projects)
        .filter(Q(participants__user=user) | Q(organizer=user) | Q(project_id__in=organized_projects))
        .select_related("project", "organizer")
        .distinct()
    )
    if project:
        queryset = queryset.filter(project__slug=project)
    if status:
        queryset = queryset.filter(status=status)
    return list(queryset)


def update_session(access: SessionAccess, **changes: Any) -> ReadingSession:
    """PATCH: ``title``, ``description``, ``mode``, ``status`` (draft, active, closed), ``studies`` (reorder),
    ``voice_when_blinded`` (may a blinded session talk: the call)."""
    access.require_manager()
    session = access.session
    unknown = set(changes) - {"title", "description", "mode", "status", "studies", "voice_when_blinded"}
    if unknown:
        raise BadRequest(f"Unknown fields: {', '.join(sorted(unknown))}.")
    if session.status == Status.CLOSED:
        raise Conflict("The session is closed.")
    fields: dict[str, Any] = {}
    if "title" in changes:
        fields["title"] = check_title(changes["title"])
    if "description" in changes:
        fields["description"] = check_text(changes["description"], "description")
    if "mode" in changes:
        fields["mode"] = check_choice(changes["mode"], Mode, "mode")
    if "voice_when_blinded" in changes:
        fields["voice_when_blinded"] = check_flag(changes["voice_when_blinded"], "voice_when_blinded")
    if "status" in changes:
        fields["status"] = check_choice(changes["status"], Status, "status")
        if fields["status"] == Status.CLOSED:
            fields["closed_at"] = timezone.now()
    studies = check_studies(access.project, changes["studies"]) if "studies" in changes else None
    mode_changed = "mode" in fields and fields["mode"] != session.mode
    with transaction.atomic():
        for name, value in fields.items():
            setattr(session, name, value)
        session.save()
        if studies is not None:
            _set_cases(session, studies)
        closed = fields.get("status") == Status.CLOSED
        audit_session(Action.SESSION_CLOSED if closed else Action.SESSION_CHANGED, access.user, session,
               fields=sorted(changes), mode=session.mode, status=session.status)
        # A change of mode changes what everyone sees: every connection gets a fresh snapshot.
        _session_changed(session, refresh=mode_changed)
        if not session.voice or session.status != Status.ACTIVE:
            end_call(access.user, session)
    return session


def close_session(access: SessionAccess) -> ReadingSession:
    access.require_manager()
    if access.session.status == Status.CLOSED:
        return access.session
    return update_session(access, status=Status.CLOSED)
