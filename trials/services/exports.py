"""Exports of a trial (organizers): the CSV of every signed read, and a locked read's DICOM SR."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import pydicom

from annotations import sr
from audit.models import Action
from audit.services import record
from crossread import csvsafe
from crossread.errors import Conflict, DomainError, ErrorCode
from trials.models import Assessment, Lesion, Read, ReadStatus
from trials.services.access import TrialAccess, require_organizer
from trials.services.evaluation import read_rows
from trials.services.signing import adjudication_of
from viewer.access import ProjectAccess
from viewer.ingest import ingest_bytes
from viewer.models import Study

SR_SERIES_NUMBER = 7001

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


def _results_by_label(read: Read) -> dict[str, dict[str, Any]]:
    """The signed read's frozen result per time point label."""
    return {tp["label"]: tp for tp in read.result["timepoints"]}  # type: ignore[index]


def export_csv(access: TrialAccess) -> str:
    """One row per signed read × time point × lesion (a row without lesion when there is none)."""
    require_organizer(access)
    record(Action.EXPORT, actor=access.user, project=access.trial.project, object_type="trial",
           object_id=str(access.trial.pk), format="csv")
    out = io.StringIO()
    writer = csvsafe.writer(out, lineterminator="\r\n")  # text cells cannot start a formula
    writer.writerow(CSV_COLUMNS)
    reads = Read.objects.filter(trial=access.trial).exclude(status=ReadStatus.DRAFT).select_related(
        "reader", "subject").order_by("subject__label", "reader__username")
    for read in reads:
        decision = adjudication_of(read.subject)
        rows = read_rows(read)
        results = _results_by_label(read)
        for tp in rows.timepoints:
            result = results[tp.label]
            common = [access.trial.name, read.subject.label, tp.label, rows.day(tp), tp.date.isoformat(),
                      read.reader.get_username(), read.status]
            tail = [result["sum_mm"], result["change_from_baseline_pct"], result["nadir_mm"],
                    result["change_from_nadir_pct"], result["target_response"], result["non_target_response"],
                    rows.new_lesion_present(tp) if tp.order else None, result["overall_response"],
                    read.result["best_overall_response"],  # type: ignore[index]
                    decision is not None, (decision.chosen_read_id == read.pk) if decision else None,
                    decision.adjudicator.get_username() if decision else None,
                    decision.reason if decision else None]
            assessed = rows.assessed(tp)
            for lesion, assessment in assessed:
                writer.writerow([_fmt(v) for v in common + [
                    lesion.identifier, lesion.role, lesion.organ, lesion.nodal, lesion.tracking_uid,
                    assessment.status, assessment.long_axis_mm, assessment.short_axis_mm] + tail])
            if not assessed:
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
    require_organizer(access)
    if read.status != ReadStatus.LOCKED:
        raise Conflict("Only locked reads are exported (signed, and the subject's result final).")
    record(Action.EXPORT, actor=access.user, project=access.trial.project, object_type="read",
           object_id=str(read.pk), format="DICOM SR")
    if read.sr_instances:
        return list(read.sr_instances)
    rows = read_rows(read)
    results = _results_by_label(read)
    stored: list[dict[str, str]] = []
    for tp in rows.timepoints:
        findings = [_finding(lesion, assessment) for lesion, assessment in rows.assessed(tp)]
        if not findings:
            continue
        result = results[tp.label]
        last = tp.order == len(rows.timepoints) - 1
        report_read = sr.ReadForSR(
            reader_name=_person_name(read.reader), reader_login=read.reader.get_username(),
            timepoint_label=tp.label, timepoint_order=tp.order, days_from_baseline=rows.day(tp),
            subject_label=read.subject.label, trial_name=read.trial.name, findings=findings,
            responses=sr.Responses(target=result["target_response"], non_target=result["non_target_response"],
                                   overall=result["overall_response"],
                                   best_overall=read.result["best_overall_response"] if last and tp.order else None),  # type: ignore[index]
        )
        evidence = _evidence(access.project_access, [f.image.sop_instance_uid for f in findings if f.image], tp.study)
        try:
            report = sr.build_measurement_report(
                report_read, evidence=evidence,
                header=sr.ReportHeader(sr.new_uid(), sr.new_uid(), SR_SERIES_NUMBER,
                                       series_description=f"RECIST 1.1 {tp.label} {read.reader.get_username()}"))
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
