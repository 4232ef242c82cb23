"""Reading (the reader of a draft read): lesions, their assessments, the measurements to choose from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from annotations import services as annotation_services
from annotations import sr
from annotations.models import Annotation
from crossread.errors import BadRequest, Conflict, DomainError, ErrorCode, NotFound
from trials import rules
from trials.models import Assessment, Lesion, LesionRole, Read, ReadMark, TrialTimepoint
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


def add_lesion(access: TrialAccess, read: Read, *, role: Any, organ: Any, nodal: Any = False,
               mark: Any = None) -> Lesion:
    """A new lesion of the read; with ``mark`` (the id of a mark of this read not yet named), the
    lesion is named from the image: the mark becomes the lesion's at its time point (see
    :func:`assign_mark`), in the same transaction."""
    check_draft_owner(access, read)
    try:
        role = LesionRole(role)
    except ValueError:
        raise BadRequest("role must be one of target, non_target, new.") from None
    organ = _check_organ(organ)
    nodal = _check_nodal(nodal)
    found_mark = None if mark is None else access_mark(read, mark)
    if found_mark is not None and found_mark.lesion_id is not None:
        raise BadRequest("This mark already belongs to a lesion.")
    with transaction.atomic():
        read = lock_draft(read)
        count = Lesion.objects.filter(read=read, role=role).count()
        identifier = f"{_PREFIX[role]}{count + 1}"
        while Lesion.objects.filter(read=read, identifier=identifier).exists():
            count += 1
            identifier = f"{_PREFIX[role]}{count + 1}"
        lesion = Lesion.objects.create(read=read, role=role, identifier=identifier, organ=organ,
                                       nodal=nodal, tracking_uid=sr.new_uid())
        if found_mark is not None:
            assign_mark(access, read, found_mark, lesion)
        return lesion


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
    return row_by_key(Lesion.objects.filter(read=read).select_related("read__trial"), lesion_id,
                      NotFound("No such lesion."))


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


def lesion_kinds(lesion: Lesion) -> tuple[str, ...]:
    """The kinds of mark that measure this lesion in its trial (``trials.rules.measuring_kinds``)."""
    return rules.measuring_kinds(lesion.role, nodal=lesion.nodal, targets_by_length=lesion.read.trial.targets_by_length)


def mark_refusal(lesion: Lesion, tp: TrialTimepoint, kind: str) -> str | None:
    """Why a mark of ``kind`` cannot be ``lesion``'s at ``tp`` (``trials.rules.mark_refusal``)."""
    return rules.mark_refusal(lesion.role, nodal=lesion.nodal, targets_by_length=lesion.read.trial.targets_by_length,
                              kind=kind, baseline=tp.order == 0)


def unusable(annotation: Annotation) -> str | None:
    """Why a measuring mark gives no RECIST diameter (in words), ``None`` when it does: a valid
    bidirectional, or a length, in mm."""
    measurements = annotation.measurements or {}
    if measurements.get("unit") != "mm":
        return "The image has no pixel spacing: the measurement is not in mm."
    if annotation.kind == rules.BIDIRECTIONAL and not measurements.get("valid"):
        return ("The bidirectional is not valid: its axes must cross at a right angle and the short axis must "
                "not exceed the long axis.")
    if annotation.kind == rules.LENGTH and not measurements.get("length"):
        return "The length is 0 mm."
    return None


def _check_annotation(read: Read, timepoint: TrialTimepoint, lesion: Lesion, annotation_id: Any) -> Annotation:
    """The reader's own, live measurement of ``lesion`` (a kind of :func:`lesion_kinds`) on an image of this
    time point's study: a mark of this read, or one drawn outside any read and any reading session (it
    becomes this read's when assigned)."""
    kinds = lesion_kinds(lesion)
    if isinstance(annotation_id, bool) or not isinstance(annotation_id, int):
        raise BadRequest(f"annotation must be the id of your {' or '.join(kinds)} measurement.")
    annotation = Annotation.objects.select_related("instance__series__study").filter(
        pk=annotation_id, project=read.trial.project, deleted=False, session_id=None).first()
    if annotation is None or annotation.author_id != read.reader_id:
        raise BadRequest("annotation must be one of your own measurements.")
    owner = ReadMark.objects.filter(annotation=annotation).values_list("read_id", flat=True).first()
    if owner is not None and owner != read.pk:
        raise BadRequest("annotation must be one of your own measurements.")
    if annotation.kind not in kinds:
        raise BadRequest(mark_refusal(lesion, timepoint, annotation.kind)
                         or "RECIST diameters come from a bidirectional measurement.")
    if annotation.instance.series.study_id != timepoint.study_id:
        raise BadRequest(f"The measurement is not on an image of the {timepoint.label} study.")
    problem = unusable(annotation)
    if problem:
        raise BadRequest(problem)
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
        chosen = _check_annotation(read, tp, found, annotation)
    # "measured" without its measurement is kept: the read waits for the mark (the table says so and
    # signing refuses until it is drawn).
    with transaction.atomic():
        lock_draft(read)
        if chosen is not None and Assessment.objects.filter(
                lesion__read=read, annotation=chosen).exclude(lesion=found, timepoint=tp).exists():
            raise BadRequest("This measurement is already assigned to another lesion or time point.")
        assessment, _ = Assessment.objects.update_or_create(
            lesion=found, timepoint=tp, defaults={"status": status, "annotation": chosen})
        if chosen is not None:
            ReadMark.objects.update_or_create(annotation=chosen, defaults={"read": read, "timepoint": tp, "lesion": found})
    return assessment


