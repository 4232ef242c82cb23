"""DICOM SR measurement reports of RECIST 1.1 reads (TID 1500), built with highdicom.

Plain Python: no Django import. The trial app turns a locked read into :class:`ReadForSR` values
and calls :func:`build_measurement_report` once per time point; this module knows DICOM, not the
database. Strict when writing: every input is validated in the constructors of the value classes
below (and again by highdicom's own constructors), so an invalid report is never produced.

Content (PS3.16 TID 1500 "Measurement Report", one document per time point of a read)
------------------------------------------------------------------------------------
- Observation context: the reader as person observer (TID 1002), the subject from the images.
- Procedure reported: "Imaging procedure" (CID 100 allows any; we use SCT 363679005).
- One TID 1501 "Measurement Group" per lesion:

  - Tracking Identifier (``"T1"``, ``"NT1"``, ``"N1"``) and Tracking Unique Identifier: one UID per
    lesion, the **same at every time point**, so a later report links to the baseline one.
  - Time Point Context (TID 1502): the time point label (``"baseline"``, ``"follow-up 1"``), its
    type (DCM Baseline / Posttreatment), its order (0 = baseline), the subject time point
    identifier and the offset from the baseline scan in days (DCM 128740).
  - Finding type SCT "Lesion"; finding site a SNOMED CT code for the named organ (see
    :data:`ORGAN_CODES`), otherwise a local code (scheme ``99CRSSRD``) whose meaning is the organ
    as the reader typed it; lymph nodes are always SCT "Lymph node".
  - Method DCM "RECIST 1.1"; qualitative evaluations: Baseline Category (DCM 112016: target /
    non-target / non-lesion at baseline for a new lesion) and the lesion status at this time point
    (local code, ``99CRSSRD``).
  - Measurements (TID 300): SCT "Long axis" and SCT "Short axis" in UCUM ``mm``, each INFERRED
    FROM its SCOORD POLYLINE (the two end points of the axis, image pixel coordinates,
    ``(0, 0)`` = top-left corner of the top-left pixel as in PS3.3 C.18.6.1.1) SELECTED FROM the
    image it was drawn on.

- A "Qualitative Evaluations" container (TID 1500) with the time point's RECIST responses as
  text (target, non-target, overall, and the best overall response so far).
"""

from __future__ import annotations

import datetime
import enum
import math
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.uid import UID

#: Local coding scheme of Crossread (PS3.16 8.1: a "99" prefix marks a private scheme).
LOCAL_SCHEME: Final = "99CRSSRD"
LOCAL_SCHEME_NAME: Final = "Crossread local codes"

_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_IDENTIFIER = re.compile(r"[A-Za-z0-9_\-]{1,16}")

#: Organs named by readers → SNOMED CT body structures (lower-case, spaces collapsed).
ORGAN_CODES: Final[dict[str, pydicom.sr.coding.Code]] = {
    "liver": codes.SCT.Liver,
    "lung": codes.SCT.Lung,
    "lungs": codes.SCT.Lung,
    "right lung": codes.SCT.Lung,
    "left lung": codes.SCT.Lung,
    "lymph node": codes.SCT.LymphNode,
    "lymph nodes": codes.SCT.LymphNode,
    "spleen": codes.SCT.Spleen,
    "kidney": codes.SCT.Kidney,
    "adrenal gland": codes.SCT.AdrenalGland,
    "adrenal": codes.SCT.AdrenalGland,
    "bone": codes.SCT.Bone,
    "brain": codes.SCT.Brain,
    "pleura": codes.SCT.Pleura,
    "pancreas": codes.SCT.Pancreas,
    "skin": codes.SCT.Skin,
    "mediastinum": codes.SCT.Mediastinum,
    "soft tissue": codes.SCT.SoftTissue,
    "ovary": codes.SCT.Ovary,
    "colon": codes.SCT.Colon,
    "stomach": codes.SCT.Stomach,
    "breast": codes.SCT.Breast,
    "prostate": codes.SCT.Prostate,
    "bladder": codes.SCT.Bladder,
    "thyroid": codes.SCT.Thyroid,
    "muscle": codes.SCT.Muscle,
    "chest wall": codes.SCT.ChestWall,
    "esophagus": codes.SCT.Esophagus,
    "small intestine": codes.SCT.SmallIntestine,
    "uterus": codes.SCT.Uterus,
    "retroperitoneum": codes.SCT.Retroperitoneum,
    "gallbladder": codes.SCT.Gallbladder,
    "rectum": codes.SCT.Rectum,
}

