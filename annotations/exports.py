"""Exports of a study's marks from the viewer: the measurement table as CSV, and as DICOM SR TID 1500.

The marks are those the viewer lists for the member (:func:`annotations.services.visible_annotations`:
the project's own annotations, private ones only to their author and organizers, none on an image in
quarantine), so an export never shows more than the viewer does. The CSV holds no patient data (UIDs,
numbers, labels, authors); it goes through :mod:`crossread.csvsafe`. The SR is built by the same
writer as the trials' reports (:func:`annotations.sr.build_marks_report`); its patient and study come
from the images' headers as this member may read them (:meth:`ProjectAccess.masked`), and a study read
blinded is not stored back into the archive. Every export is audited (``export``, with its format).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pydicom
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from annotations import sr
from annotations.models import Annotation
from annotations.services import visible_annotations
from audit.models import Action
from audit.services import record
from crossread import csvsafe
from crossread.errors import DomainError, ErrorCode
from viewer.access import ProjectAccess
from viewer.ingest import ingest_bytes
from viewer.models import Instance, Role

User = AbstractBaseUser | AnonymousUser

#: Series Number of a viewer's measurement report (the trials' RECIST reports are 7001).
MARKS_SR_SERIES_NUMBER = 7002
#: At most this many marks in one export (a study's marks; far more than a reading has).
MAX_EXPORT_MARKS = 5000

CSV_COLUMNS = [
    "id", "study", "series", "series_number", "instance", "instance_number", "frame", "image", "images", "plane",
    "kind", "label", "value", "unit", "long_axis", "short_axis", "area", "mean", "std", "min", "max", "calibration",
    "author", "created_at", "updated_at",
]


@dataclass(frozen=True)
class Mark:
    """One mark with where it is in its series as the viewer shows it (``image`` of ``images``: the
    frame's place among the series' frames in InstanceNumber order, the viewer's ``Im n/N``)."""

    annotation: Annotation
    image: int
    images: int


def study_marks(access: ProjectAccess, study_uid: Any) -> list[Mark]:
    """The study's marks this member sees, by series number, image and id."""
    if not isinstance(study_uid, str) or not study_uid:
        raise DomainError("study must be a Study Instance UID.", code=ErrorCode.BAD_REQUEST)
    study = access.study(study_uid)  # "not found" for a study this member may not reach
    annotations = list(visible_annotations(access, study_uid=study.study_instance_uid)[:MAX_EXPORT_MARKS + 1])
    if len(annotations) > MAX_EXPORT_MARKS:
        raise DomainError(f"More than {MAX_EXPORT_MARKS} marks: too many for one export.", code=ErrorCode.TOO_LARGE)
    places: dict[int, dict[int, int]] = {}  # series id -> instance id -> frames before it
    totals: dict[int, int] = {}
    for series_id in {a.instance.series_id for a in annotations}:
        before = 0
        places[series_id] = {}
        for pk, frames in access.instances().filter(series_id=series_id, rows__isnull=False).order_by(
                "instance_number", "pk").values_list("pk", "number_of_frames"):
            places[series_id][pk] = before
            before += frames or 1
        totals[series_id] = before
    marks = [Mark(a, places[a.instance.series_id].get(a.instance_id, 0) + a.frame, totals[a.instance.series_id])
             for a in annotations]
    marks.sort(key=lambda m: (m.annotation.instance.series.series_number or 0, m.annotation.instance.series_id,
                              m.image, m.annotation.pk))
    return marks


def _main_value(measurements: dict[str, Any]) -> tuple[Any, str]:
    """The one number a table shows for a mark, and its unit."""
    unit = measurements.get("unit") or ""
    for key in ("length", "long_axis", "area", "angle", "value"):
        value = measurements.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if key == "area":
                return value, f"{unit}²" if unit else ""
            if key == "angle":
                return value, "°"
            return value, unit if key != "value" else ""
    return "", ""


def _cell(value: Any) -> Any:
    return "" if value is None else value


def marks_csv(access: ProjectAccess, study_uid: Any) -> str:
    """The measurement table of the study's marks (one row a mark), audited."""
    marks = study_marks(access, study_uid)
    record(Action.EXPORT, actor=access.membership.user, project=access.project, object_type="study",
           object_id=str(study_uid), format="csv", marks=len(marks))
    out = io.StringIO()
    writer = csvsafe.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for mark in marks:
        a = mark.annotation
        m = a.measurements or {}
        stats = m.get("stats") if isinstance(m.get("stats"), dict) else {}
        value, unit = _main_value(m)
        plane = f"{a.plane.get('plane')} {int(a.plane.get('index', 0)) + 1}" if a.plane else ""
        writer.writerow([_cell(v) for v in (
            a.pk, a.instance.series.study.study_instance_uid, a.instance.series.series_instance_uid,
            a.instance.series.series_number, a.instance.sop_instance_uid, a.instance.instance_number, a.frame,
            "" if a.plane else mark.image, "" if a.plane else mark.images, plane, a.kind, a.label, value, unit,
            m.get("long_axis"), m.get("short_axis"), m.get("area"), stats.get("mean"), stats.get("std"),
            stats.get("min"), stats.get("max"), m.get("calibration"), a.author.get_username(),
            a.created_at.isoformat(timespec="seconds"), a.updated_at.isoformat(timespec="seconds"))])
    return out.getvalue()


def _headers(access: ProjectAccess, instances: Iterable[Instance]) -> list[pydicom.Dataset]:
    """The images' headers as this member may read them (masked for a blinded reader), no pixels."""
    headers = []
    for instance in instances:
        metadata = access.masked(instance.metadata, instance.series.study_id)
        ds = pydicom.Dataset.from_json(metadata, bulk_data_uri_handler=lambda *args: b"")
        for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            if keyword in ds:
                del ds[keyword]
        headers.append(ds)
    return headers


def _person_name(user: Any) -> str:
    last, first = getattr(user, "last_name", ""), getattr(user, "first_name", "")
    return f"{last}^{first}"[:64] if last else f"{user.get_username()}^"[:64]


@dataclass(frozen=True)
class MarksReport:
    data: bytes  # the Part 10 file
    marks: int  # marks in it
    skipped: int  # marks on reformatted planes (no source image to reference)
    sop_instance_uid: str
    series_instance_uid: str


def marks_sr(access: ProjectAccess, study_uid: Any) -> MarksReport:
    """The study's marks as one TID 1500 Comprehensive 3D SR (Part 10 bytes), audited.

    Marks on reformatted planes (MPR) are left out (their points are in a plane no image is), and
    counted in ``skipped``."""
    marks = study_marks(access, study_uid)
    on_images = [m for m in marks if not m.annotation.plane]
    if not on_images:
        raise DomainError("No marks on the images of this study to report.", code=ErrorCode.CONFLICT)
    user = access.membership.user
    modality_units = {"CT": "HU"}
    names: dict[str, int] = {}
    sr_marks = []
    for mark in on_images:
        a = mark.annotation
        name = a.label.strip() or f"{a.get_kind_display()} {a.pk}"
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name} ({names[name]})"
        frames = a.instance.number_of_frames or 1
        sr_marks.append(sr.MarkForSR(
            identifier=name[:64], tracking_uid=sr.tracking_uid_of(f"annotation/{a.project_id}/{a.pk}"), kind=a.kind,
            points=tuple((float(x), float(y)) for x, y in a.points), measurements=dict(a.measurements or {}),
            image=sr.ImageReference(a.instance.sop_class_uid, a.instance.sop_instance_uid, a.frame if frames > 1 else None),
            value_unit=modality_units.get(a.instance.series.modality or "", "")))
    evidence = _headers(access, {m.annotation.instance_id: m.annotation.instance for m in on_images}.values())
    series_uid, sop_uid = sr.new_uid(), sr.new_uid()
    try:
        report = sr.build_marks_report(
            sr_marks, observer_name=_person_name(user), observer_login=user.get_username(), evidence=evidence,
            header=sr.ReportHeader(series_uid, sop_uid, MARKS_SR_SERIES_NUMBER,
                                   series_description=f"Measurements {user.get_username()}"))
    except (sr.SRInputError, ValueError) as exc:
        raise DomainError(f"The SR cannot be built: {exc}", code=ErrorCode.UNPROCESSABLE) from None
    buffer = io.BytesIO()
    report.save_as(buffer, enforce_file_format=True)
    record(Action.EXPORT, actor=user, project=access.project, object_type="study", object_id=str(study_uid),
           format="DICOM SR", marks=len(sr_marks), sop=sop_uid)
    return MarksReport(buffer.getvalue(), len(sr_marks), len(marks) - len(on_images), sop_uid, series_uid)


