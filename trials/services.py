"""The actions layer of trials: access, blinding, reading, signing, adjudication, exports.

Every page, REST view and command goes through these functions; none writes through the ORM
itself. Each write is ``check`` (look up, authorise, validate; raises a :class:`DomainError` and
writes nothing) then the write in one transaction.

Who may do what
---------------
- **Organizers** (project role) set the trial up, see every read, the dashboard and the exports.
- **Readers** see their own reads only, with dates relative to the baseline (never the scan
  dates), in their own random order. They write only their own draft reads.
- **Adjudicators** (listed on the trial; never readers of it) see signed reads and choose one
  read of each subject whose two reads disagree, with a reason. They see no draft.
- Anyone else: "not found". Blinding lives in :func:`visible_reads` and nowhere else.
"""

from __future__ import annotations

import datetime
import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pydicom
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from annotations import recist, sr
from annotations.models import Annotation
from audit.models import Action
from audit.services import record
from crossread import csvsafe
from crossread.errors import BadRequest, Conflict, DomainError, ErrorCode, NotFound
from trials import agreement as agreement_mod
from trials import plots
from trials.models import (
    Adjudication,
    Assessment,
    Lesion,
    LesionRole,
    Read,
    ReadStatus,
    Subject,
    Trial,
    TrialTimepoint,
)
from viewer.access import ProjectAccess, access_project
from viewer.ingest import ingest_bytes
from viewer.models import Membership, Role, Study

User = AbstractBaseUser | AnonymousUser

MAX_REASON_LENGTH = 2000
SR_SERIES_NUMBER = 7001
_PREFIX = {LesionRole.TARGET: "T", LesionRole.NON_TARGET: "NT", LesionRole.NEW: "N"}
_SLICE_THICKNESS = "00180050"


# --------------------------------------------------------------------------------------------
# Access and blinding
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialAccess:
    project_access: ProjectAccess
    trial: Trial
    user: Any

    @property
    def is_organizer(self) -> bool:
        return self.project_access.can(Role.ORGANIZER)

    @property
    def is_adjudicator(self) -> bool:
        return self.trial.adjudicators.filter(pk=self.user.pk).exists()

    @property
    def sees_dates(self) -> bool:
        """Readers see days from baseline only; organizers and adjudicators see scan dates."""
        return self.is_organizer or self.is_adjudicator

    @property
    def sees_results(self) -> bool:
        """Dashboard, agreement and exports: organizers and adjudicators."""
        return self.is_organizer or self.is_adjudicator


def access_trial(user: User, slug: str) -> TrialAccess:
    """The project's trial for any member of the project; "not found" for anyone else."""
    project_access = access_project(user, slug, minimum=Role.VIEWER)
    trial = Trial.objects.filter(project=project_access.project).first()
    if trial is None:
        raise NotFound("This project has no trial.")
    return TrialAccess(project_access, trial, user)


def visible_reads(access: TrialAccess) -> QuerySet[Read]:
    """The one blinding rule: organizers see all reads, adjudicators the signed ones, readers their own."""
    reads = Read.objects.filter(trial=access.trial).select_related("subject", "reader")
    if access.is_organizer:
        return reads
    if access.is_adjudicator:
        return reads.exclude(status=ReadStatus.DRAFT)
    return reads.filter(reader=access.user)


def access_read(access: TrialAccess, read_id: Any) -> Read:
    try:
        key = int(read_id)
    except (TypeError, ValueError):
        raise NotFound("No such read.") from None
    read = visible_reads(access).filter(pk=key).first()
    if read is None:
        raise NotFound("No such read.")
    return read


def access_subject(access: TrialAccess, subject_id: Any) -> Subject:
    """Subjects are reachable by organizers and adjudicators (readers reach them through reads)."""
    if not access.sees_results:
        raise NotFound("No such subject.")
    try:
        key = int(subject_id)
    except (TypeError, ValueError):
        raise NotFound("No such subject.") from None
    subject = Subject.objects.filter(trial=access.trial, pk=key).first()
    if subject is None:
        raise NotFound("No such subject.")
    return subject


def _require_organizer(access: TrialAccess) -> None:
    if not access.is_organizer:
        raise DomainError("This needs the organizer role in the project.", code=ErrorCode.FORBIDDEN)


def _require_results(access: TrialAccess) -> None:
    if not access.sees_results:
        raise DomainError("Only organizers and adjudicators see trial results.", code=ErrorCode.FORBIDDEN)


# --------------------------------------------------------------------------------------------
# Setting a trial up (organizers)
# --------------------------------------------------------------------------------------------


def _is_text(value: Any, longest: int) -> bool:
    """A one-line name typed by a user: 1 to ``longest`` characters, none of them a control or
    format character (no newline, tab, NUL, zero-width or direction override to garble a page or an export)."""
    return isinstance(value, str) and bool(value.strip()) and len(value) <= longest and value.isprintable()


