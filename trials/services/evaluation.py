"""The RECIST table of a read: its rows, the measured axes, the RECIST 1.1 evaluation, the read as seen."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from django.db.models import QuerySet

from annotations import recist
from trials import rules
from trials.models import Assessment, Lesion, LesionRole, Read, ReadMark, Trial, TrialTimepoint
from trials.services.access import TrialAccess
from trials.services.reading import lesion_kinds, own_measurements


@dataclass(frozen=True)
class Axes:
    """A measurement: a bidirectional's long and short axis, or a length's long axis alone (no short axis)."""

    long_mm: Decimal
    short_mm: Decimal | None
    points: list[list[float]]
    sop_instance_uid: str
    sop_class_uid: str
    frame: int
    study_uid: str
    series_uid: str
    columns: int
    rows: int


def assessment_axes(access: TrialAccess, assessment: Assessment) -> Axes | None:
    """The measurement of an assessment: frozen values once signed, the annotation's before."""
    if assessment.long_axis_mm is not None:
        series_uid, columns, rows = access.project_access.instances().filter(
            sop_instance_uid=assessment.sop_instance_uid
        ).values_list("series__series_instance_uid", "columns", "rows").first() or ("", 0, 0)
        return Axes(assessment.long_axis_mm, assessment.short_axis_mm, assessment.points or [],
                    assessment.sop_instance_uid, assessment.sop_class_uid, assessment.frame or 1,
                    assessment.timepoint.study.study_instance_uid, series_uid, columns or 0, rows or 0)
    annotation = assessment.annotation
    if annotation is None or annotation.deleted:
        return None
    values = annotation.measurements or {}
    long_axis = values.get("long_axis", values.get("length"))  # a length (targets_by_length) is the long axis
    if long_axis is None:
        return None
    short_axis = values.get("short_axis")
    instance = annotation.instance
    return Axes(Decimal(str(long_axis)), None if short_axis is None else Decimal(str(short_axis)),
                annotation.points, instance.sop_instance_uid, instance.sop_class_uid, annotation.frame,
                instance.series.study.study_instance_uid, instance.series.series_instance_uid,
                instance.columns or 0, instance.rows or 0)


class ReadRows(NamedTuple):
    """A read's time points (baseline first), lesions (targets, non-targets, new) and assessments."""

    timepoints: list[TrialTimepoint]
    lesions: list[Lesion]
    assessments: dict[tuple[int, int], Assessment]

    def at(self, lesion: Lesion, tp: TrialTimepoint) -> Assessment | None:
        return self.assessments.get((lesion.pk, tp.pk))

    def status(self, lesion: Lesion, tp: TrialTimepoint) -> str | None:
        return getattr(self.at(lesion, tp), "status", None)

    def assessed(self, tp: TrialTimepoint) -> list[tuple[Lesion, Assessment]]:
        """The lesions assessed at ``tp``, in table order, each with its assessment."""
        return [(lesion, found) for lesion in self.lesions if (found := self.at(lesion, tp)) is not None]

    def new_lesion_present(self, tp: TrialTimepoint) -> bool:
        return any(self.status(x, tp) == "present" for x in self.lesions if x.role == LesionRole.NEW)

    def day(self, tp: TrialTimepoint) -> int:
        """Days from the baseline."""
        return (tp.date - self.timepoints[0].date).days


def read_assessments(read: Read) -> QuerySet[Assessment]:
    """The read's assessments with what their measurements are read from."""
    return Assessment.objects.filter(lesion__read=read).select_related(
        "annotation__instance__series__study", "timepoint__study")


