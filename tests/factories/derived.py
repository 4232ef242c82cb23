"""Objects derived from the demo phantom's images, written with Crossread's own SR writer and with
highdicom: a TID 1500 measurement report of the target lesions, and DICOM SEGs (binary, fractional)
of the lesions. Used by tests/viewer/test_documents.py and the browser tests."""

from __future__ import annotations

import datetime
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from annotations import sr

TARGETS = ("T1", "T2", "T3")
SEG_COLOURS = {"T1": "red", "T2": "lime", "T3": "blue", "NT1": "yellow"}


def truth(folder: Path, timepoint: str = "baseline") -> dict[str, Any]:
    return json.loads((folder / "phantom.json").read_text())["studies"][timepoint]


def images(folder: Path, timepoint: str = "baseline") -> list[Dataset]:
    """The time point's CT slices, in InstanceNumber order."""
    found = [pydicom.dcmread(path) for path in sorted((folder / timepoint).glob("*.dcm"))]
    return sorted(found, key=lambda ds: int(ds.InstanceNumber))


def _axis(lesion: dict[str, Any], which: str) -> sr.Axis:
    a, b = lesion[f"{which}_axis_endpoints_px"]
    return sr.Axis(Decimal(str(lesion[f"{which}_axis_mm"])), ((a[0], a[1]), (b[0], b[1])))


def measurement_report(folder: Path, timepoint: str = "baseline", *, reader: str = "Reader^One") -> tuple[Dataset, list[dict[str, Any]]]:
    """Crossread's TID 1500 report (annotations.sr, as "Store as DICOM SR" writes it) of the target
    lesions, and the lesions it measures (phantom truth)."""
    headers = {str(ds.SOPInstanceUID): ds for ds in images(folder, timepoint)}
    lesions = [lesion for lesion in truth(folder, timepoint)["lesions"] if lesion["id"] in TARGETS]
    findings = [
        sr.LesionFinding(
            identifier=lesion["id"], tracking_uid=sr.new_uid(), role=sr.LesionRole.TARGET, organ=lesion["organ"],
            nodal=lesion["nodal"], status="measured", long_axis=_axis(lesion, "long"), short_axis=_axis(lesion, "short"),
            image=sr.ImageReference(str(headers[lesion["sop_instance_uid"]].SOPClassUID), lesion["sop_instance_uid"]))
        for lesion in lesions
    ]
    read = sr.ReadForSR(
        reader_name=reader, reader_login="reader1", timepoint_label=timepoint, timepoint_order=0,
        days_from_baseline=0, subject_label="S001", trial_name="Demo trial", findings=findings, responses=sr.Responses())
    report = sr.build_measurement_report(
        read, evidence=[headers[lesion["sop_instance_uid"]] for lesion in lesions],
        header=sr.ReportHeader(sr.new_uid(), sr.new_uid(), 7001, series_description="RECIST 1.1 baseline",
                               content_datetime=datetime.datetime(2024, 3, 5, 12, 0)))
    return report, lesions


def lesion_masks(folder: Path, timepoint: str, sources: list[Dataset], ids: tuple[str, ...] = TARGETS,
                 *, fractional: bool = False) -> np.ndarray:
    """(slices, rows, columns, lesions) masks of spherical lesions from the phantom's truth: 1 inside the
    sphere (pixel centres); fractional: falling from 1 at the centre to 0 at the border."""
    lesions = {lesion["id"]: lesion for lesion in truth(folder, timepoint)["lesions"]}
    first = sources[0]
    rows, columns = int(first.Rows), int(first.Columns)
    spacing = float(first.PixelSpacing[1])
    origin = np.array([float(v) for v in first.ImagePositionPatient])
    out = np.zeros((len(sources), rows, columns, len(ids)), dtype=np.float32)
    yy, xx = np.mgrid[0:rows, 0:columns]
    for k, lid in enumerate(ids):
        lesion = lesions[lid]
        cx, cy, cz = lesion["centre_mm"]
        radius = lesion["long_axis_mm"] / 2
        for s, ds in enumerate(sources):
            z = float(ds.ImagePositionPatient[2])
            x = origin[0] + xx * spacing
            y = origin[1] + yy * spacing
            distance = np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2)
            inside = distance <= radius
            out[s, :, :, k] = np.where(inside, 1.0 - distance / radius, 0.0) if fractional else inside
    return out


def lesion_segmentation(folder: Path, timepoint: str = "baseline", *, fractional: bool = False,
                        ids: tuple[str, ...] = TARGETS) -> tuple[Dataset, np.ndarray, list[Dataset]]:
    """A highdicom SEG of the lesions over the time point's slices, its masks and its source images."""
    sources = images(folder, timepoint)
    masks = lesion_masks(folder, timepoint, sources, ids, fractional=fractional)
    keep = [i for i in range(len(sources)) if masks[i].any()]
    sources, masks = [sources[i] for i in keep], masks[keep]
    algorithm = hd.AlgorithmIdentificationSequence(name="phantom truth", version="1", family=codes.DCM.ArtificialIntelligence)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n, segment_label=lid, segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm, display_color=hd.color.CIELabColor.from_string(SEG_COLOURS[lid]))
        for n, lid in enumerate(ids, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=masks if fractional else masks.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL if fractional else hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=8001 + int(fractional),
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="Crossread tests", manufacturer_model_name="phantom",
        software_versions="1", device_serial_number="1", series_description=f"Lesions ({'fractional' if fractional else 'binary'})",
        max_fractional_value=255,
    )
    return seg, masks, sources