def _users(project_access: ProjectAccess, usernames: Any, what: str, minimum: str) -> list[Any]:
    if not isinstance(usernames, list) or not all(isinstance(u, str) for u in usernames):
        raise BadRequest(f"{what} must be a list of user names.")
    found = []
    for name in usernames:
        membership = Membership.objects.select_related("user").filter(
            project=project_access.project, user__username=name).first()
        if membership is None or not membership.has_role(minimum):
            raise BadRequest(f"{what}: {name} is not a {minimum} of this project.")
        found.append(membership.user)
    return found


def create_trial(user: User, slug: str, *, name: Any, double_read: Any = True,
                 confirmation_required: Any = True, adjudicators: Any = ()) -> Trial:
    project_access = access_project(user, slug, minimum=Role.ORGANIZER)
    if not _is_text(name, 64):
        raise BadRequest("name must be 1-64 printable characters.")
    if not isinstance(double_read, bool) or not isinstance(confirmation_required, bool):
        raise BadRequest("double_read and confirmation_required must be true or false.")
    people = _users(project_access, list(adjudicators), "adjudicators", Role.READER)
    with transaction.atomic():
        if Trial.objects.filter(project=project_access.project).exists():
            raise Conflict("This project already has a trial.")
        trial = Trial.objects.create(project=project_access.project, name=name.strip(),
                                     double_read=double_read, confirmation_required=confirmation_required)
        trial.adjudicators.set(people)
        if double_read:  # blinded readers: neither sees the other's marks, in the viewer too
            project_access.project.private_annotations = True
            project_access.project.save(update_fields=["private_annotations"])
        record(Action.TRIAL_CREATED, actor=user, project=project_access.project, object_type="trial",
               object_id=str(trial.pk), name=trial.name, double_read=double_read,
               confirmation_required=confirmation_required, adjudicators=usernames(people))
    return trial


def _study_date(study: Study) -> datetime.date:
    try:
        return datetime.datetime.strptime(study.study_date, "%Y%m%d").date()
    except ValueError:
        raise BadRequest(f"Study {study.study_instance_uid} has no valid StudyDate.") from None


def _measured_series_facts(access: ProjectAccess, study: Study) -> tuple[str, Decimal | None]:
    """Modality and slice thickness of the study's first CT/MR (else radiograph) image series."""
    for instance in access.instances().filter(series__study=study).select_related("series").order_by(
            "series__series_number", "series__pk", "instance_number"):
        modality = instance.series.modality
        if modality in ("CT", "MR"):
            value = instance.metadata.get(_SLICE_THICKNESS, {}).get("Value")
            return modality, Decimal(str(value[0])) if value else None
        if modality in ("CR", "DX"):
            return modality, None
    raise BadRequest(f"Study {study.study_instance_uid} has no CT, MR, CR or DX images to measure.")


def add_subject(access: TrialAccess, *, label: Any, patient_id: Any) -> Subject:
    """Add a subject with every study of ``patient_id`` as a time point, oldest = baseline."""
    _require_organizer(access)
    if not _is_text(label, 32):
        raise BadRequest("label must be 1-32 printable characters.")
    if not isinstance(patient_id, str) or not patient_id:
        raise BadRequest("patient_id must be the PatientID of the subject's studies.")
    studies = list(access.project_access.studies().filter(patient_id=patient_id))
    if not studies:
        raise BadRequest("No study of this patient in the project.")
    dated = sorted(((_study_date(s), s) for s in studies), key=lambda pair: (pair[0], pair[1].study_time))
    days = [date for date, _ in dated]
    if len(set(days)) != len(days):
        raise BadRequest("Two studies of this patient share a date; time points need distinct dates.")
    facts = [_measured_series_facts(access.project_access, study) for _, study in dated]
    with transaction.atomic():
        if Subject.objects.filter(trial=access.trial, label=label.strip()).exists() or \
                Subject.objects.filter(trial=access.trial, patient_id=patient_id).exists():
            raise Conflict("A subject with this label or patient is already in the trial.")
        subject = Subject.objects.create(trial=access.trial, label=label.strip(), patient_id=patient_id)
        for order, ((date, study), (modality, thickness)) in enumerate(zip(dated, facts, strict=True)):
            TrialTimepoint.objects.create(
                subject=subject, study=study, order=order, date=date, modality=modality,
                slice_thickness_mm=thickness, label="baseline" if order == 0 else f"follow-up {order}")
        # the label only: a PatientID never goes into the audit trail
        record(Action.TRIAL_SUBJECT_ADDED, actor=access.user, project=access.trial.project, object_type="subject",
               object_id=str(subject.pk), label=subject.label, timepoints=len(dated))
    return subject


def assign_readers(access: TrialAccess, *, readers: Any) -> list[Read]:
    """Give every subject one read per reader (two for a double read), in a random order per reader."""
    _require_organizer(access)
    people = _users(access.project_access, readers, "readers", Role.READER)
    expected = 2 if access.trial.double_read else 1
    if len({p.pk for p in people}) != expected:
        raise BadRequest(f"This trial needs exactly {expected} distinct reader(s).")
    adjudicators = set(access.trial.adjudicators.values_list("pk", flat=True))
    if any(p.pk in adjudicators for p in people):
        raise BadRequest("An adjudicator cannot read the subjects they adjudicate.")
    created = []
    with transaction.atomic():
        for subject in access.trial.subjects.all():
            for person in people:
                read, new = Read.objects.get_or_create(
                    trial=access.trial, subject=subject, reader=person,
                    defaults={"order_key": secrets.randbits(62)})
                if new:
                    created.append(read)
        record(Action.TRIAL_READERS_ASSIGNED, actor=access.user, project=access.trial.project, object_type="trial",
               object_id=str(access.trial.pk), readers=usernames(people), reads=[r.pk for r in created])
    return created


