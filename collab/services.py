"""The actions of reading sessions: every write that others must see goes through here.

Each action authorises through :func:`collab.access.access_session` (or ``access_project`` to create),
validates, writes in one transaction, and broadcasts after commit (:mod:`collab.events`). REST views,
pages and the websocket consumer call these and nothing else; annotations are stored by
:mod:`annotations.services`, with this module adding the session's rules (seat, status, blinding).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from annotations import services as annotation_services
from annotations.models import Annotation
from collab import events
from collab.access import Grant, SessionAccess, access_session
from collab.models import (
    PALETTE,
    Connection,
    Invitation,
    Mode,
    Participant,
    ReadingSession,
    SessionCase,
    SessionRole,
    Status,
)
from collab.protocol import PROTOCOL_LEVEL, AnnotationCreate, AnnotationDelete, AnnotationUpdate
from collab.visibility import ANNOTATING_ROLES, Seat, What, decide_seat, manages_session, may_see
from audit.models import Action, Outcome
from audit.services import record
from crossread.errors import BadRequest, Conflict, DomainError, ErrorCode, NotFound
from viewer.access import ProjectAccess, access_project
from viewer.models import Membership, Project, Role, Study

log = logging.getLogger(__name__)

MAX_TITLE = 200
MAX_CASES = 500
#: The most instances a session's hub remembers for live writes (see _instance_in_session).
MAX_REMEMBERED_INSTANCES = 4096
#: A connection not refreshed for this long no longer counts as online (its process died).
ONLINE_WINDOW = dt.timedelta(seconds=90)
INVITATION_SALT = "crossread.collab.invitation"
DEFAULT_INVITATION_HOURS = 72
MAX_INVITATION_HOURS = 24 * 30
#: The points of a session's live annotations, per participant and in all: eight and thirty-two
#: maximum-size freehands. They bound the snapshot a joining participant is sent (a few MiB, in frames
#: under the websocket's limit: ``protocol.snapshot_frames``) and the work of sending it. A write that
#: would pass one is refused ``too_large`` with ``budget`` (``participant`` or ``session``), ``limit``
#: and ``used``; deleting annotations frees points.
PARTICIPANT_POINT_BUDGET = 32_768
SESSION_POINT_BUDGET = 131_072


# ------------------------------------------------------------------------------------------------
# Payloads
# ------------------------------------------------------------------------------------------------


def viewer_url(session: ReadingSession, study_uid: str) -> str:
    """The viewer page of one case, in this session (the viewer loads static/collab/session.js)."""
    path = reverse("viewer", kwargs={"slug": session.project.slug, "study_uid": study_uid})
    return f"{path}?session={session.pk}"


def session_payload(session: ReadingSession) -> dict[str, Any]:
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
        "lobby": f"/sessions/{session.pk}/",
        "cases": [
            {
                "index": index,
                "study": case.study.study_instance_uid,
                "description": case.study.study_description,
                "date": case.study.study_date,
                "viewer": viewer_url(session, case.study.study_instance_uid),
            }
            for index, case in enumerate(cases)
        ],
    }


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
        "session": session_payload(access.session),
        "you": {**you, "organizer": seat.organizer, "can_annotate": _can_annotate(access)},
        "participants": participants,
        "annotations": visible_session_annotations(access),
    }


def _can_annotate(access: SessionAccess) -> bool:
    try:
        access.require_annotator()
    except DomainError:
        return False
    return True


def _audit(action: Action, actor: Any, session: ReadingSession, **detail: Any) -> None:
    """An act on a session in the audit trail (after the surrounding transaction commits): identifiers
    and choices only, never titles or descriptions (free text)."""
    record(action, actor=actor, project=session.project, object_type="session", object_id=str(session.pk), **detail)


def _presence(session: ReadingSession) -> None:
    events.broadcast(session.pk, events.hub_message("presence", {"type": "presence", "participants": participants_payload(session)}))


def _session_changed(session: ReadingSession, *, refresh: bool) -> None:
    frame = {"type": "session.updated", "session": session_payload(session)}
    events.broadcast(session.pk, events.hub_message("session", frame, mode=session.mode, refresh=refresh))


# ------------------------------------------------------------------------------------------------
# Sessions
# ------------------------------------------------------------------------------------------------


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


def _next_colour(session: ReadingSession) -> str:
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
    seats = [(check_user(name), role) for name, role in participants]
    seats = [(u, check_seat_role(project_access, u, r)[1]) for u, r in seats if u.pk != user.pk]
    with transaction.atomic():
        session = ReadingSession.objects.create(
            project=project_access.project, title=title, description=description,
            organizer=user, mode=mode, status=status,
        )
        _set_cases(session, cases)
        Participant.objects.create(session=session, user=user, role=SessionRole.PRESENTER, colour=PALETTE[0])
        for seat_user, role in seats:
            Participant.objects.update_or_create(
                session=session, user=seat_user, defaults={"role": role, "colour": _next_colour(session)}
            )
        _audit(Action.SESSION_CREATED, user, session, mode=mode, status=status, cases=len(cases))
        for seat_user, role in [(user, SessionRole.PRESENTER), *seats]:
            _audit(Action.SESSION_SEATED, user, session, user=seat_user.get_username(), role=str(role))
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
    """PATCH: ``title``, ``description``, ``mode``, ``status`` (draft, active, closed), ``studies`` (reorder)."""
    access.require_manager()
    session = access.session
    unknown = set(changes) - {"title", "description", "mode", "status", "studies"}
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
        _audit(Action.SESSION_CLOSED if closed else Action.SESSION_CHANGED, access.user, session,
               fields=sorted(changes), mode=session.mode, status=session.status)
        # A change of mode changes what everyone sees: every connection gets a fresh snapshot.
        _session_changed(session, refresh=mode_changed)
    return session


def close_session(access: SessionAccess) -> ReadingSession:
    access.require_manager()
    if access.session.status == Status.CLOSED:
        return access.session
    return update_session(access, status=Status.CLOSED)


def seat_participant(access: SessionAccess, username: Any, role: Any) -> Participant:
    """Seat a project member, or change the role of a seated one."""
    access.require_manager()
    if access.session.status == Status.CLOSED:
        raise Conflict("The session is closed.")
    return _seat(access.session, access.project, check_user(username), role, access.user)


def _seat(session: ReadingSession, project_access: Any, user: Any, role: Any, actor: Any) -> Participant:
    _, role = check_seat_role(project_access, user, role)
    with transaction.atomic():
        seat = Participant.objects.select_for_update().filter(session=session, user=user).first()
        if seat is None:
            seat = Participant.objects.create(session=session, user=user, role=role, colour=_next_colour(session))
            _audit(Action.SESSION_SEATED, actor, session, user=user.get_username(), role=role)
        elif seat.role != role:
            _audit(Action.SESSION_SEATED, actor, session, user=user.get_username(), role=role, previous=seat.role)
            seat.role = role
            seat.save(update_fields=["role"])
            # What this user may see changed: their connections take a fresh snapshot.
            events.broadcast(session.pk, events.hub_message("seat", user=user.get_username()))
        _presence(session)
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
        _audit(Action.SESSION_UNSEATED, access.user, access.session, user=user.get_username())
        _presence(access.session)  # (the connections are closed by _on_seat_deleted)


# ------------------------------------------------------------------------------------------------
# Invitations
# ------------------------------------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "s": invitation.session_id}, salt=INVITATION_SALT)


def invitation_payload(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.pk,
        "role": invitation.role,
        "username": invitation.username,
        "url": f"/sessions/join/{invitation_token(invitation)}",
        "expires_at": invitation.expires_at.isoformat(),
        "revoked": invitation.revoked_at is not None,
        "uses": invitation.uses,
    }


def create_invitation(access: SessionAccess, *, role: Any = SessionRole.READER, username: Any = "", hours: Any = DEFAULT_INVITATION_HOURS) -> Invitation:
    access.require_manager()
    if access.session.status == Status.CLOSED:
        raise Conflict("The session is closed.")
    role = check_choice(role, SessionRole, "role")
    if username:
        check_seat_role(access.project, check_user(username), role)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_INVITATION_HOURS:
        raise BadRequest(f"hours must be an integer from 1 to {MAX_INVITATION_HOURS}.")
    with transaction.atomic():
        invitation = Invitation.objects.create(
            session=access.session, role=role, username=username or "", created_by=access.user,
            expires_at=timezone.now() + dt.timedelta(hours=hours),
        )
        _audit(Action.INVITATION_CREATED, access.user, access.session, invitation=invitation.pk, role=role,
               username=invitation.username, hours=hours)
    return invitation


def invitations_of(access: SessionAccess) -> list[Invitation]:
    access.require_manager()
    return list(Invitation.objects.filter(session=access.session))


def revoke_invitation(access: SessionAccess, invitation_id: Any) -> Invitation:
    access.require_manager()
    invitation = Invitation.objects.filter(session=access.session, pk=_int_or_none(invitation_id)).first()
    if invitation is None:
        raise NotFound("No such invitation.")
    if invitation.revoked_at is None:
        with transaction.atomic():
            invitation.revoked_at = timezone.now()
            invitation.save(update_fields=["revoked_at"])
            _audit(Action.INVITATION_REVOKED, access.user, access.session, invitation=invitation.pk)
    return invitation


def check_invitation(user: Any, token: Any) -> Invitation:
    """The valid invitation behind ``token`` for ``user``; anything wrong is "not found"."""
    invalid = NotFound("This invitation link is not valid (expired, revoked or not for you).")
    try:
        data = signing.loads(str(token), salt=INVITATION_SALT)
    except signing.BadSignature:
        raise invalid from None
    invitation = Invitation.objects.select_related("session__project").filter(
        pk=_int_or_none(data.get("i")), session_id=_int_or_none(data.get("s"))
    ).first()
    if invitation is None:
        raise invalid
    if invitation.revoked_at is not None:
        raise invalid
    if invitation.expires_at <= timezone.now():
        raise invalid
    if invitation.session.status == Status.CLOSED:
        raise invalid
    if invitation.username and invitation.username != user.get_username():
        raise invalid
    try:
        access_project(user, invitation.session.project.slug)
    except NotFound:
        raise invalid from None
    return invitation


def accept_invitation(user: Any, token: Any) -> ReadingSession:
    """Seat ``user`` with the invitation's role (an existing seat keeps its role)."""
    invitation = check_invitation(user, token)
    session = invitation.session
    project_access = access_project(user, session.project.slug)
    with transaction.atomic():
        if not Participant.objects.filter(session=session, user=user).exists():
            _seat(session, project_access, user, invitation.role, user)
        Invitation.objects.filter(pk=invitation.pk).update(uses=invitation.uses + 1)
        _audit(Action.INVITATION_ACCEPTED, user, session, invitation=invitation.pk, role=invitation.role)
    return session


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------
# Connections and presence
# ------------------------------------------------------------------------------------------------


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


