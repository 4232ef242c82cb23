"""The TID 1500 builder (annotations.sr): round trip through highdicom, dciodvfy, refusals.

No database: the phantom's files and truth (demo.phantom) stand in for the archive.
"""

from __future__ import annotations

import datetime
import io
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.codedict import codes

from annotations import sr
from demo import phantom

TRACKING = {"T1": sr.new_uid(), "T2": sr.new_uid(), "T3": sr.new_uid(), "NT1": sr.new_uid(),
            "N1": sr.new_uid()}
ORGANS = {"T1": "liver", "T2": "lung", "T3": "mediastinum", "NT1": "Left lung", "N1": "liver"}


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom")
    phantom.write_phantom_studies(out, slices=24, size=128, seed=0)
    return out


def _truth(phantom_dir: Path, timepoint: str) -> dict[str, Any]:
    return json.loads((phantom_dir / "phantom.json").read_text())["studies"][timepoint]


def _headers(phantom_dir: Path, timepoint: str) -> dict[str, pydicom.Dataset]:
    return {str(ds.SOPInstanceUID): ds for ds in (
        pydicom.dcmread(path, stop_before_pixels=True)
        for path in sorted((phantom_dir / timepoint).glob("*.dcm")))}


def _axis(lesion: dict[str, Any], which: str) -> sr.Axis:
    a, b = lesion[f"{which}_axis_endpoints_px"]
    return sr.Axis(Decimal(str(lesion[f"{which}_axis_mm"])), ((a[0], a[1]), (b[0], b[1])))


def _read(phantom_dir: Path, timepoint: str) -> tuple[sr.ReadForSR, list[pydicom.Dataset]]:
    headers = _headers(phantom_dir, timepoint)
    findings, evidence = [], []
    lesions = {lesion["id"]: lesion for lesion in _truth(phantom_dir, timepoint)["lesions"]}
    for lid in ("T1", "T2", "T3"):
        lesion = lesions[lid]
        ds = headers[lesion["sop_instance_uid"]]
        evidence.append(ds)
        findings.append(sr.LesionFinding(
            identifier=lid, tracking_uid=TRACKING[lid], role=sr.LesionRole.TARGET,
            organ=ORGANS[lid], nodal=lesion["nodal"], status="measured",
            long_axis=_axis(lesion, "long"), short_axis=_axis(lesion, "short"),
            image=sr.ImageReference(str(ds.SOPClassUID), str(ds.SOPInstanceUID))))
    baseline = timepoint == "baseline"
    findings.append(sr.LesionFinding(
        identifier="NT1", tracking_uid=TRACKING["NT1"], role=sr.LesionRole.NON_TARGET,
        organ=ORGANS["NT1"], nodal=False, status="present" if baseline else "absent"))
    if not baseline:
        findings.append(sr.LesionFinding(
            identifier="N1", tracking_uid=TRACKING["N1"], role=sr.LesionRole.NEW, organ="liver",
            nodal=False, status="present"))
    responses = sr.Responses() if baseline else sr.Responses(
        target="SD", non_target="CR", overall="PD", best_overall="PD")
    read = sr.ReadForSR(
        reader_name="Reader^One", reader_login="reader1", timepoint_label=timepoint,
        timepoint_order=0 if baseline else 1, days_from_baseline=0 if baseline else 56,
        subject_label="S001", trial_name="Demo trial", findings=findings, responses=responses)
    return read, evidence


def _build(read: sr.ReadForSR, evidence: list[pydicom.Dataset]) -> hd.sr.Comprehensive3DSR:
    return sr.build_measurement_report(
        read, evidence=evidence,
        header=sr.ReportHeader(sr.new_uid(), sr.new_uid(), 9001, content_datetime=datetime.datetime(2024, 3, 5, 12, 0)))


def _roundtrip(report: pydicom.Dataset, tmp_path: Path) -> tuple[Path, hd.sr.Comprehensive3DSR]:
    path = tmp_path / "report.dcm"
    report.save_as(path, enforce_file_format=True)
    return path, hd.sr.srread(path)


