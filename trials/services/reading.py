"""Reading (the reader of a draft read): lesions, their assessments, the measurements to choose from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from annotations import sr
from annotations.models import Annotation
from crossread.errors import BadRequest, Conflict, DomainError, ErrorCode, NotFound
from trials import rules
from trials.models import Assessment, Lesion, LesionRole, Read, TrialTimepoint
from trials.services.access import TrialAccess, row_by_key
from trials.services.setup import is_text

_PREFIX = {LesionRole.TARGET: "T", LesionRole.NON_TARGET: "NT", LesionRole.NEW: "N"}


_SIGNED = "The read is signed and can no longer change."


def _refuse_signed(read: Read) -> None:
    if rules.is_signed(read.status):
        raise Conflict(_SIGNED)


def check_draft_owner(access: TrialAccess, read: Read) -> None:
    """Only the reader of a draft writes it (``trials.rules.decide_write``); ``read`` is one the caller
    sees (reached through ``access_read``)."""
    refusal = rules.decide_write(access.role, own=read.reader_id == access.user.pk, status=read.status)
    if refusal == "forbidden":
        raise DomainError("Only the reader of this read can change it.", code=ErrorCode.FORBIDDEN)
    if refusal == "signed":
        raise Conflict(_SIGNED)


def lock_draft(read: Read) -> Read:
    """Re-read the row under a lock so that a concurrent signing cannot interleave with a write."""
    locked = Read.objects.select_for_update().get(pk=read.pk)
    _refuse_signed(locked)
    return locked


def add_lesion(access: TrialAccess, read: Read, *, role: Any, organ: Any, nodal: Any = False) -> Lesion:
    check_draft_owner(access, read)
    try:
        role = LesionRole(role)
    except ValueError:
        raise BadRequest("role must be one of target, non_target, new.") from None
    organ = _check_organ(organ)
    nodal = _check_nodal(nodal)
    with transaction.atomic():
        read = lock_draft(read)
        count = Lesion.objects.filter(read=read, role=role).count()
        identifier = f"{_PREFIX[role]}{count + 1}"
        while Lesion.objects.filter(read=read, identifier=identifier).exists():
            count += 1
            identifier = f"{_PREFIX[role]}{count + 1}"
        return Lesion.objects.create(read=read, role=role, identifier=identifier, organ=organ,
                                     nodal=nodal, tracking_uid=sr.new_uid())


def _check_organ(organ: Any) -> str:
    organ = " ".join(organ.split()) if isinstance(organ, str) else organ
    if not is_text(organ, 64):
        raise BadRequest("organ must be 1-64 printable characters.")
    return organ


def _check_nodal(nodal: Any) -> bool:
    if not isinstance(nodal, bool):
        raise BadRequest("nodal must be true or false.")
    return nodal


def access_lesion(read: Read, lesion_id: Any) -> Lesion:
    return row_by_key(Lesion.objects.filter(read=read), lesion_id, NotFound("No such lesion."))


def update_lesion(access: TrialAccess, lesion: Lesion, *, organ: Any = None, nodal: Any = None) -> Lesion:
    check_draft_owner(access, lesion.read)
    changes: dict[str, Any] = {}
    if organ is not None:
        changes["organ"] = _check_organ(organ)
    if nodal is not None:
        changes["nodal"] = _check_nodal(nodal)
    with transaction.atomic():
        lock_draft(lesion.read)
        Lesion.objects.filter(pk=lesion.pk).update(**changes)
    return Lesion.objects.get(pk=lesion.pk)


def delete_lesion(access: TrialAccess, lesion: Lesion) -> None:
    check_draft_owner(access, lesion.read)
    with transaction.atomic():
        lock_draft(lesion.read)
        lesion.delete()


def access_timepoint(read: Read, timepoint_id: Any) -> TrialTimepoint:
    return row_by_key(TrialTimepoint.objects.filter(subject=read.subject).select_related("study"), timepoint_id,
                      BadRequest("timepoint must be the id of one of the subject's time points."))


def _check_annotation(read: Read, timepoint: TrialTimepoint, annotation_id: Any) -> Annotation:
    """The reader's own, live, bidirectional annotation on an image of this time point's study."""
    if isinstance(annotation_id, bool) or not isinstance(annotation_id, int):
        raise BadRequest("annotation must be the id of your bidirectional measurement.")
    annotation = Annotation.objects.select_related("instance__series__study").filter(
        pk=annotation_id, project=read.trial.project, deleted=False).first()
    if annotation is None or annotation.author_id != read.reader_id:
        raise BadRequest("annotation must be one of your own measurements.")
    if annotation.kind != "bidirectional":
        raise BadRequest("RECIST diameters come from a bidirectional measurement.")
    if annotation.instance.series.study_id != timepoint.study_id:
        raise BadRequest(f"The measurement is not on an image of the {timepoint.label} study.")
    measurements = annotation.measurements or {}
    if measurements.get("unit") != "mm":
        raise BadRequest("The image has no pixel spacing: the measurement is not in mm.")
    if not measurements.get("valid"):
        raise BadRequest("The bidirectional is not valid: its axes must cross at a right angle "
                         "and the short axis must not exceed the long axis.")
    return annotation


def set_assessment(access: TrialAccess, read: Read, *, lesion: Any, timepoint: Any, status: Any,
                   annotation: Any = None) -> Assessment:
    """Record a lesion's status at a time point, with the measurement for a measured target."""
    check_draft_owner(access, read)
    found = access_lesion(read, lesion)
    tp = access_timepoint(read, timepoint)
    role = sr.LesionRole(found.role)
    if status not in sr.ROLE_STATUSES[role]:
        allowed = ", ".join(sorted(sr.ROLE_STATUSES[role]))
        raise BadRequest(f"status of a {found.get_role_display().lower()} must be one of {allowed}.")
    if tp.order == 0:
        if role is sr.LesionRole.NEW:
            raise BadRequest("New lesions are recorded at follow-ups only.")
        if role is sr.LesionRole.TARGET and status != "measured":
            raise BadRequest("Targets are measured at baseline (RECIST 1.1 §4.2).")
        if role is sr.LesionRole.NON_TARGET and status != "present":
            raise BadRequest("A non-target is present at baseline.")
    measured = status == "measured" or (role is sr.LesionRole.NEW and status == "present")
    chosen = None
    if annotation is not None:
        if not measured:
            raise BadRequest(f"A lesion that is {status.replace('_', ' ')} has no measurement.")
        chosen = _check_annotation(read, tp, annotation)
    elif status == "measured":
        raise BadRequest("A measured target needs its bidirectional measurement (annotation).")
    with transaction.atomic():
        lock_draft(read)
        if chosen is not None and Assessment.objects.filter(
                lesion__read=read, annotation=chosen).exclude(lesion=found, timepoint=tp).exists():
            raise BadRequest("This measurement is already assigned to another lesion or time point.")
        assessment, _ = Assessment.objects.update_or_create(
            lesion=found, timepoint=tp, defaults={"status": status, "annotation": chosen})
    return assessment


def own_measurements(read: Read, timepoints: Sequence[TrialTimepoint]) -> list[dict[str, Any]]:
    """The reader's bidirectional annotations on this subject's studies (only their own: blinded)."""
    study_to_tp = {tp.study_id: tp for tp in timepoints}
    found = Annotation.objects.filter(
        project=read.trial.project, author_id=read.reader_id, deleted=False, kind="bidirectional",
        instance__series__study_id__in=list(study_to_tp)).select_related("instance__series__study")
    return [
        {"id": a.pk, "timepoint": study_to_tp[a.instance.series.study_id].pk, "label": a.label,
         "long_axis_mm": (a.measurements or {}).get("long_axis"), "short_axis_mm": (a.measurements or {}).get("short_axis"),
         "valid": bool((a.measurements or {}).get("valid")), "unit": (a.measurements or {}).get("unit"),
         "instance": a.instance.sop_instance_uid, "series": a.instance.series.series_instance_uid,
         "frame": a.frame, "points": a.points, "columns": a.instance.columns, "rows": a.instance.rows}
        for a in found
    ]