def read_rows(read: Read) -> ReadRows:
    timepoints = list(read.subject.timepoints.select_related("study").order_by("order"))
    rank = {LesionRole.TARGET: 0, LesionRole.NON_TARGET: 1, LesionRole.NEW: 2}
    lesions = sorted(read.lesions.order_by("pk"), key=lambda lesion: rank[LesionRole(lesion.role)])
    assessments = {(a.lesion_id, a.timepoint_id): a for a in read_assessments(read)}
    return ReadRows(timepoints, lesions, assessments)


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
    rows = read_rows(read)
    missing: list[str] = []
    result = []
    for tp in rows.timepoints:
        targets = []
        for lesion in (x for x in rows.lesions if x.role == LesionRole.TARGET):
            assessment = rows.at(lesion, tp)
            status = assessment.status if assessment else None
            diameter = None
            if status == "measured":
                axes = assessment_axes(access, assessment)  # type: ignore[arg-type]
                if axes is None and assessment.annotation_id is None:  # type: ignore[union-attr]
                    tool = " or the length" if rules.LENGTH in lesion_kinds(lesion) else ""
                    missing.append(f"{tp.label}: {lesion.identifier} waits for its measurement (draw the bidirectional{tool})")
                    status = None
                elif axes is None:
                    missing.append(f"{tp.label}: {lesion.identifier} has no usable measurement")
                    status = None
                elif lesion.nodal and axes.short_mm is None:  # a length, and the lesion made a node since
                    missing.append(f"{tp.label}: {lesion.identifier} is a lymph node: its short axis is measured "
                                   "with the bidirectional")
                    status = None
                else:
                    diameter = axes.short_mm if lesion.nodal else axes.long_mm
            elif status is None:
                missing.append(f"{tp.label}: {lesion.identifier} is not assessed")
            targets.append(recist.Lesion(
                lesion_id=lesion.identifier, organ=lesion.organ, nodal=lesion.nodal,
                status=recist.LesionStatus(status or "not_evaluable"), diameter_mm=diameter))
        non_targets = [x for x in rows.lesions if x.role == LesionRole.NON_TARGET]
        statuses = [rows.status(x, tp) for x in non_targets]
        for lesion, status in zip(non_targets, statuses, strict=True):
            if status is None:
                missing.append(f"{tp.label}: {lesion.identifier} is not assessed")
        if tp.order == 0:
            non_target = recist.NonTarget.PRESENT if non_targets else recist.NonTarget.ABSENT
        else:
            non_target = _non_target_response(statuses) if non_targets else None
        result.append(recist.Timepoint(
            label=tp.label, date=tp.date, modality=recist.Modality(tp.modality),
            slice_thickness_mm=tp.slice_thickness_mm, targets=targets, non_target=non_target,
            new_lesions=rows.new_lesion_present(tp) and tp.order > 0))
    if not any(x.role in (LesionRole.TARGET, LesionRole.NON_TARGET) for x in rows.lesions):
        missing.append("baseline: no target or non-target lesion yet")
    return result, missing


def trial_settings(trial: Trial) -> recist.TrialSettings:
    return recist.TrialSettings(confirmation_required=trial.confirmation_required)


def recist_table(access: TrialAccess, read: Read) -> dict[str, Any]:
    """``{"evaluation": evaluation_to_json | None, "errors": [...], "missing": [...]}``."""
    if read.is_signed and read.result is not None:
        return {"evaluation": read.result, "errors": [], "missing": []}
    timepoints, missing = recist_timepoints(access, read)
    if not any(tp.targets or tp.non_target is recist.NonTarget.PRESENT for tp in timepoints[:1]):
        # no lesion yet: what is missing says so ("no target or non-target lesion yet"), not an error
        return {"evaluation": None, "errors": [], "missing": missing}
    try:
        evaluation = recist.evaluation_to_json(recist.evaluate(timepoints, trial_settings(read.trial)))
        errors: list[str] = []
    except recist.RecistInputError as exc:
        evaluation, errors = None, list(exc.reasons)
    return {"evaluation": evaluation, "errors": errors, "missing": missing}


def serialize_read(access: TrialAccess, read: Read) -> dict[str, Any]:
    """The read as its reader (or an organizer/adjudicator) sees it; dates only for the latter."""
    rows = read_rows(read)
    table = recist_table(access, read)
    data: dict[str, Any] = {
        "id": read.pk,
        "subject": read.subject.label,
        "subject_id": read.subject_id if access.sees_results else None,
        "reader": read.reader.get_username(),
        "status": read.status,
        "signed_at": read.signed_at.isoformat() if read.signed_at else None,
        "targets_by_length": read.trial.targets_by_length,
        "editable": rules.decide_write(access.role, own=read.reader_id == access.user.pk, status=read.status) is None,
        "timepoints": [
            {"id": tp.pk, "label": tp.label, "order": tp.order, "day": rows.day(tp),
             "study": tp.study.study_instance_uid, "modality": tp.modality,
             **({"date": tp.date.isoformat()} if access.sees_dates else {})}
            for tp in rows.timepoints
        ],
        "lesions": [],
        "recist": table,
    }
    for lesion in rows.lesions:
        cells = []
        for tp in rows.timepoints:
            assessment = rows.at(lesion, tp)
            axes = assessment_axes(access, assessment) if assessment else None
            cells.append(None if assessment is None else {
                "timepoint": tp.pk,
                "status": assessment.status,
                "annotation": assessment.annotation_id,
                "long_axis_mm": float(axes.long_mm) if axes else None,
                "short_axis_mm": float(axes.short_mm) if axes and axes.short_mm is not None else None,
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
            # the kinds of mark that measure it (trials.rules.measuring_kinds): the panel offers their tools
            "measured_by": list(lesion_kinds(lesion)),
        })
    # which lesion and time point each of the read's marks is (the marks themselves: GET .../marks/)
    data["marks"] = [{"annotation": a, "lesion": lesion, "timepoint": tp} for a, lesion, tp in ReadMark.objects.filter(
        read=read, annotation__deleted=False).order_by("pk").values_list("annotation_id", "lesion_id", "timepoint_id")]
    if data["editable"]:
        data["measurements"] = own_measurements(read, rows.timepoints)
    return data
