"""Annotations in a session, live: ``annotations.services`` stores them, this adds seats, status and
blinding, the point budgets, and the announcement to the session's hubs on commit.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection

from annotations import services as annotation_services
from annotations.geometry import ShapeKind
from annotations.models import Annotation
from collab import events
from collab.access import SessionAccess, access_session
from collab.models import ReadingSession, SessionCase
from collab.protocol import AnnotationCreate, AnnotationDelete, AnnotationUpdate
from collab.services.payloads import annotation_frame, author_seat, seats_by_username
from collab.visibility import Seat, What, may_see
from crossread.errors import BadRequest, Conflict, DomainError, ErrorCode, NotFound
from viewer.access import ProjectAccess
from viewer.models import Membership, Role

log = logging.getLogger(__name__)

#: The most instances a session's hub remembers for live writes (see _instance_in_session).
MAX_REMEMBERED_INSTANCES = 4096
#: The points of a session's live annotations, per participant and in all: eight and thirty-two
#: maximum-size freehands. They bound the snapshot a joining participant is sent (a few MiB, in frames
#: under the websocket's limit: ``protocol.snapshot_frames``) and the work of sending it. A write that
#: would pass one is refused ``too_large`` with ``budget`` (``participant`` or ``session``), ``limit``
#: and ``used``; deleting annotations frees points.
PARTICIPANT_POINT_BUDGET = 32_768
SESSION_POINT_BUDGET = 131_072


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
    shape = message.annotation
    if shape.plane is not None:
        return _create_on_plane(user, access, message, origin)
    check_point_budget(access, len(shape.points))
    instance = _instance_in_session(access, shape.instance, instances)
    if instance is None:
        raise BadRequest("The instance is not in one of this session's cases.")
    annotation = annotation_services.create_annotation(
        user, access.session.project,
        instance_uid=shape.instance, frame=shape.frame, kind=shape.kind, points=shape.points,
        label=shape.label, client_ref=message.ref, session_id=access.session.pk,
        checked=access.project, instance=instance, announce=_announcer(access.session, instance, origin),
    )
    return _created(access, message, annotation, origin)


def _create_on_plane(user: Any, access: SessionAccess, message: AnnotationCreate,
                     origin: events.Origin | None) -> dict[str, Any] | None:
    """A mark on a reformatted plane (``shape.plane``): the series must be in one of the session's
    cases and one the participant reaches (``annotations.services.check_plane``, REST's gate: a hidden
    series is "no such series", one that cannot be reformatted 422); the point budgets as on images.
    The mark is filed under the series' middle slice, whose quarantine decides who sees it, as REST
    and the snapshot decide."""
    shape = message.annotation
    plane = shape.plane.as_dict() if shape.plane is not None else None
    if plane is None or not _series_in_session(access, plane["series"]):
        raise BadRequest("The series is not in one of this session's cases.")
    check_point_budget(access, len(shape.points))
    target = annotation_services.check_plane(access.project, plane, kind=ShapeKind(shape.kind))
    annotation = annotation_services.create_annotation(
        user, access.session.project, plane=plane, target=target, kind=shape.kind, points=shape.points,
        label=shape.label, client_ref=message.ref, session_id=access.session.pk, checked=access.project,
        announce=_announcer(access.session, target.anchor, origin),
    )
    return _created(access, message, annotation, origin)


def _created(access: SessionAccess, message: AnnotationCreate, annotation: Annotation,
             origin: events.Origin | None) -> dict[str, Any] | None:
    """The sender's answer when the create was not announced (a repeated ``ref``), else ``None``."""
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
    if message.plane is not None and (not annotation.plane or any(
            annotation.plane.get(key) != value for key, value in message.plane.as_dict().items())):
        raise BadRequest("A mark stays on the plane it was drawn on." if annotation.plane
                         else "This mark is on an image, not on a reformatted plane.")
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


def _series_in_session(access: SessionAccess, series_uid: str) -> bool:
    """Is the series ``series_uid`` in one of the session's cases, with an image the participant
    reaches (the gate's series: not every image held, for a reader)? One statement."""
    return access.project.series().filter(
        series_instance_uid=series_uid,
        study__in=SessionCase.objects.filter(session=access.session).values("study"),
    ).exists()


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
        _instance_in_session(SessionAccess(session, nobody, None), "", None)


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