def open_connection(user: Any, session_id: Any, connection_id: str) -> dict[str, Any]:
    """Record a connection (presence), announce it, and return the ``session.state`` snapshot."""
    access = seated_access(user, session_id)
    with transaction.atomic():
        Connection.objects.create(id=connection_id, session=access.session, user=user, seen_at=timezone.now())
        _presence(access.session)
        record(Action.SESSION_JOINED, actor=user, project=access.session.project, object_type="session",
               object_id=str(access.session.pk))
    return snapshot(access)


def close_connection(session_id: int, connection_id: str) -> None:
    with transaction.atomic():
        closed = Connection.objects.filter(id=connection_id).select_related("user").first()
        deleted, _ = Connection.objects.filter(id=connection_id).delete()
        session = ReadingSession.objects.filter(pk=session_id).select_related("project").first()
        if deleted and session is not None:
            _presence(session)
            record(Action.SESSION_LEFT, actor=closed.user if closed else None, project=session.project,
                   object_type="session", object_id=str(session.pk))


def touch_connections(connection_ids: Sequence[str]) -> None:
    Connection.objects.filter(id__in=list(connection_ids)).update(seen_at=timezone.now())


def refreshed_state(user: Any, session_id: Any) -> tuple[SessionAccess, dict[str, Any]]:
    """A fresh access (with its seat) and snapshot after a change of role or mode."""
    access = seated_access(user, session_id)
    return access, snapshot(access)