def store_marks_sr(access: ProjectAccess, study_uid: Any) -> dict[str, Any]:
    """Store the study's marks as a DICOM SR in the archive, in the study, as its own series (readers
    and organizers; not a study this member reads blinded: its report would carry the mask)."""
    if not access.can(Role.READER):
        raise DomainError(f"This needs the {Role.READER} role in the project.", code=ErrorCode.FORBIDDEN)
    study = access.study(study_uid) if isinstance(study_uid, str) and study_uid else None
    if study is not None and not access.serves_files(study.pk):
        raise DomainError("This study is read blinded: its report is downloaded, not stored.", code=ErrorCode.FORBIDDEN)
    report = marks_sr(access, study_uid)
    outcome = ingest_bytes(access.project, report.data, name=f"measurements-{report.sop_instance_uid}.dcm", derived=True)
    if not outcome.ok:
        raise DomainError(f"The archive refused the SR: {outcome.reason}", code=ErrorCode.UNPROCESSABLE)
    return {"study": outcome.study_instance_uid, "series": outcome.series_instance_uid,
            "sop": outcome.sop_instance_uid, "marks": report.marks, "skipped": report.skipped}


__all__ = ["CSV_COLUMNS", "MARKS_SR_SERIES_NUMBER", "MAX_EXPORT_MARKS", "Mark", "MarksReport", "marks_csv", "marks_sr",
           "store_marks_sr", "study_marks"]