_IMAGING_PROCEDURE: Final = hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure")
_QUALITATIVE_EVALUATIONS: Final = hd.sr.CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
_LESION_STATUS: Final = hd.sr.CodedConcept("LESION-STATUS", LOCAL_SCHEME, "Lesion status")
_RESPONSE_NAMES: Final = {
    "target": "Target response",
    "non_target": "Non-target response",
    "overall": "Overall response",
}


class LesionRole(enum.StrEnum):
    """Why the lesion is followed: RECIST target, non-target, or new at a follow-up."""

    TARGET = "target"
    NON_TARGET = "non_target"
    NEW = "new"


#: Statuses a lesion of each role may have at a time point.
ROLE_STATUSES: Final[dict[LesionRole, frozenset[str]]] = {
    LesionRole.TARGET: frozenset({"measured", "too_small", "disappeared", "not_evaluable"}),
    LesionRole.NON_TARGET: frozenset({"present", "absent", "progressed", "not_evaluable"}),
    LesionRole.NEW: frozenset({"present", "absent", "not_evaluable"}),
}

_STATUS_MEANINGS: Final = {
    "measured": "Measured",
    "too_small": "Too small to measure",
    "disappeared": "Disappeared",
    "not_evaluable": "Not evaluable",
    "present": "Present",
    "absent": "Absent",
    "progressed": "Unequivocal progression",
}

_BASELINE_CATEGORY: Final = {
    LesionRole.TARGET: codes.DCM.TargetLesionAtBaseline,
    LesionRole.NON_TARGET: codes.DCM.NonTargetLesionAtBaseline,
    LesionRole.NEW: codes.DCM.NonLesionAtBaseline,
}