# ------------------------------------------------------------------------------------------------
# Annotations in a session: annotations.services stores, this adds seats, status and blinding
# ------------------------------------------------------------------------------------------------


def _session_annotation(access: SessionAccess, annotation_id: int) -> Annotation:
    """An annotation of this session that this participant may see (else not found)."""
    annotation = annotation_services.access_annotation(access.project, annotation_id, session_id=access.session.pk)
    seat = access.require_seat()
    author = author_seat(seats_by_username(access.session), annotation.author.get_username())
    if not may_see(seat, author, access.session.mode, What.ANNOTATION, private=access.session.project.private_annotations,
                   quarantined=annotation.instance.quarantined):
        raise NotFound("No such annotation.")
    return annotation


def _writer(user: Any, session_id: int, confirmed: SessionAccess | None = None,
            origin: events.Origin | None = None) -> SessionAccess:
    """Access for a write; the websocket ``origin`` gets the writer's fresh seat for the broadcast.

    ``confirmed``: an access the caller holds whose :attr:`~SessionAccess.grant` a seat check found
    unchanged within the last second (a websocket's, see ``SessionHub.confirms``); it stands for a new
    read. The rules of :meth:`SessionAccess.require_annotator` apply to it all the same.
    """
    usable = confirmed is not None and confirmed.session.pk == session_id and confirmed.user.pk == user.pk
    access = confirmed if usable else access_session(user, session_id)
    seat = access.require_annotator()
    if origin is not None:
        origin.session_id, origin.seat = access.session.pk, seat.as_dict()
    return access