def own_measurements(read: Read, timepoints: Sequence[TrialTimepoint]) -> list[dict[str, Any]]:
    """The measuring marks of this read (its reader's, drawn for it: never another read's or a reading
    session's), to choose from: bidirectionals, and lengths in a trial that measures targets by length."""
    study_to_tp = {tp.study_id: tp for tp in timepoints}
    kinds = [rules.BIDIRECTIONAL, rules.LENGTH] if read.trial.targets_by_length else [rules.BIDIRECTIONAL]
    found = Annotation.objects.filter(
        read_mark__read=read, deleted=False, kind__in=kinds,
        instance__series__study_id__in=list(study_to_tp)).select_related("instance__series__study")
    return [
        {"id": a.pk, "timepoint": study_to_tp[a.instance.series.study_id].pk, "label": a.label, "kind": a.kind,
         "long_axis_mm": (a.measurements or {}).get("long_axis", (a.measurements or {}).get("length")),
         "short_axis_mm": (a.measurements or {}).get("short_axis"),
         "valid": unusable(a) is None, "unit": (a.measurements or {}).get("unit"),
         "instance": a.instance.sop_instance_uid, "series": a.instance.series.series_instance_uid,
         "frame": a.frame, "points": a.points, "columns": a.instance.columns, "rows": a.instance.rows}
        for a in found
    ]


# --------------------------------------------------------------------------------------------
# Marks: what the reader draws in the read's viewer
# --------------------------------------------------------------------------------------------

#: The kinds a read's mark may be: RECIST diameters (bidirectional), a length (a non-nodal
#: lesion's long axis where the trial allows it, or where a lesion is), a point (where a non-target is).
MARK_KINDS = rules.MARK_KINDS
#: A read has at most this many live marks (a subject has a handful of lesions and time points).
MAX_MARKS_PER_READ = 400


def read_marks(access: TrialAccess, read: Read) -> list[tuple[Annotation, ReadMark]]:
    """The read's live marks on images the caller reaches through the gate, oldest first."""
    visible = access.project_access.instances()
    marks = ReadMark.objects.filter(read=read, annotation__deleted=False, annotation__instance__in=visible)
    return [(mark.annotation, mark) for mark in marks.select_related(
        "annotation__author", "annotation__instance__series__study").order_by("pk")]


def serialize_mark(annotation: Annotation, mark: ReadMark) -> dict[str, Any]:
    """An annotation as ``annotations.services.serialize`` gives it, with the read's facts of it."""
    return annotation_services.serialize(annotation) | {
        "read": mark.read_id, "timepoint": mark.timepoint_id, "lesion": mark.lesion_id}


def access_mark(read: Read, annotation_id: Any) -> ReadMark:
    """The read's live mark whose annotation is ``annotation_id`` (marks are named by their annotation)."""
    refusal = NotFound("No such mark in this read.")
    try:
        key = int(annotation_id)
    except (TypeError, ValueError):
        raise refusal from None
    mark = ReadMark.objects.select_related("annotation__instance__series__study", "lesion", "timepoint").filter(
        read=read, annotation_id=key, annotation__deleted=False).first()
    if mark is None:
        raise refusal
    return mark


def _timepoint_of_instance(access: TrialAccess, read: Read, instance_uid: Any) -> TrialTimepoint:
    """The time point whose study holds image ``instance_uid`` (through the gate)."""
    if not isinstance(instance_uid, str) or not 0 < len(instance_uid) <= 64:
        raise BadRequest("instance must be the SOPInstanceUID of an image of the read's studies.")
    timepoints = {tp.study_id: tp for tp in read.subject.timepoints.select_related("study")}
    study_id = access.project_access.instances().filter(
        sop_instance_uid=instance_uid, series__study_id__in=list(timepoints)).values_list(
        "series__study_id", flat=True).first()
    if study_id is None:
        raise BadRequest("instance must be the SOPInstanceUID of an image of the read's studies.")
    return timepoints[study_id]