# --------------------------------------------------------------------------------------------
# Reading (the reader of a draft read)
# --------------------------------------------------------------------------------------------


def _check_draft_owner(access: TrialAccess, read: Read) -> None:
    if read.reader_id != access.user.pk:
        raise DomainError("Only the reader of this read can change it.", code=ErrorCode.FORBIDDEN)
    if read.is_signed:
        raise Conflict("The read is signed and can no longer change.")


def _lock_draft(read: Read) -> Read:
    """Re-read the row under a lock so that a concurrent signing cannot interleave with a write."""
    locked = Read.objects.select_for_update().get(pk=read.pk)
    if locked.is_signed:
        raise Conflict("The read is signed and can no longer change.")
    return locked


def add_lesion(access: TrialAccess, read: Read, *, role: Any, organ: Any, nodal: Any = False) -> Lesion:
    _check_draft_owner(access, read)
    try:
        role = LesionRole(role)
    except ValueError:
        raise BadRequest("role must be one of target, non_target, new.") from None
    organ = _check_organ(organ)
    if not isinstance(nodal, bool):
        raise BadRequest("nodal must be true or false.")
    with transaction.atomic():
        read = _lock_draft(read)
        count = Lesion.objects.filter(read=read, role=role).count()
        identifier = f"{_PREFIX[role]}{count + 1}"
        while Lesion.objects.filter(read=read, identifier=identifier).exists():
            count += 1
            identifier = f"{_PREFIX[role]}{count + 1}"
        return Lesion.objects.create(read=read, role=role, identifier=identifier, organ=organ,
                                     nodal=nodal, tracking_uid=sr.new_uid())


def _check_organ(organ: Any) -> str:
    organ = " ".join(organ.split()) if isinstance(organ, str) else organ
    if not _is_text(organ, 64):
        raise BadRequest("organ must be 1-64 printable characters.")
    return organ


def access_lesion(read: Read, lesion_id: Any) -> Lesion:
    try:
        key = int(lesion_id)
    except (TypeError, ValueError):
        raise NotFound("No such lesion.") from None
    lesion = Lesion.objects.filter(read=read, pk=key).first()
    if lesion is None:
        raise NotFound("No such lesion.")
    return lesion


def update_lesion(access: TrialAccess, lesion: Lesion, *, organ: Any = None, nodal: Any = None) -> Lesion:
    _check_draft_owner(access, lesion.read)
    changes: dict[str, Any] = {}
    if organ is not None:
        changes["organ"] = _check_organ(organ)
    if nodal is not None:
        if not isinstance(nodal, bool):
            raise BadRequest("nodal must be true or false.")
        changes["nodal"] = nodal
    with transaction.atomic():
        _lock_draft(lesion.read)
        Lesion.objects.filter(pk=lesion.pk).update(**changes)
    return Lesion.objects.get(pk=lesion.pk)


def delete_lesion(access: TrialAccess, lesion: Lesion) -> None:
    _check_draft_owner(access, lesion.read)
    with transaction.atomic():
        _lock_draft(lesion.read)
        lesion.delete()


def access_timepoint(read: Read, timepoint_id: Any) -> TrialTimepoint:
    try:
        key = int(timepoint_id)
    except (TypeError, ValueError):
        raise BadRequest("timepoint must be the id of one of the subject's time points.") from None
    timepoint = TrialTimepoint.objects.filter(subject=read.subject, pk=key).select_related("study").first()
    if timepoint is None:
        raise BadRequest("timepoint must be the id of one of the subject's time points.")
    return timepoint


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
    _check_draft_owner(access, read)
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
        _lock_draft(read)
        if chosen is not None and Assessment.objects.filter(
                lesion__read=read, annotation=chosen).exclude(lesion=found, timepoint=tp).exists():
            raise BadRequest("This measurement is already assigned to another lesion or time point.")
        assessment, _ = Assessment.objects.update_or_create(
            lesion=found, timepoint=tp, defaults={"status": status, "annotation": chosen})
    return assessment


# --------------------------------------------------------------------------------------------
# The RECIST table of a read
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axes:
    long_mm: Decimal
    short_mm: Decimal
    points: list[list[float]]
    sop_instance_uid: str
    sop_class_uid: str
    frame: int
    study_uid: str
    series_uid: str
    columns: int
    rows: int