def create_annotation(user: Any, session_id: int, message: AnnotationCreate, *,
                      confirmed: SessionAccess | None = None,
                      instances: dict[str, Any] | None = None,
                      origin: events.Origin | None = None) -> dict[str, Any] | None:
    """Store ``message``'s annotation in the session; the broadcast answers the sender (with its ref).

    A ``ref`` used before returns the first annotation, as a reply frame for the sender alone: the
    others have had it already, and nothing is stored twice (``origin``, the websocket message, tells
    whether the write was announced). ``confirmed``: see :func:`_writer`; ``instances``: a memo of
    the session's instances by UID (the process's hub keeps one per session and empties it whenever the
    session changes).
    """
    access = _writer(user, session_id, confirmed, origin)
    check_point_budget(access, len(message.annotation.points))
    shape = message.annotation
    instance = _instance_in_session(access, shape.instance, instances)
    if instance is None:
        raise BadRequest("The instance is not in one of this session's cases.")
    annotation = annotation_services.create_annotation(
        user, access.session.project,
        instance_uid=shape.instance, frame=shape.frame, kind=shape.kind, points=shape.points,
        label=shape.label, client_ref=message.ref, session_id=access.session.pk,
        checked=access.project, instance=instance, announce=_announcer(access.session, instance, origin),
    )
    if origin is not None and origin.announced:
        return None
    if annotation.session_id != access.session.pk:
        raise Conflict("This ref was already used outside this session.")
    if annotation.deleted:
        return {"type": "annotation.deleted", "ref": message.ref, "id": annotation.pk, "version": annotation.version}
    return {"type": "annotation.created", "ref": message.ref,
            "annotation": annotation_frame(annotation_services.serialize(annotation))}


def update_annotation(user: Any, session_id: int, message: AnnotationUpdate, *,
                      confirmed: SessionAccess | None = None, origin: events.Origin | None = None) -> None:
    access = _writer(user, session_id, confirmed, origin)
    annotation = _session_annotation(access, message.id)
    if message.points is not None:
        check_point_budget(access, len(message.points) - len(annotation.points), author_id=annotation.author_id)
    annotation_services.update_annotation(
        user, annotation, version=message.version, points=message.points, label=message.label,
        announce=_announcer(access.session, annotation.instance, origin),
    )


