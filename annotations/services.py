"""The actions layer of annotations: every write (REST now, the websocket of ``collab`` later) goes here.

Each action is ``check_*`` (look up, authorise, validate; raises a :class:`DomainError` and writes
nothing) followed by the write, in one transaction. A caller that shows the write live passes an
``announce`` callable (:data:`Announce`), called once the transaction commits with the kind of write
(``"created"``, ``"updated"`` or ``"deleted"``) and the annotation as :func:`serialize` gives it: a
reading session's writes (``collab``) tell the session's processes that way, explicitly (``annotations``
never imports ``collab``).

Who may do what (``viewer.models.Role``):

- viewers read;
- readers and organizers create;
- authors update and delete their own annotations, organizers any in the project;
- anyone else (not a member) gets "not found".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from annotations import calibration, geometry, planes
from annotations.geometry import Calibration, ShapeKind
from annotations.models import Annotation
from crossread.errors import BadRequest, Conflict, DomainError, ErrorCode, NotFound
from audit.models import Action
from audit.services import record
from viewer import imaging, rendering, volume
from viewer.access import ProjectAccess, access_project
from viewer.models import Instance, Project, Role
from viewer.rendering import mpr

User = AbstractBaseUser | AnonymousUser

#: Called after commit with the kind of write and the serialized annotation (see the module's docstring).
Announce = Callable[[str, dict[str, Any]], None]

MAX_LABEL_LENGTH = 200
MAX_CLIENT_REF_LENGTH = 64
#: What may be drawn on a reformatted plane (MPR; :data:`annotations.planes.PLANE_KINDS`).
PLANE_KINDS = tuple(ShapeKind(kind) for kind in planes.PLANE_KINDS)
#: A plane's index is at most this (:data:`annotations.planes.MAX_PLANE_INDEX`).
MAX_PLANE_INDEX = planes.MAX_PLANE_INDEX
#: Kinds whose measurement needs the frame's modality values.
_VALUE_KINDS = {ShapeKind.ELLIPSE, ShapeKind.FREEHAND, ShapeKind.POINT}
#: Attributes the calibration is read from (PS3.3 C.7.6.2.1.1, C.8.11.4, C.7.6.16.2.1, 10.7.1.3,
#: C.8.5.5; see :mod:`annotations.calibration`).
_CALIBRATION_TAGS = {
    "00080016",  # SOPClassUID
    "00080060",  # Modality
    "00280030",  # PixelSpacing
    "00181164",  # ImagerPixelSpacing
    "00181114",  # EstimatedRadiographicMagnificationFactor
    "00280A02",  # PixelSpacingCalibrationType
    "00186011",  # SequenceOfUltrasoundRegions
    "52009229",  # SharedFunctionalGroupsSequence
    "52009230",  # PerFrameFunctionalGroupsSequence
}
#: TotalPixelMatrixColumns and TotalPixelMatrixRows: the size of a whole-slide image's level.
_TOTAL_COLUMNS, _TOTAL_ROWS = "00480006", "00480007"


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def serialize(annotation: Annotation) -> dict[str, Any]:
    """JSON-ready form used by REST and the websocket."""
    instance = annotation.instance
    return {
        "id": annotation.pk,
        "version": annotation.version,
        "author": annotation.author.get_username(),
        "instance": instance.sop_instance_uid,
        "series": instance.series.series_instance_uid,
        "study": instance.series.study.study_instance_uid,
        "frame": annotation.frame,
        "kind": annotation.kind,
        "points": annotation.points,
        "label": annotation.label,
        "measurements": annotation.measurements,
        "plane": annotation.plane,
        "session": annotation.session_id,
        "client_ref": annotation.client_ref,
        "deleted": annotation.deleted,
        "created_at": annotation.created_at.isoformat(),
        "updated_at": annotation.updated_at.isoformat(),
    }


def _base_queryset() -> QuerySet[Annotation]:
    return Annotation.objects.select_related("author", "instance__series__study")


def visible_annotations(
    access: ProjectAccess,
    *,
    instance_uid: str | None = None,
    series_uid: str | None = None,
    study_uid: str | None = None,
    session_id: int | None = None,
    include_deleted: bool = False,
) -> QuerySet[Annotation]:
    """Annotations of the project that the member behind ``access`` may see, optionally narrowed.

    Without ``session_id`` only the project's own annotations are listed, never a reading session's
    (``collab`` lists those with the session's blinding rules). Annotations on instances the member
    may not reach (quarantined) are hidden with them; in a project with private annotations
    (blinded reads), members below organizer see only their own
    (:func:`viewer.rules.sees_project_annotation`).
    """
    queryset = _visible(_base_queryset().filter(project=access.project, session_id=session_id), access)
    if not include_deleted:
        queryset = queryset.filter(deleted=False)
    if instance_uid:
        queryset = queryset.filter(instance__sop_instance_uid=instance_uid)
    if series_uid:
        queryset = queryset.filter(instance__series__series_instance_uid=series_uid)
    if study_uid:
        queryset = queryset.filter(instance__series__study__study_instance_uid=study_uid)
    return queryset


def _visible(queryset: QuerySet[Annotation], access: ProjectAccess) -> QuerySet[Annotation]:
    """:func:`viewer.rules.sees_project_annotation` as a filter (``tests/test_gate.py`` holds the two
    together). A reading session's blinding (:mod:`collab.visibility`) applies on top of it."""
    if access.hides_quarantine:
        queryset = queryset.filter(instance__quarantined=False)
    if access.project.private_annotations and not access.can(Role.ORGANIZER):
        queryset = queryset.filter(author_id=access.membership.user_id)
    return queryset


def access_annotation(access: ProjectAccess, annotation_id: Any, *, session_id: int | None = None) -> Annotation:
    """The project's annotation ``annotation_id`` (deleted ones are not found), or with
    ``session_id`` an annotation of that reading session (whose blinding ``collab`` applies)."""
    try:
        key = int(annotation_id)
    except (TypeError, ValueError):
        raise NotFound("No such annotation.") from None
    queryset = _base_queryset().filter(project=access.project, pk=key, deleted=False, session_id=session_id)
    found = _visible(queryset, access).first()
    if found is None:
        raise NotFound("No such annotation.")
    return found


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def check_can_create(user: User, project: Project, checked: ProjectAccess | None = None) -> ProjectAccess:
    """Readers create annotations. ``checked``: this user's access to this project, already read."""
    if checked is not None and checked.membership.user_id == user.pk and checked.project.pk == project.pk:
        if not checked.can(Role.READER):
            raise DomainError(f"This needs the {Role.READER} role in the project.", code=ErrorCode.FORBIDDEN)
        return checked
    return access_project(user, project.slug, minimum=Role.READER)


def check_can_change(user: User, annotation: Annotation) -> ProjectAccess:
    """Authors change their own annotations (as readers); organizers change any."""
    access = access_project(user, annotation.project.slug, minimum=Role.VIEWER)
    if access.can(Role.ORGANIZER):
        return access
    if not access.can(Role.READER):
        raise DomainError("Viewers cannot change annotations.", code=ErrorCode.FORBIDDEN)
    if annotation.author_id != user.pk:
        raise DomainError("Only the author or an organizer can change this annotation.", code=ErrorCode.FORBIDDEN)
    return access


def check_instance(access: ProjectAccess, instance_uid: Any, found: Instance | None = None) -> Instance:
    """The instance ``instance_uid`` of the project, if the member may reach it (``found``: already
    fetched through the gate, with its series and study). An instance hidden from the member (in
    quarantine) is refused exactly as one that does not exist."""
    if not isinstance(instance_uid, str) or not instance_uid:
        raise BadRequest("instance must be a SOP Instance UID.")
    if found is not None and found.sop_instance_uid == instance_uid and access.sees(found):
        instance = found
    else:
        try:
            instance = access.instance(instance_uid)
        except NotFound:
            raise BadRequest("No such instance in this project.") from None
    if not instance.rows or not instance.columns:
        raise BadRequest("The instance has no image to annotate.")
    return instance


def check_frame(instance: Instance, frame: Any) -> int:
    frames = instance.number_of_frames or 1
    if isinstance(frame, bool) or not isinstance(frame, int) or not 1 <= frame <= frames:
        raise BadRequest(f"frame must be an integer from 1 to {frames}.")
    return frame


def check_kind(kind: Any) -> ShapeKind:
    try:
        return ShapeKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in ShapeKind)
        raise BadRequest(f"Unknown annotation kind; expected one of {allowed}.") from None