def _axes(access: TrialAccess, assessment: Assessment) -> Axes | None:
    """The measurement of an assessment: frozen values once signed, the annotation's before."""
    if assessment.long_axis_mm is not None:
        series_uid, columns, rows = access.project_access.instances().filter(
            sop_instance_uid=assessment.sop_instance_uid
        ).values_list("series__series_instance_uid", "columns", "rows").first() or ("", 0, 0)
        return Axes(assessment.long_axis_mm, assessment.short_axis_mm or Decimal(0), assessment.points or [],
                    assessment.sop_instance_uid, assessment.sop_class_uid, assessment.frame or 1,
                    assessment.timepoint.study.study_instance_uid, series_uid, columns or 0, rows or 0)
    annotation = assessment.annotation
    if annotation is None or annotation.deleted:
        return None
    values = annotation.measurements or {}
    if values.get("long_axis") is None:
        return None
    instance = annotation.instance
    return Axes(Decimal(str(values["long_axis"])), Decimal(str(values.get("short_axis") or 0)),
                annotation.points, instance.sop_instance_uid, instance.sop_class_uid, annotation.frame,
                instance.series.study.study_instance_uid, instance.series.series_instance_uid,
                instance.columns or 0, instance.rows or 0)


def _read_rows(read: Read) -> tuple[list[TrialTimepoint], list[Lesion], dict[tuple[int, int], Assessment]]:
    timepoints = list(read.subject.timepoints.select_related("study").order_by("order"))
    rank = {LesionRole.TARGET: 0, LesionRole.NON_TARGET: 1, LesionRole.NEW: 2}
    lesions = sorted(read.lesions.order_by("pk"), key=lambda lesion: rank[LesionRole(lesion.role)])
    assessments = {
        (a.lesion_id, a.timepoint_id): a
        for a in Assessment.objects.filter(lesion__read=read).select_related(
            "annotation__instance__series__study", "timepoint__study")
    }
    return timepoints, lesions, assessments


def _non_target_response(statuses: list[str | None]) -> recist.NonTarget:
    if "progressed" in statuses:
        return recist.NonTarget.PD
    if any(s in (None, "not_evaluable") for s in statuses):
        return recist.NonTarget.NE
    if all(s == "absent" for s in statuses):
        return recist.NonTarget.CR
    return recist.NonTarget.NON_CR_NON_PD


def recist_timepoints(access: TrialAccess, read: Read) -> tuple[list[recist.Timepoint], list[str]]:
    """The read as :class:`recist.Timepoint` values, and what is still missing (one line each).

    A target without a usable measurement counts as ``not_evaluable`` so the table can show the
    rest; signing refuses while anything is missing.
    """
    timepoints, lesions, assessments = _read_rows(read)
    missing: list[str] = []
    result = []
    for tp in timepoints:
        targets = []
        for lesion in (x for x in lesions if x.role == LesionRole.TARGET):
            assessment = assessments.get((lesion.pk, tp.pk))
            status = assessment.status if assessment else None
            diameter = None
            if status == "measured":
                axes = _axes(access, assessment)  # type: ignore[arg-type]
                if axes is None:
                    missing.append(f"{tp.label}: {lesion.identifier} has no usable measurement")
                    status = None
                else:
                    diameter = axes.short_mm if lesion.nodal else axes.long_mm
            elif status is None:
                missing.append(f"{tp.label}: {lesion.identifier} is not assessed")
            targets.append(recist.Lesion(
                lesion_id=lesion.identifier, organ=lesion.organ, nodal=lesion.nodal,
                status=recist.LesionStatus(status or "not_evaluable"), diameter_mm=diameter))
        non_targets = [x for x in lesions if x.role == LesionRole.NON_TARGET]
        statuses = [getattr(assessments.get((x.pk, tp.pk)), "status", None) for x in non_targets]
        for lesion, status in zip(non_targets, statuses, strict=True):
            if status is None:
                missing.append(f"{tp.label}: {lesion.identifier} is not assessed")
        if tp.order == 0:
            non_target = recist.NonTarget.PRESENT if non_targets else recist.NonTarget.ABSENT
        else:
            non_target = _non_target_response(statuses) if non_targets else None
        new = any(getattr(assessments.get((x.pk, tp.pk)), "status", None) == "present"
                  for x in lesions if x.role == LesionRole.NEW)
        result.append(recist.Timepoint(
            label=tp.label, date=tp.date, modality=recist.Modality(tp.modality),
            slice_thickness_mm=tp.slice_thickness_mm, targets=targets, non_target=non_target,
            new_lesions=new and tp.order > 0))
    if not any(x.role in (LesionRole.TARGET, LesionRole.NON_TARGET) for x in lesions):
        missing.append("baseline: no target or non-target lesion yet")
    return result, missing


def _settings(trial: Trial) -> recist.TrialSettings:
    return recist.TrialSettings(confirmation_required=trial.confirmation_required)


def recist_table(access: TrialAccess, read: Read) -> dict[str, Any]:
    """``{"evaluation": evaluation_to_json | None, "errors": [...], "missing": [...]}``."""
    if read.is_signed and read.result is not None:
        return {"evaluation": read.result, "errors": [], "missing": []}
    timepoints, missing = recist_timepoints(access, read)
    try:
        evaluation = recist.evaluation_to_json(recist.evaluate(timepoints, _settings(read.trial)))
        errors: list[str] = []
    except recist.RecistInputError as exc:
        evaluation, errors = None, list(exc.reasons)
    return {"evaluation": evaluation, "errors": errors, "missing": missing}