def _assessment_for_mark(lesion: Lesion, tp: TrialTimepoint, annotation: Annotation) -> tuple[str, bool]:
    """The status a lesion takes from a mark drawn for it at ``tp`` and whether the mark is its
    measurement; the mark must be one the lesion takes there (:func:`mark_refusal`, checked by the caller)."""
    measures = annotation.kind in lesion_kinds(lesion)
    if lesion.role == LesionRole.TARGET:
        return ("measured", True)
    return ("present", measures)  # a new lesion (measured or not), a non-target (the mark says where it is)


def assign_mark(access: TrialAccess, read: Read, mark: ReadMark, lesion: Lesion) -> ReadMark:
    """The mark becomes ``lesion``'s at the mark's time point: labelled with the lesion's name, and for a
    target (a bidirectional) or a new lesion its measurement (status measured / present). A mark the
    lesion had at that time point before is deleted (one mark per lesion and time point). Called inside
    the caller's transaction, the read locked."""
    annotation = mark.annotation
    tp = mark.timepoint
    refusal = mark_refusal(lesion, tp, annotation.kind)
    if refusal:
        raise BadRequest(refusal)
    status, measures = _assessment_for_mark(lesion, tp, annotation)
    problem = unusable(annotation) if measures else None
    if problem:
        raise BadRequest(problem)
    for old in ReadMark.objects.filter(read=read, lesion=lesion, timepoint=tp).exclude(pk=mark.pk).select_related(
            "annotation"):
        if not old.annotation.deleted:
            annotation_services.delete_annotation(access.user, old.annotation)
    ReadMark.objects.filter(pk=mark.pk).update(lesion=lesion)
    if annotation.label != lesion.identifier:
        annotation_services.update_annotation(access.user, annotation, version=annotation.version,
                                              label=lesion.identifier)
    current = Assessment.objects.filter(lesion=lesion, timepoint=tp).first()
    keep = current is not None and lesion.role == LesionRole.NON_TARGET and current.status != "absent"
    if not keep:
        Assessment.objects.update_or_create(lesion=lesion, timepoint=tp, defaults={
            "status": status, "annotation": annotation if measures else None})
    mark.refresh_from_db()
    return mark


def create_mark(access: TrialAccess, read: Read, *, instance: Any, frame: Any = 1, kind: Any, points: Any,
                client_ref: Any = "", lesion: Any = None) -> ReadMark:
    """Draw a mark for the read on an image of one of its studies; with ``lesion``, the mark is that
    lesion's at the image's time point in the same gesture (:func:`assign_mark`)."""
    check_draft_owner(access, read)
    if kind not in MARK_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(MARK_KINDS)}.")
    tp = _timepoint_of_instance(access, read, instance)
    found = None if lesion is None else access_lesion(read, lesion)
    if found is not None:
        refusal = mark_refusal(found, tp, kind)
        if refusal:
            raise BadRequest(refusal)
    with transaction.atomic():
        read = lock_draft(read)
        if ReadMark.objects.filter(read=read, annotation__deleted=False).count() >= MAX_MARKS_PER_READ:
            raise BadRequest(f"A read has at most {MAX_MARKS_PER_READ} marks.")
        annotation = annotation_services.create_annotation(
            access.user, read.trial.project, instance_uid=instance, frame=frame, kind=kind, points=points,
            label=found.identifier if found is not None else "", client_ref=client_ref,
            checked=access.project_access)
        existing = ReadMark.objects.filter(annotation=annotation).first()
        if existing is not None:  # a retried create (the same client_ref): the mark made the first time
            if existing.read_id != read.pk:
                raise Conflict("This client_ref was already used for another read.")
            return existing
        if annotation.session_id is not None:
            raise Conflict("This client_ref was already used in a reading session.")
        mark = ReadMark.objects.create(read=read, annotation=annotation, timepoint=tp)
        if found is not None:
            mark = assign_mark(access, read, ReadMark.objects.select_related("annotation", "timepoint").get(pk=mark.pk),
                               found)
    return mark


def update_mark(access: TrialAccess, read: Read, mark: ReadMark, *, version: Any, points: Any = None,
                label: Any = None) -> ReadMark:
    """Move a mark (its measurement is the assessment's, which follows it) or change its text."""
    check_draft_owner(access, read)
    with transaction.atomic():
        lock_draft(read)
        annotation_services.update_annotation(access.user, mark.annotation, version=version, points=points,
                                              label=label)
    return access_mark(read, mark.annotation_id)


def delete_mark(access: TrialAccess, read: Read, mark: ReadMark) -> None:
    """Delete a mark: an assessment that rested on it waits for a new measurement."""
    check_draft_owner(access, read)
    with transaction.atomic():
        lock_draft(read)
        annotation_services.delete_annotation(access.user, mark.annotation)