def check_points(kind: ShapeKind, points: Any, instance: Instance | None = None, *,
                 size: tuple[int, int] | None = None) -> list[list[float]]:
    """Well-formed points, as many as ``kind`` needs, a non-degenerate shape, all inside the image
    (the instance's, or ``size``, (columns, rows), for a reformatted plane)."""
    try:
        geometry.measure(kind, points, None)  # the type, count and shape rules, without pixels
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    xy = [[float(x), float(y)] for x, y in points]
    if size is not None:
        columns, rows = size
    else:
        columns, rows = image_size(instance) if instance is not None else (0, 0)
    if not all(0 <= x <= columns and 0 <= y <= rows for x, y in xy):
        raise BadRequest(f"{kind}: every point must lie inside the image (0..{columns}, 0..{rows}).")
    return xy


@dataclass(frozen=True)
class PlaneTarget:
    """A reformatted plane a mark is drawn on, checked through the gate: the series as a regular
    stack (:func:`viewer.rendering.mpr.series_volume`), the plane's layout and index, the instance
    the mark is filed under (the stack's middle slice), and what is stored (:attr:`stored`)."""

    series: mpr.SeriesVolume
    layout: volume.PlaneLayout
    index: int
    anchor: Instance
    stored: dict[str, Any]

    @property
    def size(self) -> tuple[int, int]:
        return (self.layout.columns, self.layout.rows)