def serialize_read(access: TrialAccess, read: Read) -> dict[str, Any]:
    """The read as its reader (or an organizer/adjudicator) sees it; dates only for the latter."""
    timepoints, lesions, assessments = _read_rows(read)
    baseline = timepoints[0].date if timepoints else None
    table = recist_table(access, read)
    data: dict[str, Any] = {
        "id": read.pk,
        "subject": read.subject.label,
        "subject_id": read.subject_id if access.sees_results else None,
        "reader": read.reader.get_username(),
        "status": read.status,
        "signed_at": read.signed_at.isoformat() if read.signed_at else None,
        "editable": read.reader_id == access.user.pk and not read.is_signed,
        "timepoints": [
            {"id": tp.pk, "label": tp.label, "order": tp.order, "day": (tp.date - baseline).days if baseline else 0,
             "study": tp.study.study_instance_uid, "modality": tp.modality,
             **({"date": tp.date.isoformat()} if access.sees_dates else {})}
            for tp in timepoints
        ],
        "lesions": [],
        "recist": table,
    }
    for lesion in lesions:
        cells = []
        for tp in timepoints:
            assessment = assessments.get((lesion.pk, tp.pk))
            axes = _axes(access, assessment) if assessment else None
            cells.append(None if assessment is None else {
                "timepoint": tp.pk,
                "status": assessment.status,
                "annotation": assessment.annotation_id,
                "long_axis_mm": float(axes.long_mm) if axes else None,
                "short_axis_mm": float(axes.short_mm) if axes else None,
                "points": axes.points if axes else None,
                "instance": axes.sop_instance_uid if axes else None,
                "series": axes.series_uid if axes else None,
                "frame": axes.frame if axes else None,
                "columns": axes.columns if axes else None,
                "rows": axes.rows if axes else None,
            })
        data["lesions"].append({
            "id": lesion.pk, "identifier": lesion.identifier, "role": lesion.role, "organ": lesion.organ,
            "nodal": lesion.nodal, "tracking_uid": lesion.tracking_uid, "assessments": cells,
        })
    if data["editable"]:
        data["measurements"] = _own_measurements(read, timepoints)
    return data


def _own_measurements(read: Read, timepoints: Sequence[TrialTimepoint]) -> list[dict[str, Any]]:
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


# --------------------------------------------------------------------------------------------
# Signing, settling, adjudication
# --------------------------------------------------------------------------------------------


def sign_read(access: TrialAccess, read: Read) -> Read:
    """Sign: refused (400, every reason) unless complete and valid; then nothing can change."""
    _check_draft_owner(access, read)
    with transaction.atomic():
        read = _lock_draft(read)
        timepoints, missing = recist_timepoints(access, read)
        reasons = list(missing)
        evaluation = None
        if not missing:
            try:
                evaluation = recist.evaluate(timepoints, _settings(read.trial))
            except recist.RecistInputError as exc:
                reasons += list(exc.reasons)
        if evaluation is not None:
            reasons += [f"baseline: {p.lesion_id}: {p.detail}" for p in evaluation.baseline_problems]
        if reasons:
            raise BadRequest("The read cannot be signed yet.", errors=reasons)
        assert evaluation is not None
        for assessment in Assessment.objects.filter(lesion__read=read).select_related(
                "annotation__instance__series__study", "timepoint__study"):
            axes = _axes(access, assessment)
            if axes is not None:
                Assessment.objects.filter(pk=assessment.pk).update(
                    long_axis_mm=axes.long_mm, short_axis_mm=axes.short_mm, points=axes.points,
                    sop_instance_uid=axes.sop_instance_uid, sop_class_uid=axes.sop_class_uid, frame=axes.frame)
        read.status = ReadStatus.SIGNED
        read.signed_at = timezone.now()
        read.result = recist.evaluation_to_json(evaluation)
        read.save(update_fields=["status", "signed_at", "result"])
        _settle(read.subject)
        record(Action.TRIAL_READ_SIGNED, actor=access.user, project=access.trial.project, object_type="read",
               object_id=str(read.pk), subject=read.subject.label,
               best_overall_response=read.result["best_overall_response"],
               locked=Read.objects.filter(pk=read.pk, status=ReadStatus.LOCKED).exists())
    read.refresh_from_db()
    return read


def overall_responses(read: Read) -> dict[str, str | None]:
    """Overall response per follow-up label of a signed read."""
    return {tp["label"]: tp["overall_response"] for tp in (read.result or {}).get("timepoints", [])[1:]}


def disagreements(reads: Sequence[Read]) -> list[str]:
    """Time point labels where two signed reads' overall responses differ (best overall included)."""
    if len(reads) != 2 or any(r.result is None for r in reads):
        return []
    first, second = (overall_responses(r) for r in reads)
    labels = [label for label in first if first.get(label) != second.get(label)]
    if reads[0].result["best_overall_response"] != reads[1].result["best_overall_response"]:  # type: ignore[index]
        labels.append("best overall response")
    return labels


def subject_reads(subject: Subject) -> list[Read]:
    return list(subject.reads.select_related("reader").order_by("reader_id"))