@pytest.mark.parametrize("timepoint", ["baseline", "followup"])
def test_round_trip_keeps_lesions_tracking_uids_values_and_regions(
        phantom_dir: Path, tmp_path: Path, timepoint: str) -> None:
    read, evidence = _read(phantom_dir, timepoint)
    _, back = _roundtrip(_build(read, evidence), tmp_path)

    assert back.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR Storage
    assert back.StudyInstanceUID == _truth(phantom_dir, timepoint)["study_instance_uid"]
    assert back.PatientID == "PHANTOM-001"
    groups = back.content.get_image_measurement_groups()
    assert [g.tracking_identifier for g in groups] == [f.identifier for f in read.findings]
    assert [g.tracking_uid for g in groups] == [f.tracking_uid for f in read.findings]

    truth = {lesion["id"]: lesion for lesion in _truth(phantom_dir, timepoint)["lesions"]}
    for group in groups[:3]:
        lesion = truth[group.tracking_identifier]
        (long_axis,) = group.get_measurements(name=codes.SCT.LongAxis)
        (short_axis,) = group.get_measurements(name=codes.SCT.ShortAxis)
        assert long_axis.value == pytest.approx(lesion["long_axis_mm"])
        assert short_axis.value == pytest.approx(lesion["short_axis_mm"])
        assert long_axis.unit == codes.UCUM.Millimeter
        (region,) = long_axis.referenced_coordinates
        assert region.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
        assert region.value.ravel().tolist() == pytest.approx(
            [v for point in lesion["long_axis_endpoints_px"] for v in point], abs=1e-3)
        assert region.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == \
            lesion["sop_instance_uid"]
        assert group.source_images[0].referenced_sop_instance_uid == lesion["sop_instance_uid"]
        assert group.method == codes.DCM.RECIST1Point1

    sites = [g.finding_sites[0].value for g in groups]
    assert sites[:3] == [codes.SCT.Liver, codes.SCT.Lung, codes.SCT.LymphNode]  # T3 is nodal
    assert sites[3] == codes.SCT.Lung  # "Left lung" maps to the lung
    categories = [g.get_qualitative_evaluations(name=codes.DCM.BaselineCategory)[0].value
                  for g in groups]
    assert categories[:4] == [codes.DCM.TargetLesionAtBaseline] * 3 + [
        codes.DCM.NonTargetLesionAtBaseline]


def test_time_point_context_and_responses(phantom_dir: Path, tmp_path: Path) -> None:
    read, evidence = _read(phantom_dir, "followup")
    path, back = _roundtrip(_build(read, evidence), tmp_path)
    ds = pydicom.dcmread(path)

    def flat(items: Any) -> list[pydicom.Dataset]:
        out = []
        for item in items:
            out.append(item)
            out += flat(getattr(item, "ContentSequence", []))
        return out

    items = flat(ds.ContentSequence)
    offsets = [i for i in items if i.ConceptNameCodeSequence[0].CodeValue == "128740"]
    assert offsets and all(i.MeasuredValueSequence[0].NumericValue == 56 for i in offsets)
    points = [i.TextValue for i in items if i.ConceptNameCodeSequence[0].CodeValue == "C2348792"]
    assert set(points) == {"followup"}
    texts = [i.TextValue for i in items if i.ValueType == "TEXT"
             and i.ConceptNameCodeSequence[0].CodeValue in ("112048", "112049")]
    assert "Overall response (RECIST 1.1): PD" in texts and "PD" in texts
    new = back.content.get_image_measurement_groups(tracking_uid=TRACKING["N1"])[0]
    assert new.get_qualitative_evaluations(name=codes.DCM.BaselineCategory)[0].value == \
        codes.DCM.NonLesionAtBaseline


def test_unknown_organ_falls_back_to_a_local_code() -> None:
    site = sr.finding_site("  Peritoneal   implant ", nodal=False)
    assert site.value.scheme_designator == sr.LOCAL_SCHEME
    assert site.value.meaning == "Peritoneal implant"
    assert sr.finding_site("whatever", nodal=True).value == codes.SCT.LymphNode


@pytest.mark.skipif(shutil.which("dciodvfy") is None,
                    reason="dciodvfy missing: apt-get install dicom3tools to validate the SR IOD")
@pytest.mark.parametrize("timepoint", ["baseline", "followup"])
def test_dciodvfy_reports_no_errors(phantom_dir: Path, tmp_path: Path, timepoint: str) -> None:
    read, evidence = _read(phantom_dir, timepoint)
    path, _ = _roundtrip(_build(read, evidence), tmp_path)
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert errors == [], output


def test_bytes_are_readable_by_pydicom_without_loss(phantom_dir: Path) -> None:
    read, evidence = _read(phantom_dir, "baseline")
    buffer = io.BytesIO()
    _build(read, evidence).save_as(buffer, enforce_file_format=True)
    again = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    assert again.Modality == "SR" and again.CompletionFlag == "COMPLETE"
    assert again.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == sr.LOCAL_SCHEME


# ------------------------------------------------------------------------------- refusals