class SRInputError(ValueError):
    """A read that cannot become a valid report; ``reasons`` lists every problem found."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons: tuple[str, ...] = tuple(reasons)
        super().__init__("; ".join(self.reasons))


def _check(problems: list[str]) -> None:
    if problems:
        raise SRInputError(problems)


def is_uid(value: str) -> bool:
    """A syntactically valid DICOM UID (PS3.5 9.1): digits and dots, no leading zeros, ≤ 64."""
    return isinstance(value, str) and 0 < len(value) <= 64 and _UID.fullmatch(value) is not None


@dataclass(frozen=True)
class ImageReference:
    """The image an axis was drawn on. ``frame`` is 1-based, ``None`` for single-frame images."""

    sop_class_uid: str
    sop_instance_uid: str
    frame: int | None = None

    def __post_init__(self) -> None:
        problems = [f"{name} is not a valid UID" for name in ("sop_class_uid", "sop_instance_uid")
                    if not is_uid(getattr(self, name))]
        if self.frame is not None and (isinstance(self.frame, bool) or self.frame < 1):
            problems.append("frame must be >= 1")
        _check(problems)


@dataclass(frozen=True)
class Axis:
    """One caliper: its length in mm (a multiple of 0.1) and its two end points ``(x, y)``."""

    length_mm: Decimal
    points: tuple[tuple[float, float], tuple[float, float]]

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.length_mm, Decimal) or not self.length_mm.is_finite() \
                or self.length_mm <= 0:
            problems.append("length_mm must be a positive finite Decimal")
        if len(self.points) != 2 or any(len(p) != 2 for p in self.points):
            problems.append("points must be two (x, y) pairs")
        elif not all(math.isfinite(float(v)) and float(v) >= 0 for p in self.points for v in p):
            problems.append("points must be finite, non-negative image coordinates")
        elif tuple(self.points[0]) == tuple(self.points[1]):
            problems.append("the two end points must differ")
        _check(problems)


@dataclass(frozen=True)
class LesionFinding:
    """One lesion at one time point.

    ``long_axis``/``short_axis`` and ``image`` are required for a ``measured`` target (both axes
    for a node, whose RECIST diameter is the short axis) and allowed for a present new lesion.
    """

    identifier: str
    tracking_uid: str
    role: LesionRole
    organ: str
    nodal: bool
    status: str
    long_axis: Axis | None = None
    short_axis: Axis | None = None
    image: ImageReference | None = None

    def __post_init__(self) -> None:
        where = f"lesion {self.identifier!r}"
        problems: list[str] = []
        if not isinstance(self.identifier, str) or not _IDENTIFIER.fullmatch(self.identifier):
            problems.append(f"{where}: identifier must be 1-16 letters, digits, '_' or '-'")
        if not is_uid(self.tracking_uid):
            problems.append(f"{where}: tracking_uid is not a valid UID")
        if not isinstance(self.organ, str) or not self.organ.strip() or len(self.organ) > 64:
            problems.append(f"{where}: organ must be 1-64 characters")
        role = LesionRole(self.role)
        if self.status not in ROLE_STATUSES[role]:
            allowed = ", ".join(sorted(ROLE_STATUSES[role]))
            problems.append(f"{where}: status {self.status!r} is not one of {allowed} for a {role}")
        has_axes = self.long_axis is not None or self.short_axis is not None
        if has_axes and self.image is None:
            problems.append(f"{where}: axes need the image they were drawn on")
        if self.short_axis is not None and self.long_axis is None:
            problems.append(f"{where}: a short axis needs its long axis")
        if (self.long_axis is not None and self.short_axis is not None
                and self.short_axis.length_mm > self.long_axis.length_mm):
            problems.append(f"{where}: the short axis is longer than the long axis")
        if role is LesionRole.TARGET and self.status == "measured":
            if self.long_axis is None:
                problems.append(f"{where}: a measured target needs its long axis")
            if self.nodal and self.short_axis is None:
                problems.append(f"{where}: a measured nodal target needs its short axis")
        elif has_axes and not (role is LesionRole.NEW and self.status == "present"):
            problems.append(f"{where}: only measured targets and present new lesions have axes")
        _check(problems)


@dataclass(frozen=True)
class Responses:
    """RECIST 1.1 responses at the time point (``None`` where not applicable, e.g. baseline)."""

    target: str | None = None
    non_target: str | None = None
    overall: str | None = None
    best_overall: str | None = None


@dataclass(frozen=True)
class ReadForSR:
    """One time point of one read: everything a TID 1500 report needs besides the image headers.

    Parameters
    ----------
    reader_name
        Person name of the observer (DICOM PN, e.g. ``"Reader^One"`` or a login).
    timepoint_label
        ``"baseline"``, ``"follow-up 1"``... (Time Point, TID 1502).
    timepoint_order
        0 for the baseline, then 1, 2, ...
    days_from_baseline
        Offset of this time point's scan from the baseline scan.
    subject_label
        The trial's pseudonymous subject label (Subject Time Point Identifier prefix).
    trial_name
        Written as the protocol time point identifier together with the label.
    findings
        Every lesion of the read at this time point.
    responses
        The time point's RECIST responses.
    """

    reader_name: str
    timepoint_label: str
    timepoint_order: int
    days_from_baseline: int
    subject_label: str
    trial_name: str
    findings: Sequence[LesionFinding]
    responses: Responses = field(default_factory=Responses)
    reader_login: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "findings", tuple(self.findings))
        problems: list[str] = []
        for name in ("reader_name", "timepoint_label", "subject_label", "trial_name"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or len(value) > 64:
                problems.append(f"{name} must be 1-64 characters")
        if isinstance(self.timepoint_order, bool) or self.timepoint_order < 0:
            problems.append("timepoint_order must be >= 0")
        if self.timepoint_order == 0 and self.days_from_baseline != 0:
            problems.append("the baseline is day 0")
        if self.timepoint_order > 0 and self.days_from_baseline <= 0:
            problems.append("a follow-up comes after the baseline (days_from_baseline > 0)")
        if not self.findings:
            problems.append("a report needs at least one lesion")
        for label, count in Counter(f.identifier for f in self.findings).items():
            if count > 1:
                problems.append(f"lesion {label!r} is listed {count} times")
        for uid, count in Counter(f.tracking_uid for f in self.findings).items():
            if count > 1:
                problems.append(f"tracking UID {uid} is used by {count} lesions")
        if self.timepoint_order == 0 and any(f.role is LesionRole.NEW for f in self.findings):
            problems.append("there are no new lesions at baseline")
        _check(problems)


def finding_site(organ: str, nodal: bool) -> hd.sr.FindingSite:
    """SNOMED CT for known organs (all nodes: "Lymph node"), else a local code naming the organ."""
    if nodal:
        return hd.sr.FindingSite(codes.SCT.LymphNode)
    key = " ".join(organ.split()).casefold()
    code = ORGAN_CODES.get(key)
    if code is not None:
        return hd.sr.FindingSite(code)
    value = "ORGAN-" + re.sub(r"[^A-Z0-9]+", "-", key.upper()).strip("-")[:10]
    return hd.sr.FindingSite(hd.sr.CodedConcept(value, LOCAL_SCHEME, " ".join(organ.split())[:64]))


def _status_code(status: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(status.upper().replace("_", "-"), LOCAL_SCHEME,
                              _STATUS_MEANINGS[status])


def _time_point_context(read: ReadForSR) -> hd.sr.TimePointContext:
    return hd.sr.TimePointContext(
        time_point=read.timepoint_label,
        time_point_type=codes.DCM.Baseline if read.timepoint_order == 0 else codes.DCM.Posttreatment,
        time_point_order=read.timepoint_order,
        subject_time_point_identifier=f"{read.subject_label} {read.timepoint_label}"[:64],
        protocol_time_point_identifier=read.timepoint_label,
        temporal_offset_from_event=hd.sr.LongitudinalTemporalOffsetFromEvent(
            value=float(read.days_from_baseline), unit=codes.UCUM.Day, event_type=codes.DCM.Baseline),
    )


def _axis_measurement(name: pydicom.sr.coding.Code, axis: Axis,
                      image: ImageReference) -> hd.sr.Measurement:
    frames = [image.frame] if image.frame is not None else None
    region = hd.sr.CoordinatesForMeasurement(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.asarray(axis.points, dtype=np.float64),
        source_image=hd.sr.SourceImageForRegion(image.sop_class_uid, image.sop_instance_uid,
                                                referenced_frame_numbers=frames),
    )
    return hd.sr.Measurement(name=name, value=float(axis.length_mm), unit=codes.UCUM.Millimeter,
                             referenced_coordinates=[region])


def _group(read: ReadForSR, finding: LesionFinding) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    measurements = []
    if finding.image is not None and finding.long_axis is not None:
        measurements.append(_axis_measurement(codes.SCT.LongAxis, finding.long_axis, finding.image))
        if finding.short_axis is not None:
            measurements.append(_axis_measurement(codes.SCT.ShortAxis, finding.short_axis,
                                                  finding.image))
    source_images = None
    if finding.image is not None:
        frames = [finding.image.frame] if finding.image.frame is not None else None
        source_images = [hd.sr.SourceImageForMeasurementGroup(
            finding.image.sop_class_uid, finding.image.sop_instance_uid,
            referenced_frame_numbers=frames)]
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=finding.tracking_uid,
                                                     identifier=finding.identifier),
        time_point_context=_time_point_context(read),
        finding_type=codes.SCT.Lesion,
        method=codes.DCM.RECIST1Point1,
        finding_sites=[finding_site(finding.organ, finding.nodal)],
        measurements=measurements or None,
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(codes.DCM.BaselineCategory, _BASELINE_CATEGORY[finding.role]),
            hd.sr.QualitativeEvaluation(_LESION_STATUS, _status_code(finding.status)),
        ],
        source_images=source_images,
    )


def _responses_container(responses: Responses) -> hd.sr.ContainerContentItem | None:
    items = []
    for key, meaning in _RESPONSE_NAMES.items():
        value = getattr(responses, key)
        if value is not None:
            items.append(hd.sr.TextContentItem(
                name=codes.DCM.CurrentResponse, value=f"{meaning} (RECIST 1.1): {value}",
                relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    if responses.best_overall is not None:
        items.append(hd.sr.TextContentItem(
            name=codes.DCM.BestOverallResponse, value=responses.best_overall,
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    if not items:
        return None
    container = hd.sr.ContainerContentItem(
        name=_QUALITATIVE_EVALUATIONS, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    container.ContentSequence = items
    return container


@dataclass(frozen=True)
class ReportHeader:
    """The new document itself, for either builder (:func:`build_measurement_report`,
    :func:`build_marks_report`).

    ``series_instance_uid``, ``sop_instance_uid``: its UIDs (its own series; checked with the
    evidence, every problem reported together); ``series_number``, ``instance_number`` as written;
    ``manufacturer`` of the device writing it; ``content_datetime`` its Content Date/Time, now when
    omitted; ``series_description`` (cut to 64 characters), the builder's own when omitted.
    """

    series_instance_uid: str
    sop_instance_uid: str
    series_number: int
    instance_number: int = 1
    manufacturer: str = "Crossread"
    content_datetime: datetime.datetime | None = None
    series_description: str | None = None


def build_measurement_report(read: ReadForSR, *, evidence: Sequence[pydicom.Dataset],
                             header: ReportHeader) -> hd.sr.Comprehensive3DSR:
    """Build a Comprehensive 3D SR (TID 1500) for one time point of a read.

    Parameters
    ----------
    read
        The time point's lesions and responses.
    evidence
        Headers (no pixel data needed) of every image a finding references; they give the
        patient and study of the report, and go to the Current Requested Procedure Evidence.
        All must be of one study.
    header
        The new report's UIDs, numbers, manufacturer, time and series description ("RECIST 1.1
        measurements" when omitted).

    Raises
    ------
    SRInputError
        If a referenced image is missing from ``evidence``, the evidence spans several studies,
        or a UID is invalid (and highdicom raises ``ValueError`` for anything it refuses).
    """
    _check_evidence(evidence, [(f"lesion {f.identifier}", f.image) for f in read.findings if f.image is not None],
                    header)
    report = _measurement_report(_observer(read.reader_name, read.reader_login),
                                 [_group(read, finding) for finding in read.findings])
    container = _responses_container(read.responses)
    if container is not None:
        report[0].ContentSequence.append(container)
    return _document(report, evidence, header, "RECIST 1.1 measurements")


def _observer(name: str, login: str | None) -> hd.sr.ObservationContext:
    """A person observer (the reader, or who exports)."""
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=name, login_name=login),
    )
    return hd.sr.ObservationContext(observer_person_context=observer)


def _measurement_report(observer: hd.sr.ObservationContext,
                        groups: Sequence[hd.sr.MeasurementsAndQualitativeEvaluations]) -> hd.sr.MeasurementReport:
    """TID 1500: the ``observer`` (:func:`_observer`), the imaging procedure reported, ``groups``."""
    return hd.sr.MeasurementReport(
        observation_context=observer, procedure_reported=_IMAGING_PROCEDURE, imaging_measurements=groups)


def _check_evidence(evidence: Sequence[pydicom.Dataset], images: Sequence[tuple[str, ImageReference]],
                    header: ReportHeader) -> None:
    """The report's UIDs, and every referenced image (``(what, image)``) in the one study's evidence."""
    problems: list[str] = []
    for name, uid in (("series_instance_uid", header.series_instance_uid),
                      ("sop_instance_uid", header.sop_instance_uid)):
        if not is_uid(uid):
            problems.append(f"{name} is not a valid UID")
    if not evidence:
        problems.append("evidence must hold the header of at least one image of the study")
    studies = {str(ds.StudyInstanceUID) for ds in evidence}
    if len(studies) > 1:
        problems.append("the evidence spans several studies; a report covers one study")
    known = {str(ds.SOPInstanceUID): str(ds.SOPClassUID) for ds in evidence}
    for what, image in images:
        uid = image.sop_instance_uid
        if uid not in known:
            problems.append(f"{what}: image {uid} is not in the evidence")
        elif known[uid] != image.sop_class_uid:
            problems.append(f"{what}: SOP Class differs from the evidence")
    _check(problems)


#: Type 2 attributes of the Patient and General Study modules the document copies from its evidence.
_TYPE2_FROM_EVIDENCE: Final = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                               "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")


def _with_type2(ds: pydicom.Dataset) -> pydicom.Dataset:
    """``ds``, or a copy with the Type 2 attributes the report copies present (empty) when the header
    lacks them (tolerant when reading: a header may omit them, or a blinded reader's leaves them out)."""
    missing = [keyword for keyword in _TYPE2_FROM_EVIDENCE if keyword not in ds]
    if not missing:
        return ds
    copy = pydicom.Dataset(ds)
    for keyword in missing:
        setattr(copy, keyword, "")
    return copy


def _document(report: hd.sr.MeasurementReport, evidence: Sequence[pydicom.Dataset], header: ReportHeader,
              series_description: str) -> hd.sr.Comprehensive3DSR:
    """The Comprehensive 3D SR document of a TID 1500 ``report`` (shared by the RECIST reads' reports and
    the viewer's marks), with Crossread's local coding scheme declared; ``series_description`` when the
    header has none."""
    now = header.content_datetime or datetime.datetime.now()
    if header.series_description is not None:
        series_description = header.series_description
    sr = hd.sr.Comprehensive3DSR(
        evidence=[_with_type2(ds) for ds in evidence],
        content=report[0],
        series_instance_uid=header.series_instance_uid,
        series_number=header.series_number,
        sop_instance_uid=header.sop_instance_uid,
        instance_number=header.instance_number,
        manufacturer=header.manufacturer,
        is_complete=True,
        is_final=True,
        series_description=series_description[:64],
        content_date=now.date(),
        content_time=now.time(),
    )
    scheme = pydicom.Dataset()
    scheme.CodingSchemeDesignator = LOCAL_SCHEME
    scheme.CodingSchemeName = LOCAL_SCHEME_NAME
    scheme.CodingSchemeResponsibleOrganization = "Crossread"
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


# ---------------------------------------------------------------------------- the viewer's marks

#: Kinds of marks with measurements in a report; any other kind (an arrow, a point without value, a
#: kind this module does not know) is a measurement group with its label, image and no values.
_LENGTH_NAMES: Final = {"length": codes.SCT.Length, "long_axis": codes.SCT.LongAxis, "short_axis": codes.SCT.ShortAxis}
_STAT_NAMES: Final = {"mean": codes.SCT.Mean, "std": codes.SCT.StandardDeviation, "min": codes.SCT.Minimum,
                      "max": codes.SCT.Maximum}
_PIXELS: Final = hd.sr.CodedConcept("{pixels}", "UCUM", "pixels")
_SQUARE_PIXELS: Final = hd.sr.CodedConcept("{pixels}2", "UCUM", "square pixels")
_NO_UNITS: Final = hd.sr.CodedConcept("1", "UCUM", "no units")
_DEGREES: Final = hd.sr.CodedConcept("deg", "UCUM", "degree")
_MARK_KINDS: Final = frozenset({"length", "bidirectional", "ellipse", "freehand", "point", "arrow"})


@dataclass(frozen=True)
class MarkForSR:
    """One mark of the viewer (an annotation on one frame of one image) for a TID 1500 report.

    ``identifier``: its label, or a made-up name ("Length 12"), 1-64 characters; ``tracking_uid``
    stays the same for the same mark; ``points`` image pixel coordinates as stored;
    ``measurements`` what :func:`annotations.geometry.measure` gave; ``value_unit`` the unit of the
    image's values (``"HU"`` for CT, else ``""``: no units).
    """

    identifier: str
    tracking_uid: str
    kind: str
    points: tuple[tuple[float, float], ...]
    measurements: dict[str, object]
    image: ImageReference
    value_unit: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", tuple((float(x), float(y)) for x, y in self.points))
        problems = []
        if not isinstance(self.identifier, str) or not 0 < len(self.identifier.strip()) <= 64:
            problems.append("identifier must be 1-64 characters")
        if not is_uid(self.tracking_uid):
            problems.append(f"mark {self.identifier!r}: tracking_uid is not a valid UID")
        if not self.points or not all(math.isfinite(v) and v >= 0 for p in self.points for v in p):
            problems.append(f"mark {self.identifier!r}: points must be finite, non-negative image coordinates")
        needed = {"length": 2, "bidirectional": 4, "ellipse": 2, "arrow": 2, "point": 1}.get(self.kind)
        if needed is not None and len(self.points) != needed:
            problems.append(f"mark {self.identifier!r}: a {self.kind} has {needed} points")
        if self.kind == "freehand" and len(self.points) < 3:
            problems.append(f"mark {self.identifier!r}: a freehand outline has at least 3 points")
        _check(problems)


def _number(measurements: dict[str, object], key: str) -> float | None:
    value = measurements.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) else None