def check_plane(access: ProjectAccess, plane: Any, *, kind: ShapeKind | None = None) -> PlaneTarget:
    """``plane`` = ``{"series", "plane", "index"}`` (read by :func:`annotations.planes.read_plane`, the
    one reading REST and the websocket share): a plane of a series the member reaches (the same gate
    as the series' images: a hidden or unknown series is "no such series"), that can be reformatted
    (else 422 with the reason), with ``index`` in range. ``kind``: refused unless one of
    :data:`PLANE_KINDS`."""
    try:
        ref = planes.read_plane(plane)
        if kind is not None:
            planes.check_plane_kind(kind.value)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    series_uid, name, index = ref.series, ref.plane, ref.index
    try:
        found = mpr.series_volume(access, series_uid)
        layout = mpr.check_plane(found, name, index)
    except NotFound:
        raise BadRequest("No such series in this project.") from None
    except imaging.RenderError as exc:
        code = ErrorCode.TOO_LARGE if exc.status == 413 else ErrorCode.BAD_REQUEST if exc.status in (400, 404) else ErrorCode.UNPROCESSABLE
        raise DomainError(exc.detail, code=code) from None
    middle = found.images[found.stack.order[len(found.stack.order) // 2]]
    try:
        anchor = access.instance(middle.sop_instance_uid, series=series_uid)
    except NotFound:  # released or removed meanwhile
        raise BadRequest("No such series in this project.") from None
    stored = {
        "series": series_uid, "plane": name, "index": index,
        "position": list(layout.position(index)),
        "orientation": list(layout.row_cosines + layout.column_cosines),
        "pixel_spacing": list(layout.pixel_spacing),
        "spacing": layout.spacing,
        "normal": list(layout.normal),
        "rows": layout.rows,
        "columns": layout.columns,
    }
    return PlaneTarget(found, layout, index, anchor, stored)


def check_label(label: Any) -> str:
    if not isinstance(label, str):
        raise BadRequest("label must be text.")
    if len(label) > MAX_LABEL_LENGTH:
        raise BadRequest(f"label must be at most {MAX_LABEL_LENGTH} characters.")
    return label.strip()


def check_client_ref(client_ref: Any) -> str:
    if not isinstance(client_ref, str) or len(client_ref) > MAX_CLIENT_REF_LENGTH:
        raise BadRequest(f"client_ref must be text of at most {MAX_CLIENT_REF_LENGTH} characters.")
    return client_ref


def check_session_id(session_id: Any) -> int | None:
    if session_id is None:
        return None
    if isinstance(session_id, bool) or not isinstance(session_id, int) or session_id < 1:
        raise BadRequest("session must be a positive integer or null.")
    return session_id


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def image_size(instance: Instance) -> tuple[int, int]:
    """(columns, rows) of the image marks are drawn on: the frame's, or for a whole-slide image the
    total pixel matrix of its level (the viewer shows the finest level, in its pixel coordinates)."""
    if instance.sop_class_uid == calibration.WSI_SOP_CLASS:
        columns, rows = _first_int(instance, _TOTAL_COLUMNS), _first_int(instance, _TOTAL_ROWS)
        if columns and rows:
            return columns, rows
    return instance.columns or 0, instance.rows or 0


def _first_int(instance: Instance, tag: str) -> int:
    values = (instance.metadata or {}).get(tag, {}).get("Value") or [0]
    return values[0] if isinstance(values[0], int) and not isinstance(values[0], bool) else 0


def calibration_for(instance: Instance, frame: int = 1, kind: ShapeKind = ShapeKind.LENGTH,
                    points: Sequence[Sequence[float]] = ()) -> Calibration:
    """The spacing ``points`` of ``kind`` are measured with (:func:`annotations.calibration.calibrate`:
    a slide's base level in micrometres, the ultrasound region holding the points, PixelSpacing,
    projection radiographs by PS3.3 10.7.1.3, else pixels). Points across ultrasound regions or
    outside every calibrated one are refused (400)."""
    subset = {tag: value for tag, value in instance.metadata.items() if tag in _CALIBRATION_TAGS}
    if not subset:
        return Calibration()
    try:
        dataset = pydicom.Dataset.from_json(subset, bulk_data_uri_handler=lambda *args: b"")
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return Calibration()  # tolerant when reading: malformed attributes measure in pixels
    try:
        return calibration.calibrate(dataset, kind, points, frame - 1)
    except calibration.CalibrationError as exc:
        raise BadRequest(str(exc)) from None
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return Calibration()


def modality_values(instance: Instance, frame: int, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """Modality values (e.g. HU) of the frame's pixels in ``box = (row0, row1, col0, col1)``.

    ``None`` for colour images, which have no modality values. Only the box is converted.
    """
    try:
        prepared = rendering.prepared_frame(instance, frame)
    except imaging.RenderError as exc:
        raise DomainError(f"The frame cannot be decoded: {exc.detail}", code=ErrorCode.UNPROCESSABLE) from None
    if prepared.is_color:
        return None
    row0, row1, col0, col1 = box
    stored = prepared.pixels[row0:row1, col0:col1]
    if prepared.entries:  # lookup path: offsets from the frame minimum
        stored = stored.astype(np.float64) + prepared.offset
    return imaging.apply_modality_lut(stored, prepared.modality)


def compute_measurements(instance: Instance, frame: int, kind: ShapeKind, points: Sequence[Sequence[float]]) -> dict[str, Any]:
    """:func:`geometry.measure` with the instance's calibration and, for regions and points, the
    modality values of the region's bounding box (points shifted into the box)."""
    slide = instance.sop_class_uid == calibration.WSI_SOP_CLASS
    return _measure(kind, points, calibration_for(instance, frame, kind, points), image_size(instance),
                    (lambda box: None) if slide else (lambda box: modality_values(instance, frame, box)))


def plane_measurements(target: PlaneTarget, kind: ShapeKind, points: Sequence[Sequence[float]]) -> dict[str, Any]:
    """:func:`geometry.measure` on a reformatted plane: square pixels at the plane's pixel spacing
    (``PixelSpacing`` of the slices in their plane, the same along the resampled axis), and the
    plane's modality values (the volume's, Modality LUT applied, linear between slices)."""
    calibration = Calibration.from_pixel_spacing(list(target.layout.pixel_spacing))

    def values(box: tuple[int, int, int, int]) -> np.ndarray:
        row0, row1, col0, col1 = box
        try:
            plane = mpr.volume_of(target.series).plane(target.layout.plane, target.index)
        except imaging.RenderError as exc:
            raise DomainError(f"The series cannot be decoded: {exc.detail}", code=ErrorCode.UNPROCESSABLE) from None
        return plane[row0:row1, col0:col1].astype(np.float64)

    return _measure(kind, points, calibration, target.size, values)


def _measure(kind: ShapeKind, points: Sequence[Sequence[float]], calibration: Calibration, size: tuple[int, int],
             read_values: Callable[[tuple[int, int, int, int]], np.ndarray | None]) -> dict[str, Any]:
    xy = np.asarray(points, dtype=float)
    values = None
    if kind in _VALUE_KINDS:
        columns, rows = size
        col0 = min(max(math.floor(float(xy[:, 0].min())), 0), columns)
        col1 = min(max(math.ceil(float(xy[:, 0].max())), col0), columns)
        row0 = min(max(math.floor(float(xy[:, 1].min())), 0), rows)
        row1 = min(max(math.ceil(float(xy[:, 1].max())), row0), rows)
        if kind is ShapeKind.POINT:
            col1, row1 = min(col0 + 1, columns), min(row0 + 1, rows)
        values = read_values((row0, row1, col0, col1))
        xy = xy - np.array([col0, row0], dtype=float)
    try:
        result = geometry.measure(kind, xy, calibration, values)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if kind is ShapeKind.POINT and values is not None and values.size == 0:
        result["value"] = None
    if kind in _VALUE_KINDS and values is None:
        result["note"] = "colour image: no modality values"
    return result


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


_AUDIT_ACTIONS = {"created": Action.ANNOTATION_CREATED, "updated": Action.ANNOTATION_CHANGED, "deleted": Action.ANNOTATION_DELETED}


def _announce(kind: str, annotation: Annotation, user: User, announce: Announce | None) -> None:
    """After commit: tell the live session first (others are waiting to see it), then audit."""
    if announce is not None:
        data = serialize(annotation)
        transaction.on_commit(lambda: announce(kind, data))
    record(
        _AUDIT_ACTIONS[kind], actor=user, project=annotation.project, object_type="annotation",
        object_id=str(annotation.pk), instance=annotation.instance.sop_instance_uid, kind=annotation.kind,
        version=annotation.version, session=annotation.session_id,
    )


def create_annotation(
    user: User,
    project: Project,
    *,
    instance_uid: str | None = None,
    frame: int = 1,
    kind: str,
    points: Any,
    label: str = "",
    client_ref: str = "",
    session_id: int | None = None,
    checked: ProjectAccess | None = None,
    instance: Instance | None = None,
    announce: Announce | None = None,
    plane: Any = None,
    target: PlaneTarget | None = None,
) -> Annotation:
    """Validate, measure and store a new annotation (``announce``: see the module's docstring).

    On an image: ``instance_uid`` and ``frame``. On a reformatted plane: ``plane`` (see
    :func:`check_plane`) and no instance; the mark is filed under the series' middle slice with the
    plane and its geometry, and measured on the plane.

    The same ``(user, client_ref)`` twice returns the annotation created the first time (the
    second payload is validated, then ignored), so a client may retry a create safely. ``checked`` and ``instance``:
    what a caller (a reading session) already read for this user, project and instance, so a live
    write does not read them twice; they are verified to be for the same user, project and UID.
    ``target``: the plane as :func:`check_plane` found it with ``checked`` (a reading session checks
    the plane before it writes), used when it names the same series, plane and index.
    """
    access = check_can_create(user, project, checked)
    client_ref = check_client_ref(client_ref)
    shape = check_kind(kind)
    stored_plane = None
    if plane is not None:
        if instance_uid not in (None, "") or frame != 1:
            raise BadRequest("A mark is on an instance (instance, frame) or on a reformatted plane (plane), not both.")
        if target is None or checked is not access or shape not in PLANE_KINDS or not _same_plane(target, plane):
            target = check_plane(access, plane, kind=shape)
        instance, frame, stored_plane = target.anchor, 1, target.stored
        xy = check_points(shape, points, size=target.size)
    else:
        target = None
        instance = check_instance(access, instance_uid, instance)
        frame = check_frame(instance, frame)
        xy = check_points(shape, points, instance)
    label = check_label(label)
    session_id = check_session_id(session_id)
    measurements = (plane_measurements(target, shape, xy) if target is not None
                    else compute_measurements(instance, frame, shape, xy))
    try:
        with transaction.atomic():
            annotation = Annotation.objects.create(
                project=project,
                instance=instance,
                frame=frame,
                kind=shape.value,
                points=xy,
                label=label,
                author=user,
                measurements=measurements,
                session_id=session_id,
                client_ref=client_ref,
                plane=stored_plane,
            )
            _announce("created", annotation, user, announce)
    except IntegrityError:
        # The insert comes first and the unique (author, client_ref) constraint finds a repeat: a
        # repeat is rare, and asking before every insert cost a query on the live path.
        existing = by_client_ref(user, client_ref, project) if client_ref else None
        if existing is None:  # the instance went away meanwhile (its foreign key failed at commit)
            raise BadRequest("No such instance in this project.") from None
        return existing
    return annotation  # (its instance, series, study and author are loaded: what serialize reads)


def _same_plane(target: PlaneTarget, plane: Any) -> bool:
    """Does ``plane`` name the plane ``target`` is (series, plane and index)?"""
    try:
        return planes.read_plane(plane) == planes.read_plane(target.stored)
    except ValueError:
        return False


def by_client_ref(user: User, client_ref: str, project: Project) -> Annotation | None:
    """The annotation ``user`` created with ``client_ref`` (deleted or not), if any."""
    found = _base_queryset().filter(author=user, client_ref=client_ref).first()
    if found is not None and found.project_id != project.pk:
        raise Conflict("This client_ref was already used in another project.")
    return found


def update_annotation(
    user: User, annotation: Annotation, *, version: Any, points: Any = None, label: Any = None,
    announce: Announce | None = None,
) -> Annotation:
    """Change points and/or label of the annotation at ``version``; the result has version + 1.

    Raises :class:`Conflict` with ``annotation`` (the current state, serialized) when ``version``
    is not the stored one: the client should rebase on it.
    """
    access = check_can_change(user, annotation)
    if isinstance(version, bool) or not isinstance(version, int):
        raise BadRequest("version must be the integer version the change is based on.")
    changes: dict[str, Any] = {}
    if points is not None:
        shape = ShapeKind(annotation.kind)
        if annotation.plane:  # on a reformatted plane: the plane again through the gate, measured on it
            keys = ("series", "plane", "index")
            target = check_plane(access, {key: annotation.plane.get(key) for key in keys})
            xy = check_points(shape, points, size=target.size)
            changes["measurements"] = plane_measurements(target, shape, xy)
            changes["plane"] = target.stored
        else:
            xy = check_points(shape, points, annotation.instance)
            changes["measurements"] = compute_measurements(annotation.instance, annotation.frame, shape, xy)
        changes["points"] = xy
    if label is not None:
        changes["label"] = check_label(label)
    with transaction.atomic():
        written = Annotation.objects.filter(pk=annotation.pk, version=version, deleted=False).update(
            version=F("version") + 1, updated_at=timezone.now(), **changes
        )
        current = _base_queryset().get(pk=annotation.pk)
        if not written:
            _raise_stale(current)
        _announce("updated", current, user, announce)
    return current


def delete_annotation(user: User, annotation: Annotation, *, version: Any = None,
                      announce: Announce | None = None) -> None:
    """Soft-delete (the row stays, marked ``deleted``, with version + 1); ``version`` is optional."""
    check_can_change(user, annotation)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise BadRequest("version must be an integer.")
    with transaction.atomic():
        matching = Annotation.objects.filter(pk=annotation.pk, deleted=False)
        if version is not None:
            matching = matching.filter(version=version)
        written = matching.update(deleted=True, version=F("version") + 1, updated_at=timezone.now())
        current = _base_queryset().get(pk=annotation.pk)
        if not written:
            if current.deleted:
                raise NotFound("No such annotation.")
            _raise_stale(current)
        _announce("deleted", current, user, announce)


def _raise_stale(current: Annotation) -> None:
    if current.deleted:
        raise NotFound("The annotation was deleted.")
    raise Conflict(
        f"The annotation changed meanwhile (now version {current.version}).", annotation=serialize(current)
    )


__all__ = [
    "access_annotation",
    "Announce",
    "by_client_ref",
    "calibration_for",
    "check_plane",
    "compute_measurements",
    "create_annotation",
    "delete_annotation",
    "plane_measurements",
    "serialize",
    "update_annotation",
    "visible_annotations",
]