def _settle(subject: Subject) -> None:
    """Lock the subject's reads once its result is final: single read, agreement, or adjudication."""
    reads = subject_reads(subject)
    if any(not r.is_signed for r in reads):
        return
    final = (not subject.trial.double_read or not disagreements(reads)
             or Adjudication.objects.filter(subject=subject).exists())
    if final:
        Read.objects.filter(pk__in=[r.pk for r in reads]).update(status=ReadStatus.LOCKED)


def subject_state(subject: Subject) -> str:
    """``reading``, ``agreed``, ``needs_adjudication``, ``adjudicated`` (or ``done`` for a single read)."""
    reads = subject_reads(subject)
    if not reads or any(not r.is_signed for r in reads):
        return "reading"
    if not subject.trial.double_read:
        return "done"
    if Adjudication.objects.filter(subject=subject).exists():
        return "adjudicated"
    return "needs_adjudication" if disagreements(reads) else "agreed"


def adjudicate(access: TrialAccess, subject: Subject, *, read: Any, reason: Any) -> Adjudication:
    if not access.is_adjudicator:
        raise DomainError("Only the trial's adjudicators adjudicate.", code=ErrorCode.FORBIDDEN)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise BadRequest(f"reason must be 1-{MAX_REASON_LENGTH} characters.")
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        reads = subject_reads(subject)
        state = subject_state(subject)
        if state == "adjudicated":
            raise Conflict("This subject is already adjudicated.")
        if state != "needs_adjudication":
            raise Conflict("Only subjects whose two signed reads disagree are adjudicated.")
        chosen = next((r for r in reads if isinstance(read, int) and not isinstance(read, bool) and r.pk == read), None)
        if chosen is None:
            raise BadRequest("read must be one of the subject's two reads.")
        adjudication = Adjudication.objects.create(subject=subject, chosen_read=chosen, reason=reason.strip(),
                                                   adjudicator=access.user)
        _settle(subject)
        record(Action.TRIAL_ADJUDICATED, actor=access.user, project=access.trial.project, object_type="subject",
               object_id=str(subject.pk), label=subject.label, chosen_read=chosen.pk,
               reads=[r.pk for r in reads], reason=reason.strip()[:500])
    return adjudication


def final_read(subject: Subject) -> Read | None:
    """The read that stands for the subject: the adjudicated choice, else the agreeing first read."""
    state = subject_state(subject)
    if state == "adjudicated":
        return subject.adjudication.chosen_read
    if state in ("agreed", "done"):
        return subject_reads(subject)[0]
    return None


def adjudication_view(access: TrialAccess, subject: Subject) -> dict[str, Any]:
    """Both signed reads of a subject side by side, where they differ, and the decision if any."""
    _require_results(access)
    reads = [r for r in subject_reads(subject) if r.is_signed]
    decision = Adjudication.objects.filter(subject=subject).select_related("adjudicator").first()
    return {
        "subject": {"id": subject.pk, "label": subject.label},
        "state": subject_state(subject),
        "disagreements": disagreements(reads),
        "reads": [serialize_read(access, r) for r in reads],
        "adjudication": None if decision is None else {
            "read": decision.chosen_read_id, "reason": decision.reason,
            "adjudicator": decision.adjudicator.get_username(), "created_at": decision.created_at.isoformat()},
        "can_adjudicate": access.is_adjudicator and subject_state(subject) == "needs_adjudication",
    }


# --------------------------------------------------------------------------------------------
# Worklist and dashboard
# --------------------------------------------------------------------------------------------


def worklist(access: TrialAccess) -> list[dict[str, Any]]:
    """Readers: their reads in their random order. Organizers/adjudicators: every visible read."""
    reads = visible_reads(access)
    if access.sees_results:
        reads = reads.order_by("subject__label", "reader__username")
    return [{"id": r.pk, "subject": r.subject.label, "reader": r.reader.get_username(), "status": r.status,
             **({"subject_id": r.subject_id, "state": subject_state(r.subject)} if access.sees_results else {})}
            for r in reads]