def delete_annotation(user: Any, session_id: int, message: AnnotationDelete, *,
                      confirmed: SessionAccess | None = None, origin: events.Origin | None = None) -> None:
    access = _writer(user, session_id, confirmed, origin)
    annotation = _session_annotation(access, message.id)
    annotation_services.delete_annotation(user, annotation, version=message.version,
                                          announce=_announcer(access.session, annotation.instance, origin))


def _instance_in_session(access: SessionAccess, instance_uid: str, memo: dict[str, Any] | None = None) -> Any:
    """The instance ``instance_uid`` (with its series and study) if it is in one of the session's cases
    and the participant may reach it (through the project's gate: not in quarantine, for a reader).

    ``memo``: instances found before, by UID (a hub's, shared by its participants and emptied whenever
    the session changes); at most :data:`MAX_REMEMBERED_INSTANCES` are kept. A remembered instance is
    checked against this participant's access again (:meth:`viewer.access.ProjectAccess.sees`)."""
    found = memo.get(instance_uid) if memo is not None else None
    if found is not None:
        return found if access.project.sees(found) else None
    found = access.project.instances().select_related("series__study").filter(
        sop_instance_uid=instance_uid,
        series__study__in=SessionCase.objects.filter(session=access.session).values("study"),
    ).first()
    if found is not None and memo is not None:
        if len(memo) >= MAX_REMEMBERED_INSTANCES:
            memo.clear()
        memo[instance_uid] = found
    return found


def prepare_live_writes(session_id: int) -> None:
    """Look up an instance that does not exist, once, when a process's hub of the session starts.

    The first lookup of :func:`_instance_in_session` in a process costs about 10 ms more than the next
    ones, nearly all of it Django computing, once, what it caches about the columns of an instance with
    its series and study; under load the first live annotation took 30-38 ms in its thread. Done here,
    while the first reader joins, no annotation pays it. Nothing is remembered. The lookup is made
    with a viewer's access (the narrowest, the same query shape as a reader's) and finds nothing.
    """
    session = ReadingSession.objects.filter(pk=session_id).select_related("project").first()
    if session is not None:
        nobody = ProjectAccess(session.project, Membership(project=session.project, role=Role.VIEWER))
        _instance_in_session(SessionAccess(session, nobody, None, None), "", None)


def delete_session_annotation(access: SessionAccess, annotation_id: Any, version: Any = None) -> None:
    """REST: the session's organizer or a project organizer deletes any annotation of the session, in any
    status (a participant deletes their own under the websocket's rules: an annotating seat, an active
    session); audited as ``annotation.deleted`` by whoever deleted it, and sent to the session like a
    live delete."""
    if access.manages:
        annotation = annotation_services.access_annotation(access.project, annotation_id, session_id=access.session.pk)
    else:
        access.require_annotator()
        annotation = _session_annotation(access, annotation_id)
    annotation_services.delete_annotation(access.user, annotation, version=version,
                                          announce=_announcer(access.session, annotation.instance, None))


def check_point_budget(access: SessionAccess, added: int, *, author_id: int | None = None) -> None:
    """Refuse a write that adds ``added`` points past :data:`PARTICIPANT_POINT_BUDGET` (the author's
    points in the session) or :data:`SESSION_POINT_BUDGET`. Checked before the write: two writes at the
    same moment may pass it together, by at most a shape each."""
    if added <= 0:
        return
    author = access.user.pk if author_id is None else author_id
    in_session, by_author = points_used(access.session.pk, author)
    for budget, used, limit in (("participant", by_author, PARTICIPANT_POINT_BUDGET),
                                ("session", in_session, SESSION_POINT_BUDGET)):
        if used + added > limit:
            raise DomainError(
                f"The {budget}'s annotations in this session may hold at most {limit} points ({used} used); "
                "delete some first.", code=ErrorCode.TOO_LARGE, budget=budget, limit=limit, used=used,
            )