def _mark_region(mark: MarkForSR, source: hd.sr.SourceImageForRegion) -> hd.sr.ImageRegion | None:
    p = np.asarray(mark.points, dtype=np.float64)
    if mark.kind == "ellipse":  # stored as the bounding box's corners; SCOORD ELLIPSE wants both axes' end points
        (x0, y0), (x1, y1) = p
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
        horizontal = [[cx - rx, cy], [cx + rx, cy]]
        vertical = [[cx, cy - ry], [cx, cy + ry]]
        axes = horizontal + vertical if rx >= ry else vertical + horizontal
        return hd.sr.ImageRegion(hd.sr.GraphicTypeValues.ELLIPSE, np.asarray(axes), source)
    if mark.kind == "freehand":
        closed = np.vstack([p, p[:1]]) if tuple(p[0]) != tuple(p[-1]) else p
        return hd.sr.ImageRegion(hd.sr.GraphicTypeValues.POLYLINE, closed, source)
    return None


def _mark_group(mark: MarkForSR) -> hd.sr.MeasurementsAndQualitativeEvaluations | \
        hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    m = mark.measurements
    image = mark.image
    frames = [image.frame] if image.frame is not None else None
    tracking = hd.sr.TrackingIdentifier(uid=mark.tracking_uid, identifier=mark.identifier.strip()[:64])
    in_mm = m.get("unit") == "mm"
    length_unit = codes.UCUM.Millimeter if in_mm else _PIXELS
    value_unit = codes.UCUM.HounsfieldUnit if mark.value_unit == "HU" else _NO_UNITS
    measurements: list[hd.sr.Measurement] = []

    def polyline(points: np.ndarray) -> list[hd.sr.CoordinatesForMeasurement]:
        return [hd.sr.CoordinatesForMeasurement(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE, graphic_data=points,
            source_image=hd.sr.SourceImageForRegion(image.sop_class_uid, image.sop_instance_uid,
                                                    referenced_frame_numbers=frames))]

    p = np.asarray(mark.points, dtype=np.float64)
    if mark.kind == "length" and (value := _number(m, "length")) is not None:
        measurements.append(hd.sr.Measurement(name=_LENGTH_NAMES["length"], value=value, unit=length_unit,
                                              referenced_coordinates=polyline(p[0:2])))
    if mark.kind == "bidirectional":
        for key, points in (("long_axis", p[0:2]), ("short_axis", p[2:4])):
            if (value := _number(m, key)) is not None:
                measurements.append(hd.sr.Measurement(name=_LENGTH_NAMES[key], value=value, unit=length_unit,
                                                      referenced_coordinates=polyline(points)))
    if mark.kind in ("ellipse", "freehand"):
        if (area := _number(m, "area")) is not None:
            measurements.append(hd.sr.Measurement(name=codes.SCT.Area, value=area,
                                                  unit=codes.UCUM.SquareMillimeter if in_mm else _SQUARE_PIXELS))
        stats = m.get("stats")
        if isinstance(stats, dict) and stats.get("count"):
            for key, name in _STAT_NAMES.items():
                if (value := _number(stats, key)) is not None:
                    measurements.append(hd.sr.Measurement(name=name, value=value, unit=value_unit))
        source = hd.sr.SourceImageForRegion(image.sop_class_uid, image.sop_instance_uid, referenced_frame_numbers=frames)
        region = _mark_region(mark, source)
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, referenced_region=region, measurements=measurements or None)
    if mark.kind == "point" and (value := _number(m, "value")) is not None:
        measurements.append(hd.sr.Measurement(
            name=codes.SCT.Mean, value=value, unit=value_unit,
            referenced_coordinates=[hd.sr.CoordinatesForMeasurement(
                graphic_type=hd.sr.GraphicTypeValues.POINT, graphic_data=p[0:1],
                source_image=hd.sr.SourceImageForRegion(image.sop_class_uid, image.sop_instance_uid,
                                                        referenced_frame_numbers=frames))]))
    if mark.kind not in _MARK_KINDS and (value := _number(m, "angle")) is not None:  # an angle or Cobb angle
        measurements.append(hd.sr.Measurement(name=codes.SCT.Angle, value=value, unit=_DEGREES,
                                              referenced_coordinates=polyline(p)))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, measurements=measurements or None,
        source_images=[hd.sr.SourceImageForMeasurementGroup(image.sop_class_uid, image.sop_instance_uid,
                                                            referenced_frame_numbers=frames)])