def _finding(**changes: Any) -> sr.LesionFinding:
    values: dict[str, Any] = dict(
        identifier="T1", tracking_uid=TRACKING["T1"], role=sr.LesionRole.TARGET, organ="liver",
        nodal=False, status="measured",
        long_axis=sr.Axis(Decimal("30.0"), ((1.0, 2.0), (11.0, 2.0))),
        image=sr.ImageReference("1.2.840.10008.5.1.4.1.1.2", "1.2.3"))
    values.update(changes)
    return sr.LesionFinding(**values)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"tracking_uid": "1.02.3"}, "tracking_uid is not a valid UID"),
    ({"identifier": "T 1"}, "identifier must be"),
    ({"status": "present"}, "is not one of"),
    ({"long_axis": None}, "needs its long axis"),
    ({"nodal": True}, "needs its short axis"),
    ({"image": None}, "axes need the image"),
    ({"short_axis": sr.Axis(Decimal("31.0"), ((0, 0), (0, 31)))}, "short axis is longer"),
    ({"status": "disappeared"}, "only measured targets"),
])
def test_findings_refuse_inconsistent_input(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(sr.SRInputError) as error:
        _finding(**changes)
    assert any(reason in r for r in error.value.reasons), error.value.reasons


def test_axis_refuses_bad_values() -> None:
    with pytest.raises(sr.SRInputError):
        sr.Axis(Decimal("0"), ((0, 0), (1, 1)))
    with pytest.raises(sr.SRInputError):
        sr.Axis(Decimal("3"), ((1, 1), (1, 1)))
    with pytest.raises(sr.SRInputError):
        sr.Axis(Decimal("3"), ((float("nan"), 1), (1, 1)))


def test_read_refuses_duplicates_and_new_lesions_at_baseline() -> None:
    new = _finding(identifier="N1", tracking_uid=TRACKING["N1"], role=sr.LesionRole.NEW,
                   status="present", long_axis=None, image=None)
    with pytest.raises(sr.SRInputError) as error:
        sr.ReadForSR(reader_name="r", timepoint_label="baseline", timepoint_order=0,
                     days_from_baseline=0, subject_label="S1", trial_name="t",
                     findings=[_finding(), _finding(), new])
    reasons = " ".join(error.value.reasons)
    assert "listed 2 times" in reasons and "no new lesions at baseline" in reasons


def test_builder_refuses_images_missing_from_the_evidence(phantom_dir: Path) -> None:
    read, evidence = _read(phantom_dir, "baseline")
    with pytest.raises(sr.SRInputError, match="not in the evidence"):
        _build(read, evidence[:1])
    other = _read(phantom_dir, "followup")[1]
    with pytest.raises(sr.SRInputError, match="several studies"):
        _build(read, evidence + other)


def test_both_builders_write_the_header_with_their_own_series_description(phantom_dir: Path) -> None:
    read, evidence = _read(phantom_dir, "baseline")
    marks, mark_evidence = _marks(phantom_dir)
    header = sr.ReportHeader("1.2.3.4", "1.2.3.5", 12)
    recist = sr.build_measurement_report(read, evidence=evidence, header=header)
    viewer = sr.build_marks_report(marks, observer_name="R^", observer_login=None, evidence=mark_evidence, header=header)
    for report in (recist, viewer):
        assert (report.SeriesInstanceUID, report.SOPInstanceUID, int(report.SeriesNumber), int(report.InstanceNumber),
                report.Manufacturer) == ("1.2.3.4", "1.2.3.5", 12, 1, "Crossread")
    assert (recist.SeriesDescription, viewer.SeriesDescription) == ("RECIST 1.1 measurements", "Measurements")
    given = sr.ReportHeader("1.2.3.4", "1.2.3.5", 12, instance_number=3, manufacturer="Elsewhere",
                            content_datetime=datetime.datetime(2024, 3, 5, 12, 0), series_description="x" * 70)
    for report in (sr.build_measurement_report(read, evidence=evidence, header=given),
                   sr.build_marks_report(marks, observer_name="R^", observer_login=None, evidence=mark_evidence,
                                         header=given)):
        assert (int(report.InstanceNumber), report.Manufacturer, str(report.ContentDate), report.SeriesDescription) == \
            (3, "Elsewhere", "20240305", "x" * 64)
    with pytest.raises(sr.SRInputError) as error:
        sr.build_measurement_report(read, evidence=evidence, header=sr.ReportHeader("1.02", "x", 1))
    assert error.value.reasons == ("series_instance_uid is not a valid UID", "sop_instance_uid is not a valid UID")


def test_module_imports_no_django() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys, annotations.sr; print('django' in sys.modules)"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "False", result.stderr


# ---------------------------------------------------------------------------- the viewer's marks


def _marks(phantom_dir: Path) -> tuple[list[sr.MarkForSR], list[pydicom.Dataset]]:
    """One mark of every kind on a phantom slice (what annotations.exports hands over)."""
    ds = next(iter(_headers(phantom_dir, "baseline").values()))
    image = sr.ImageReference(str(ds.SOPClassUID), str(ds.SOPInstanceUID))
    uid = sr.tracking_uid_of

    def mark(name: str, kind: str, points: Any, measurements: dict[str, Any], unit: str = "HU") -> sr.MarkForSR:
        return sr.MarkForSR(name, uid(f"annotation/1/{name}"), kind, points, measurements, image, unit)

    return [
        mark("L1", "length", ((10, 10), (50, 10)), {"length": 28.0, "unit": "mm"}),
        mark("B1", "bidirectional", ((10, 20), (50, 20), (30, 10), (30, 30)),
             {"long_axis": 28.0, "short_axis": 14.0, "unit": "mm"}),
        mark("liver", "ellipse", ((100, 100), (140, 120)),
             {"area": 440.0, "unit": "mm", "stats": {"count": 600, "mean": 60.2, "std": 4.0, "min": 50, "max": 70}}),
        mark("F1", "freehand", ((10, 10), (40, 10), (25, 40)), {"area": 450.0, "unit": "px", "stats": None}, ""),
        mark("P1", "point", ((3, 3),), {"value": -998.0}),
        mark("A1", "arrow", ((3, 3), (9, 9)), {}),
        mark("C1", "cobb", ((1, 1), (9, 1), (1, 9), (9, 12)), {"angle": 21.5}),
    ], [ds]


def test_the_marks_report_has_one_group_per_mark_with_values_units_and_regions(phantom_dir: Path, tmp_path: Path) -> None:
    marks, evidence = _marks(phantom_dir)
    report = sr.build_marks_report(marks, observer_name="Reader^One", observer_login="reader1", evidence=evidence,
                                   header=sr.ReportHeader(sr.new_uid(), sr.new_uid(), 7002))
    path, back = _roundtrip(report, tmp_path)
    assert back.PatientID == "PHANTOM-001" and back.StudyInstanceUID == evidence[0].StudyInstanceUID
    groups = back.content.get_image_measurement_groups()
    planar = back.content.get_planar_roi_measurement_groups()
    assert [g.tracking_identifier for g in groups] == ["L1", "B1", "P1", "A1", "C1"]
    assert [g.tracking_identifier for g in planar] == ["liver", "F1"]
    assert groups[0].tracking_uid == sr.tracking_uid_of("annotation/1/L1")  # the same mark, the same UID
    (length,) = groups[0].get_measurements(name=codes.SCT.Length)
    assert length.value == 28.0 and length.unit == codes.UCUM.Millimeter
    assert length.referenced_coordinates[0].value.ravel().tolist() == [10, 10, 50, 10]
    assert [m.value for m in groups[1].get_measurements()] == [28.0, 14.0]
    liver = planar[0]
    assert liver.roi.graphic_type == hd.sr.GraphicTypeValues.ELLIPSE
    assert liver.roi.value.ravel().tolist() == [100, 110, 140, 110, 120, 100, 120, 120]  # major axis first
    (mean,) = liver.get_measurements(name=codes.SCT.Mean)
    assert mean.value == pytest.approx(60.2) and mean.unit == codes.UCUM.HounsfieldUnit
    assert planar[1].get_measurements(name=codes.SCT.Area)[0].unit.value == "{pixels}2"  # uncalibrated
    assert groups[2].get_measurements(name=codes.SCT.Mean)[0].value == -998.0
    assert groups[3].get_measurements() == []  # an arrow: its label and image only
    assert groups[4].get_measurements(name=codes.SCT.Angle)[0].value == 21.5
    if shutil.which("dciodvfy"):
        result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
        errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], result.stderr


def test_the_marks_report_refuses_what_it_cannot_write(phantom_dir: Path) -> None:
    marks, evidence = _marks(phantom_dir)
    image = marks[0].image
    with pytest.raises(sr.SRInputError, match="a length has 2 points"):
        sr.MarkForSR("L", sr.new_uid(), "length", ((1, 1),), {}, image)
    with pytest.raises(sr.SRInputError, match="identifier"):
        sr.MarkForSR(" ", sr.new_uid(), "point", ((1, 1),), {}, image)
    with pytest.raises(sr.SRInputError, match="at least one mark"):
        sr.build_marks_report([], observer_name="R^", observer_login=None, evidence=evidence,
                              header=sr.ReportHeader(sr.new_uid(), sr.new_uid(), 1))
    other = sr.MarkForSR("X", sr.new_uid(), "point", ((1, 1),), {}, sr.ImageReference(image.sop_class_uid, "1.2.3"))
    with pytest.raises(sr.SRInputError, match="not in the evidence"):
        sr.build_marks_report([other], observer_name="R^", observer_login=None, evidence=evidence,
                              header=sr.ReportHeader(sr.new_uid(), sr.new_uid(), 1))