def dashboard(access: TrialAccess) -> dict[str, Any]:
    _require_results(access)
    trial = access.trial
    reads = list(Read.objects.filter(trial=trial).select_related("reader", "subject"))
    progress: dict[str, dict[str, int]] = {}
    for read in reads:
        row = progress.setdefault(read.reader.get_username(), {"assigned": 0, "signed": 0})
        row["assigned"] += 1
        row["signed"] += read.is_signed
    subjects = list(trial.subjects.prefetch_related("timepoints").order_by("label"))
    pairs: list[tuple[str, str]] = []
    states: dict[str, int] = {}
    bars, lines, rows = [], [], []
    for subject in subjects:
        state = subject_state(subject)
        states[state] = states.get(state, 0) + 1
        both = subject_reads(subject)
        if trial.double_read and len(both) == 2 and all(r.result for r in both):
            first, second = (overall_responses(r) for r in both)
            pairs += [(first[label] or "", second.get(label) or "") for label in first]
        final = final_read(subject)
        rows.append({"id": subject.pk, "label": subject.label, "state": state,
                     "final_read": final.pk if final else None,
                     "best_overall_response": (final.result or {}).get("best_overall_response") if final else None})
        if final is None or not final.result:
            continue
        results = final.result["timepoints"]
        changes = [tp["change_from_baseline_pct"] for tp in results[1:] if tp["change_from_baseline_pct"] is not None]
        response = final.result["best_overall_response"]
        if changes:
            bars.append(plots.WaterfallBar(subject.label, min(changes), response))
        days = {tp.label: (tp.date - subject.timepoints.all()[0].date).days for tp in subject.timepoints.all()}
        points = [(days[tp["label"]], tp["change_from_baseline_pct"]) for tp in results
                  if tp["change_from_baseline_pct"] is not None]
        if points:
            lines.append(plots.SpiderLine(subject.label, points, response))
    agreed = agreement_mod.agreement(pairs)
    return {
        "trial": {"name": trial.name, "double_read": trial.double_read,
                  "confirmation_required": trial.confirmation_required},
        "progress": progress,
        "subjects": rows,
        "states": states,
        "agreement": {"pairs": agreed.pairs, "agreeing": agreed.agreeing, "percent": agreed.percent,
                      "kappa": agreed.kappa},
        "waterfall_svg": plots.waterfall_svg(bars),
        "spider_svg": plots.spider_svg(lines),
    }


# --------------------------------------------------------------------------------------------
# Exports: CSV and DICOM SR
# --------------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "trial", "subject", "timepoint", "day", "date", "reader", "read_status", "lesion", "role", "organ",
    "nodal", "tracking_uid", "status", "long_axis_mm", "short_axis_mm", "sum_mm", "change_from_baseline_pct",
    "nadir_mm", "change_from_nadir_pct", "target_response", "non_target_response", "new_lesions",
    "overall_response", "best_overall_response", "adjudicated", "chosen", "adjudicator", "adjudication_reason",
]