def _complete(ds: Dataset, frame_of_reference: str = "1.2.826.0.1.3680043.10.511.9.1") -> Dataset:
    """A copy with the Patient and General Study attributes highdicom copies from its evidence."""
    ds = pydicom.dcmread(io.BytesIO(_bytes(ds)))
    for keyword, value in {"PatientSex": "O", "PatientBirthDate": "", "StudyID": "1", "AccessionNumber": "",
                           "ReferringPhysicianName": "", "StudyTime": "120000", "StudyDate": "20240101",
                           "FrameOfReferenceUID": frame_of_reference, "SliceThickness": 1, "SeriesNumber": 1, "InstanceNumber": 1}.items():
        if keyword not in ds:
            setattr(ds, keyword, value)
    return ds


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def square_segmentation(sources: list[Dataset]) -> Dataset:
    """A one-segment binary SEG of a square in the middle of each of ``sources`` (same series)."""
    sources = [_complete(ds) for ds in sources]
    rows, columns = int(sources[0].Rows), int(sources[0].Columns)
    mask = np.zeros((len(sources), rows, columns, 1), dtype=np.uint8)
    mask[:, rows // 4:3 * rows // 4, columns // 4:3 * columns // 4, 0] = 1
    algorithm = hd.AlgorithmIdentificationSequence(name="test", version="1", family=codes.DCM.ArtificialIntelligence)
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="square", segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm)
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=hd.UID(), series_number=90, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="tests", manufacturer_model_name="tests", software_versions="1",
        device_serial_number="1")


def point_report(image: Dataset) -> Dataset:
    """A TID 1500 report with one measurement on a point of ``image`` (highdicom)."""
    image = _complete(image)
    region = hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POINT, graphic_data=np.array([[4.0, 4.0]]),
                               source_image=hd.sr.SourceImageForRegion.from_source_image(image))
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="P1"), referenced_region=region,
        finding_type=codes.SCT.Lesion,
        measurements=[hd.sr.Measurement(name=codes.SCT.Diameter, value=3.0, unit=codes.UCUM.Millimeter)])
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Reader^Test"))),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion, imaging_measurements=[group])
    return hd.sr.Comprehensive3DSR(evidence=[image], content=content, series_number=91, series_instance_uid=hd.UID(),
                                   sop_instance_uid=hd.UID(), instance_number=1, manufacturer="tests")


def lesion_structure_set(folder: Path, timepoint: str = "baseline", ids: tuple[str, ...] = TARGETS,
                         points: int = 24) -> tuple[Dataset, dict[str, list[tuple[str, np.ndarray]]]]:
    """An RT Structure Set (PS3.3 A.19) written with pydicom over the time point's slices: one ROI per
    lesion, one CLOSED_PLANAR contour per slice it crosses (the sphere's circle there, ``points`` points,
    patient mm), each naming its slice in ContourImageSequence; and the contours per lesion as
    ``(slice SOP Instance UID, points (n, 3))``."""
    from pydicom.sequence import Sequence as Seq
    from pydicom.uid import ImplicitVRLittleEndian, RTStructureSetStorage, generate_uid

    sources = images(folder, timepoint)
    lesions = {lesion["id"]: lesion for lesion in truth(folder, timepoint)["lesions"]}
    first = sources[0]
    ds = Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.SOPClassUID = RTStructureSetStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                    "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):
        setattr(ds, keyword, first.get(keyword, ""))
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 8101
    ds.SeriesDescription = "Lesion contours"
    ds.InstanceNumber = 1
    ds.Manufacturer = "Crossread tests"
    ds.StructureSetLabel = "Lesions"
    ds.StructureSetDate, ds.StructureSetTime = "20240305", "120000"
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    ds.ReferencedFrameOfReferenceSequence = Seq([frame])
    rois, contours_of, observations = [], [], []
    drawn: dict[str, list[tuple[str, np.ndarray]]] = {}
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    for number, lid in enumerate(ids, start=1):
        lesion = lesions[lid]
        cx, cy, cz = lesion["centre_mm"]
        radius = lesion["long_axis_mm"] / 2
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = first.FrameOfReferenceUID
        roi.ROIName = lid
        roi.ROIGenerationAlgorithm = "MANUAL"
        rois.append(roi)
        item = Dataset()
        item.ReferencedROINumber = number
        item.ROIDisplayColor = [[255, 0, 0], [0, 255, 0], [0, 128, 255]][(number - 1) % 3]
        contours = []
        for ds_slice in sources:
            z = float(ds_slice.ImagePositionPatient[2])
            if abs(z - cz) >= radius:
                continue
            r = float(np.sqrt(radius ** 2 - (z - cz) ** 2))
            outline = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles), np.full(points, z)], axis=1)
            contour = Dataset()
            image = Dataset()
            image.ReferencedSOPClassUID = ds_slice.SOPClassUID
            image.ReferencedSOPInstanceUID = ds_slice.SOPInstanceUID
            contour.ContourImageSequence = Seq([image])
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = points
            contour.ContourData = [f"{v:.3f}" for v in outline.ravel()]
            contours.append(contour)
            drawn.setdefault(lid, []).append((str(ds_slice.SOPInstanceUID), np.round(outline, 3)))
        item.ContourSequence = Seq(contours)
        contours_of.append(item)
        observation = Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = "GTV"
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = Seq(rois)
    ds.ROIContourSequence = Seq(contours_of)
    ds.RTROIObservationsSequence = Seq(observations)
    return ds, drawn