def build_marks_report(marks: Sequence[MarkForSR], *, observer_name: str, observer_login: str | None,
                       evidence: Sequence[pydicom.Dataset], header: ReportHeader) -> hd.sr.Comprehensive3DSR:
    """A Comprehensive 3D SR (TID 1500) of the viewer's marks on one study: one measurement group per
    mark (TID 1501 for lengths, bidirectionals, points, arrows; TID 1410 with its SCOORD region for
    ellipses and freehand outlines), its label as the tracking identifier. The observer is the person
    who exports; the document (``header``; its series description "Measurements" when omitted),
    evidence checks and coding scheme are those of :func:`build_measurement_report`.

    Raises
    ------
    SRInputError
        No mark, a referenced image missing from ``evidence``, several studies, an invalid UID.
    """
    if not marks:
        raise SRInputError(["a report needs at least one mark"])
    _check_evidence(evidence, [(f"mark {mark.identifier}", mark.image) for mark in marks], header)
    report = _measurement_report(_observer(observer_name, observer_login), [_mark_group(mark) for mark in marks])
    return _document(report, evidence, header, "Measurements")


def tracking_uid_of(key: str) -> str:
    """A stable ``2.25`` UID for ``key`` (the same mark gets the same tracking UID in every export)."""
    return "2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL, f"crossread:{key}").int)


def new_uid() -> str:
    """A fresh ``2.25`` UID (PS3.5 B.2): a random UUID as a decimal integer."""
    return str(UID(pydicom.uid.generate_uid(prefix=None)))


__all__ = [
    "Axis",
    "ImageReference",
    "LesionFinding",
    "LesionRole",
    "MarkForSR",
    "ORGAN_CODES",
    "ROLE_STATUSES",
    "ReadForSR",
    "ReportHeader",
    "Responses",
    "SRInputError",
    "build_marks_report",
    "build_measurement_report",
    "finding_site",
    "is_uid",
    "new_uid",
    "tracking_uid_of",
]