def _fmt(value: Any) -> Any:
    """A cell: yes/no for booleans, empty for None; numbers stay numbers, so that the CSV writer
    (:mod:`crossread.csvsafe`) neutralises formulas in text cells only and ``-27.7`` stays a number."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def export_csv(access: TrialAccess) -> str:
    """One row per signed read × time point × lesion (a row without lesion when there is none)."""
    _require_organizer(access)
    record(Action.EXPORT, actor=access.user, project=access.trial.project, object_type="trial",
           object_id=str(access.trial.pk), format="csv")
    out = io.StringIO()
    writer = csvsafe.writer(out, lineterminator="\r\n")  # text cells cannot start a formula
    writer.writerow(CSV_COLUMNS)
    reads = Read.objects.filter(trial=access.trial).exclude(status=ReadStatus.DRAFT).select_related(
        "reader", "subject").order_by("subject__label", "reader__username")
    for read in reads:
        decision = Adjudication.objects.filter(subject=read.subject).select_related("adjudicator").first()
        timepoints, lesions, assessments = _read_rows(read)
        results = {tp["label"]: tp for tp in read.result["timepoints"]}  # type: ignore[index]
        baseline = timepoints[0].date
        new_by_tp = {tp.pk: any(getattr(assessments.get((x.pk, tp.pk)), "status", None) == "present"
                                for x in lesions if x.role == LesionRole.NEW) for tp in timepoints}
        for tp in timepoints:
            result = results[tp.label]
            common = [access.trial.name, read.subject.label, tp.label, (tp.date - baseline).days, tp.date.isoformat(),
                      read.reader.get_username(), read.status]
            tail = [result["sum_mm"], result["change_from_baseline_pct"], result["nadir_mm"],
                    result["change_from_nadir_pct"], result["target_response"], result["non_target_response"],
                    new_by_tp[tp.pk] if tp.order else None, result["overall_response"],
                    read.result["best_overall_response"],  # type: ignore[index]
                    decision is not None, (decision.chosen_read_id == read.pk) if decision else None,
                    decision.adjudicator.get_username() if decision else None,
                    decision.reason if decision else None]
            rows_written = False
            for lesion in lesions:
                assessment = assessments.get((lesion.pk, tp.pk))
                if assessment is None:
                    continue
                writer.writerow([_fmt(v) for v in common + [
                    lesion.identifier, lesion.role, lesion.organ, lesion.nodal, lesion.tracking_uid,
                    assessment.status, assessment.long_axis_mm, assessment.short_axis_mm] + tail])
                rows_written = True
            if not rows_written:
                writer.writerow([_fmt(v) for v in common + [None] * 8 + tail])
    return out.getvalue()


def _evidence(access: ProjectAccess, sop_uids: Iterable[str], study: Study) -> list[pydicom.Dataset]:
    """Headers of the referenced images (from the index's DICOM JSON; no pixels needed)."""
    instances = list(access.instances().filter(sop_instance_uid__in=set(sop_uids)))
    if not instances:  # nothing measured at this time point: the study's first image stands as evidence
        first = access.instances().filter(series__study=study, rows__isnull=False).order_by("instance_number").first()
        instances = [first] if first else []
    headers = []
    for instance in instances:
        ds = pydicom.Dataset.from_json(instance.metadata, bulk_data_uri_handler=lambda *args: b"")
        for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            if keyword in ds:
                del ds[keyword]
        headers.append(ds)
    return headers


def export_sr(access: TrialAccess, read: Read) -> list[dict[str, str]]:
    """Store one TID 1500 SR per time point of a locked read into the archive, each its own series.

    Exporting again returns the instances stored the first time.
    """
    _require_organizer(access)
    if read.status != ReadStatus.LOCKED:
        raise Conflict("Only locked reads are exported (signed, and the subject's result final).")
    record(Action.EXPORT, actor=access.user, project=access.trial.project, object_type="read",
           object_id=str(read.pk), format="DICOM SR")
    if read.sr_instances:
        return list(read.sr_instances)
    timepoints, lesions, assessments = _read_rows(read)
    results = {tp["label"]: tp for tp in read.result["timepoints"]}  # type: ignore[index]
    baseline = timepoints[0].date
    stored: list[dict[str, str]] = []
    for tp in timepoints:
        findings = []
        for lesion in lesions:
            assessment = assessments.get((lesion.pk, tp.pk))
            if assessment is None:
                continue
            findings.append(_finding(lesion, assessment))
        if not findings:
            continue
        result = results[tp.label]
        last = tp.order == len(timepoints) - 1
        report_read = sr.ReadForSR(
            reader_name=_person_name(read.reader), reader_login=read.reader.get_username(),
            timepoint_label=tp.label, timepoint_order=tp.order, days_from_baseline=(tp.date - baseline).days,
            subject_label=read.subject.label, trial_name=read.trial.name, findings=findings,
            responses=sr.Responses(target=result["target_response"], non_target=result["non_target_response"],
                                   overall=result["overall_response"],
                                   best_overall=read.result["best_overall_response"] if last and tp.order else None),  # type: ignore[index]
        )
        evidence = _evidence(access.project_access, [f.image.sop_instance_uid for f in findings if f.image], tp.study)
        try:
            report = sr.build_measurement_report(
                report_read, evidence=evidence, series_instance_uid=sr.new_uid(), sop_instance_uid=sr.new_uid(),
                series_number=SR_SERIES_NUMBER, series_description=f"RECIST 1.1 {tp.label} {read.reader.get_username()}")
        except (sr.SRInputError, ValueError) as exc:
            raise DomainError(f"The SR of {tp.label} cannot be built: {exc}", code=ErrorCode.UNPROCESSABLE) from None
        buffer = io.BytesIO()
        report.save_as(buffer, enforce_file_format=True)
        outcome = ingest_bytes(
            read.trial.project, buffer.getvalue(), name=f"recist-read-{read.pk}-{tp.order}.dcm", derived=True
        )
        if not outcome.ok:
            raise DomainError(f"The archive refused the SR of {tp.label}: {outcome.reason}", code=ErrorCode.UNPROCESSABLE)
        stored.append({"timepoint": tp.label, "study": outcome.study_instance_uid,
                       "series": outcome.series_instance_uid, "sop": outcome.sop_instance_uid,
                       "sop_class": outcome.sop_class_uid})
    Read.objects.filter(pk=read.pk).update(sr_instances=stored)
    return stored


def _person_name(user: Any) -> str:
    """DICOM PN of a user: Family^Given when known, else the login as a family name ("login^")."""
    last, first = getattr(user, "last_name", ""), getattr(user, "first_name", "")
    return f"{last}^{first}"[:64] if last else f"{user.get_username()}^"[:64]


def _finding(lesion: Lesion, assessment: Assessment) -> sr.LesionFinding:
    axes, image = None, None
    if assessment.long_axis_mm is not None and assessment.points:
        p = assessment.points
        long_axis = sr.Axis(assessment.long_axis_mm, ((p[0][0], p[0][1]), (p[1][0], p[1][1])))
        short_axis = sr.Axis(assessment.short_axis_mm, ((p[2][0], p[2][1]), (p[3][0], p[3][1]))) \
            if assessment.short_axis_mm else None
        axes = (long_axis, short_axis)
        image = sr.ImageReference(assessment.sop_class_uid, assessment.sop_instance_uid,
                                  assessment.frame if (assessment.frame or 1) > 1 else None)
    return sr.LesionFinding(
        identifier=lesion.identifier, tracking_uid=lesion.tracking_uid, role=sr.LesionRole(lesion.role),
        organ=lesion.organ, nodal=lesion.nodal, status=assessment.status,
        long_axis=axes[0] if axes else None, short_axis=axes[1] if axes else None, image=image)


def usernames(users: Iterable[Any]) -> list[str]:
    return [u.get_username() for u in users]


__all__ = [
    "TrialAccess", "access_lesion", "access_read", "access_subject", "access_trial", "add_lesion", "add_subject",
    "adjudicate", "adjudication_view", "assign_readers", "create_trial", "dashboard", "delete_lesion",
    "disagreements", "export_csv", "export_sr", "final_read", "recist_table", "recist_timepoints",
    "serialize_read", "set_assessment", "sign_read", "subject_state", "update_lesion", "visible_reads", "worklist",
]