def points_used(session_id: int, author_id: int) -> tuple[int, int]:
    """The points of the session's live annotations, in all and by ``author_id``: one statement that
    reads each annotation's points once (SQLite's ``json_array_length``, PostgreSQL's ``jsonb_...``)."""
    quote = connection.ops.quote_name
    length = "jsonb_array_length" if connection.vendor == "postgresql" else "json_array_length"

    def column(name: str) -> str:
        return quote(Annotation._meta.get_field(name).column)

    sql = (
        f"SELECT COALESCE(SUM(n), 0), COALESCE(SUM(CASE WHEN author = %s THEN n ELSE 0 END), 0) FROM "
        f"(SELECT {column('author')} AS author, {length}({column('points')}) AS n "
        f"FROM {quote(Annotation._meta.db_table)} WHERE {column('session_id')} = %s AND {column('deleted')} = %s) AS shapes"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [author_id, session_id, False])
        in_session, by_author = cursor.fetchone()
    return int(in_session), int(by_author)


def _announcer(session: ReadingSession, instance: Any, origin: events.Origin | None) -> annotation_services.Announce:
    """What tells the session's hubs of a write on ``instance`` once it commits (websocket or REST).

    Called by ``annotations.services`` after commit, so it sends at once. A websocket write's ``origin``
    holds the sender's seat, just checked, and its ``ref`` (answered to the sender alone); a REST write
    looks the author's seat up. Whether the instance is held in quarantine travels with the event, so
    the hubs show the mark to project organizers only (:func:`collab.visibility.may_see`).
    """
    quarantined = bool(instance.quarantined)

    def announce(kind: str, data: dict[str, Any]) -> None:
        if origin is not None and origin.seat is not None and origin.session_id == session.pk:
            author = Seat.from_dict(origin.seat)
        else:
            author = author_seat(seats_by_username(session), data["author"])
        if kind == "deleted":
            frame: dict[str, Any] = {"type": "annotation.deleted", "id": data["id"], "version": data["version"]}
        else:
            frame = {"type": f"annotation.{kind}", "annotation": annotation_frame(data)}
        message = events.hub_message(
            "annotation", frame, origin=origin, author=author.as_dict(), id=data["id"], version=data["version"],
            quarantined=quarantined,
        )
        try:
            events.sender(session.pk, message)
        except Exception:
            log.exception("collab: broadcast to session %s failed", session.pk)

    return announce


# ------------------------------------------------------------------------------------------------
# Lost access reaches open connections at once
# ------------------------------------------------------------------------------------------------
#
# However a seat, a membership or an account is taken away (these services, the admin, a script), the
# ORM sends these signals and the session's hubs close the user's connections when the change commits.
# The hubs also re-check every connected seat at least once a second (``SessionHub.verify``), which
# covers changes made outside the ORM.


def _revoke(session_ids: Iterable[int], user_id: int, code: ErrorCode) -> None:
    username = get_user_model().objects.filter(pk=user_id).values_list(get_user_model().USERNAME_FIELD, flat=True).first()
    if username is None:
        return
    for session_id in set(session_ids):
        events.broadcast(session_id, events.hub_message("revoke", user=username, code=str(code)))


def _seated_sessions(user_id: int, **where: Any) -> list[int]:
    return list(Participant.objects.filter(user_id=user_id, **where).values_list("session_id", flat=True))


@receiver(post_delete, sender=Participant, dispatch_uid="collab.seat_deleted")
def _on_seat_deleted(sender: Any, instance: Participant, **kwargs: Any) -> None:
    _revoke([instance.session_id], instance.user_id, ErrorCode.FORBIDDEN)


@receiver(post_delete, sender=Membership, dispatch_uid="collab.membership_deleted")
def _on_membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    _revoke(_seated_sessions(instance.user_id, session__project_id=instance.project_id), instance.user_id,
            ErrorCode.NOT_FOUND)


@receiver(post_save, sender=Membership, dispatch_uid="collab.membership_saved")
def _on_membership_saved(sender: Any, instance: Membership, created: bool, **kwargs: Any) -> None:
    if created:
        return
    # The project role decides whether the seat organizes and may annotate: a fresh snapshot.
    username = instance.user.get_username()
    for session_id in set(_seated_sessions(instance.user_id, session__project_id=instance.project_id)):
        events.broadcast(session_id, events.hub_message("seat", user=username))


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="collab.user_saved")
def _on_user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created and not instance.is_active:
        _revoke(_seated_sessions(instance.pk), instance.pk, ErrorCode.NOT_AUTHENTICATED)
