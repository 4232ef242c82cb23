"""Objects that are not images: files without preamble or file meta on every ingest path; SR documents
as report trees (viewer.structured) and through the report endpoint; DICOM SEG masks and RTSTRUCT
contours for the viewer's overlays (viewer.segmentation), through the gate and the blinding mask.

Real objects: pydicom's bare test files (rtstruct.dcm, ExplVR_*NoMeta.dcm), pydicom-data's
OT-PAL-8-face.dcm, pydicom's SR test files, Crossread's own TID 1500 writer and highdicom-built SRs,
SEGs and KOS over the demo phantom (tests/factories/derived.py).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.sr.codedict import codes

from demo import corpus, phantom
from tests.factories import derived
from tests.factories.dicom import ct_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import parts, stow
from tests.viewer.test_blinding import blinded  # noqa: F401  (fixture)
from viewer import dicomfile, segmentation, structured
from viewer.access import access_project
from viewer.ingest import ingest_bytes
from viewer.models import Instance
from viewer.pages import study_outline

ANY_SYNTAX = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom")
    phantom.write_phantom_studies(out, slices=24, size=128, seed=0)
    return out


def _bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _ingest_baseline(project: Any, phantom_dir: Path) -> list[pydicom.Dataset]:
    sources = derived.images(phantom_dir)
    for ds in sources:
        assert ingest_bytes(project, _bytes(ds)).ok
    return sources


def _get(client: Any, user: Any, path: str, **headers: str) -> Any:
    return client.get(path, HTTP_AUTHORIZATION=f"Token {token_for(user)}", **headers)


# ------------------------------------------------------------------------ files without preamble / file meta

BARE = {
    "upload": ("pydicom", "rtstruct.dcm", "1.2.840.10008.1.2"),
    "stow": ("pydicom", "ExplVR_LitEndNoMeta.dcm", "1.2.840.10008.1.2.1"),
    "zip": ("pydicom-data", "OT-PAL-8-face.dcm", "1.2.840.10008.1.2"),
    "import_dicom": ("pydicom", "ExplVR_BigEndNoMeta.dcm", "1.2.840.10008.1.2.2"),
}


@pytest.mark.django_db
def test_bare_files_are_stored_on_every_path_and_served_back_with_a_preamble(client, team, tmp_path):
    originals = {path: corpus.file(source, name).read_bytes() for path, (source, name, _) in BARE.items()}
    assert all(data[128:132] != b"DICM" for data in originals.values())
    client.force_login(team["reader"])
    upload = client.post("/api/projects/trial/upload/", {"files": [
        SimpleUploadedFile("rtstruct.dcm", originals["upload"]),
        SimpleUploadedFile("bare.zip", _zip({"face.dcm": originals["zip"]})),
    ]})
    assert upload.status_code == 200 and upload.json()["counts"]["stored"] == 2, upload.json()
    assert stow(client, "trial", [originals["stow"]], token_for(team["reader"])).status_code == 200
    (tmp_path / "bare.dcm").write_bytes(originals["import_dicom"])
    # the same SOP instance as the little endian one: into another project
    call_command("import_dicom", str(tmp_path), "--project", "other")

    for path, data in originals.items():
        original = pydicom.dcmread(io.BytesIO(data), force=True)
        slug, user = ("other", team["outsider"]) if path == "import_dicom" else ("trial", team["viewer"])
        row = Instance.objects.select_related("series__study").get(
            project__slug=slug, sop_instance_uid=original.SOPInstanceUID)
        assert row.transfer_syntax_uid == BARE[path][2], path
        url = (f"/projects/{slug}/dicomweb/studies/{row.series.study.study_instance_uid}/series/"
               f"{row.series.series_instance_uid}/instances/{row.sop_instance_uid}")
        response = _get(client, user, url, HTTP_ACCEPT=ANY_SYNTAX)
        assert response.status_code == 200, (path, response.content[:200])
        (served,) = parts(response)
        assert served[128:132] == b"DICM", path
        ds = pydicom.dcmread(io.BytesIO(served))  # a PS3.10 file: no force needed
        meta = ds.file_meta
        assert meta.TransferSyntaxUID == BARE[path][2]
        assert meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
        assert meta.MediaStorageSOPClassUID == original.SOPClassUID
        assert meta.ImplementationClassUID == dicomfile.IMPLEMENTATION_CLASS_UID
        for elem in original:
            if elem.tag.element != 0:  # group lengths are not written again
                assert ds[elem.tag].value == elem.value, (path, elem.tag)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _without_preamble_and_meta(data: bytes) -> bytes:
    meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
    return data[132 + 12 + int(meta.FileMetaInformationGroupLength):]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is not DICOM at all" * 10, "Not DICOM"),
        (corpus.file("pydicom", "rtstruct.dcm").read_bytes()[:2000], "Unreadable DICOM file"),
        (_without_preamble_and_meta(Path(get_testdata_file("JPEG2000.dcm")).read_bytes()),
         "Compressed Pixel Data without a Transfer Syntax UID"),
    ],
    ids=["not-dicom", "truncated-bare-file", "compressed-without-transfer-syntax"],
)
def test_broken_bare_files_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(dicomfile.InvalidDicom) as refused:
        dicomfile.read_dicom(data)
    assert reason in refused.value.reason


def test_a_complete_file_is_kept_byte_for_byte() -> None:
    data = corpus.file("pydicom", "CT_small.dcm").read_bytes()
    part = dicomfile.read_dicom(data)
    assert part.data is data and not part.rewritten


# ------------------------------------------------------------------------ SR: the reader


def _flat(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for node in nodes for n in (node, *_flat(node.get("children", [])))]


def test_crossread_measurement_report_round_trips_through_the_reader(phantom_dir: Path) -> None:
    """Every measurement of what "Store as DICOM SR" writes (annotations.sr, TID 1500) comes back with
    its value, units, region and referenced image."""
    report, lesions = derived.measurement_report(phantom_dir)
    tree = structured.report_tree(_reread(report))
    assert tree["title"] == "Imaging Measurement Report" and tree["template"] == "1500"
    assert tree["sopClass"] == "Comprehensive 3D SR" and not tree["truncated"]
    nodes = _flat(tree["content"])
    numbers = [n for n in nodes if n["type"] == "NUM" and n["name"]["meaning"] in ("Long axis", "Short axis")]
    assert len(numbers) == 2 * len(lesions)
    by_tracking = {r["tracking"]: [] for r in tree["regions"]}
    for region in tree["regions"]:
        by_tracking[region["tracking"]].append(region)
    for lesion in lesions:
        regions = by_tracking[lesion["id"]]
        assert len(regions) == 2
        for which, region in zip(("long", "short"), regions, strict=True):
            assert region["sopInstanceUID"] == lesion["sop_instance_uid"] and region["frame"] == 1
            assert region["graphicType"] == "POLYLINE"
            assert np.allclose(region["points"], lesion[f"{which}_axis_endpoints_px"], atol=1e-3)
            assert region["label"] == f"{which.title()} axis {float(lesion[f'{which}_axis_mm'])} mm"
    for node in numbers:
        assert (node["unit"]["value"], node["unit"]["scheme"]) == ("mm", "UCUM")
        (scoord,) = [c for c in node["children"] if c["type"] == "SCOORD"]
        (image,) = [c for c in scoord["children"] if c["type"] == "IMAGE"]
        assert image["sopInstanceUID"] in {lesion["sop_instance_uid"] for lesion in lesions}
    assert sorted(float(n["value"]) for n in numbers) == sorted(
        float(lesion[f"{w}_axis_mm"]) for lesion in lesions for w in ("long", "short"))
    sites = {n["code"]["meaning"] for n in nodes if n["type"] == "CODE" and n["name"]["meaning"] == "Finding Site"}
    assert sites == {"Lymph Node" if lesion["nodal"] else lesion["organ"].title() for lesion in lesions}
    assert any(n["type"] == "PNAME" and n["text"] == "Reader One" for n in nodes)


def _reread(ds: pydicom.Dataset) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(_bytes(ds)))


def test_a_masked_report_has_no_names_dates_or_free_text(phantom_dir: Path) -> None:
    report, _ = derived.measurement_report(phantom_dir, reader="Doe^Jane")
    tree = structured.report_tree(_reread(report), masked=True)
    nodes = _flat(tree["content"])
    assert not {n["type"] for n in nodes} & structured.MASKED_VALUE_TYPES
    assert tree["withheld"] > 0 and "contentDate" not in tree
    for secret in ("Doe", "Jane", "20240305", "2024-03-05", "reader1"):
        assert secret not in str(tree), secret
    assert len(tree["regions"]) == 6 and all(n["value"] for n in nodes if n["type"] == "NUM")


def test_a_highdicom_report_with_a_3d_region_and_a_planar_roi(phantom_dir: Path) -> None:
    sources = derived.images(phantom_dir)
    lesion = derived.truth(phantom_dir)["lesions"][0]
    image = next(ds for ds in sources if ds.SOPInstanceUID == lesion["sop_instance_uid"])
    x, y, z = lesion["centre_mm"]
    outline = np.array([[x - 5, y, z], [x, y - 5, z], [x + 5, y, z], [x, y + 5, z], [x - 5, y, z]])
    region3d = hd.sr.ImageRegion3D(graphic_type=hd.sr.GraphicTypeValues3D.POLYGON, graphic_data=outline,
                                   frame_of_reference_uid=image.FrameOfReferenceUID)
    group3d = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="lesion 3d"),
        referenced_region=region3d, finding_type=codes.SCT.Lesion,
        measurements=[hd.sr.Measurement(name=codes.SCT.Area, value=50.0, unit=codes.UCUM.SquareMillimeter)])
    col, row = lesion["centre_px"]["col"], lesion["centre_px"]["row"]
    polygon = np.array([[col - 3, row], [col, row - 3], [col + 3, row], [col, row + 3], [col - 3, row]], dtype=float)
    region2d = hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POLYLINE, graphic_data=polygon,
                                 source_image=hd.sr.SourceImageForRegion.from_source_image(image))
    group2d = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="lesion 2d"),
        referenced_region=region2d, finding_type=codes.SCT.Lesion,
        measurements=[hd.sr.Measurement(name=codes.SCT.Diameter, value=12.5, unit=codes.UCUM.Millimeter)])
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Reader^Two"))),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion, imaging_measurements=[group2d, group3d])
    document = hd.sr.Comprehensive3DSR(
        evidence=[image], content=report, series_number=1, series_instance_uid=hd.UID(), sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="tests")
    tree = structured.report_tree(_reread(document))
    regions = {r["tracking"]: r for r in tree["regions"]}
    assert np.allclose(regions["lesion 2d"]["points"], polygon)
    assert regions["lesion 2d"]["sopInstanceUID"] == image.SOPInstanceUID
    assert np.allclose(regions["lesion 3d"]["points"], outline)
    assert regions["lesion 3d"]["frameOfReferenceUID"] == image.FrameOfReferenceUID
    nums = {n["name"]["meaning"]: n for n in _flat(tree["content"]) if n["type"] == "NUM"}
    assert nums["Area"]["value"] == "50.0" and nums["Area"]["unit"]["value"] == "mm2"
    assert nums["Diameter"]["value"] == "12.5"


def test_a_key_object_selection_lists_its_images(phantom_dir: Path) -> None:
    sources = derived.images(phantom_dir)[:3]
    kos = hd.ko.KeyObjectSelectionDocument(
        evidence=sources, content=hd.ko.KeyObjectSelection(
            document_title=codes.DCM.OfInterest, referenced_objects=sources),
        series_instance_uid=hd.UID(), series_number=1, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="tests")
    tree = structured.report_tree(_reread(kos))
    assert tree["sopClass"] == "Key Object Selection Document" and tree["title"] == "Of Interest"
    images = [n["sopInstanceUID"] for n in _flat(tree["content"]) if n["type"] == "IMAGE"]
    assert images == [str(ds.SOPInstanceUID) for ds in sources]


@pytest.mark.parametrize("name", ["test-SR.dcm", "reportsi.dcm"])
def test_pydicom_sr_files_are_read(name: str) -> None:
    ds = pydicom.dcmread(get_testdata_file(name))
    tree = structured.report_tree(ds)
    nodes = _flat(tree["content"])
    assert nodes and tree["title"] and not tree["truncated"]
    expected = sum(1 for _ in _items(ds))
    assert len(nodes) == expected
    masked = structured.report_tree(ds, masked=True)
    assert len(_flat(masked["content"])) <= expected - masked["withheld"]
    assert not {n["type"] for n in _flat(masked["content"])} & structured.MASKED_VALUE_TYPES


def _items(ds: pydicom.Dataset):
    for item in ds.get("ContentSequence", []):
        yield item
        yield from _items(item)


def test_bounds_cut_a_deep_or_large_report(phantom_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report, _ = derived.measurement_report(phantom_dir)
    monkeypatch.setattr(structured, "MAX_NODES", 10)
    tree = structured.report_tree(report)
    assert tree["truncated"] and len(_flat(tree["content"])) < 10


# ------------------------------------------------------------------------ the endpoints through the gate


@pytest.mark.django_db
def test_report_endpoint(client, team, phantom_dir):
    _ingest_baseline(team["project"], phantom_dir)
    report, lesions = derived.measurement_report(phantom_dir)
    assert ingest_bytes(team["project"], _bytes(report), derived=True).ok
    url = f"/projects/trial/instances/{report.SOPInstanceUID}/report"
    response = _get(client, team["viewer"], url)
    assert response.status_code == 200
    tree = response.json()
    assert {r["sopInstanceUID"] for r in tree["regions"]} == {lesion["sop_instance_uid"] for lesion in lesions}
    assert tree["contentDate"] == "2024-03-05 12:00"
    assert _get(client, team["outsider"], url.replace("/trial/", "/other/")).status_code == 404
    assert _get(client, team["outsider"], url).status_code == 404
    assert _get(client, team["viewer"], "/projects/trial/instances/1.2.3.4/report").status_code == 404
    image = f"/projects/trial/instances/{lesions[0]['sop_instance_uid']}/report"
    assert _get(client, team["viewer"], image).status_code == 422
    # the outline lists the report after the images
    outline = study_outline(access_project(team["viewer"], "trial"), str(report.StudyInstanceUID))
    (document,) = outline["documents"]
    assert document["kind"] == "sr" and document["modality"] == "SR"
    assert document["instances"] == [str(report.SOPInstanceUID)]
    assert all(s["modality"] == "CT" for s in outline["series"])


@pytest.mark.django_db
def test_a_blinded_reader_reads_a_masked_report(client, blinded):  # noqa: F811
    ds = blinded["studies"]["followup"][1]
    image = pydicom.dcmread(io.BytesIO(ingested_bytes(blinded, ds.SOPInstanceUID)))
    for keyword, value in {"PatientSex": "F", "PatientBirthDate": "19700101", "StudyID": "1", "AccessionNumber": "ACC-99",
                           "ReferringPhysicianName": "Smith^Referring", "StudyTime": "101500"}.items():
        if keyword not in image:  # highdicom copies the patient and study modules from the evidence
            setattr(image, keyword, value)
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Doe^Jane"))),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion, imaging_measurements=[
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Jane's lesion"),
                measurements=[hd.sr.Measurement(name=codes.SCT.Diameter, value=7.0, unit=codes.UCUM.Millimeter)])])
    report = hd.sr.Comprehensive3DSR(
        evidence=[image], content=content, series_number=2, series_instance_uid=hd.UID(), sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="tests", series_description="Jane's chest")
    assert ingest_bytes(blinded["project"], _bytes(report), derived=True).ok
    url = f"/projects/trial/instances/{report.SOPInstanceUID}/report"
    masked = _get(client, blinded["reader"], url)
    assert masked.status_code == 200 and masked.json()["masked"]
    for secret in ("Doe", "Jane", "20240312", "2024-03-12"):
        assert secret not in masked.content.decode(), secret
    truth = _get(client, blinded["organizer"], url)
    assert "Doe" in truth.content.decode() and not truth.json()["masked"]


def ingested_bytes(blinded: dict[str, Any], sop: str) -> bytes:
    from viewer.storage import object_store

    row = Instance.objects.get(sop_instance_uid=sop)
    return object_store().read(row.project_id, row.sha256)


@pytest.mark.django_db
@pytest.mark.parametrize("fractional", [False, True], ids=["binary", "fractional"])
def test_seg_overlays_are_the_segments_highdicom_decodes(client, team, phantom_dir, fractional):
    _ingest_baseline(team["project"], phantom_dir)
    seg, masks, sources = derived.lesion_segmentation(phantom_dir, fractional=fractional)
    assert ingest_bytes(team["project"], _bytes(seg)).ok
    decoded = hd.seg.segread(io.BytesIO(_bytes(seg)))
    base = f"/projects/trial/instances/{seg.SOPInstanceUID}/segments"
    response = _get(client, team["viewer"], base)
    assert response.status_code == 200
    description = response.json()
    assert [s["label"] for s in description["segments"]] == list(derived.TARGETS)
    assert [s["colour"] for s in description["segments"]] == ["#ff0000", "#00ff00", "#0000ff"]
    assert description["segmentationType"] == ("FRACTIONAL" if fractional else "BINARY")
    checked = 0
    for index, source in enumerate(sources):
        sop = str(source.SOPInstanceUID)
        numbers = description["frames"][f"{sop}/1"]
        expected_numbers = [n + 1 for n in range(masks.shape[3]) if masks[index, :, :, n].any()]
        assert numbers == expected_numbers
        for number in numbers:
            png = _get(client, team["viewer"], f"{base}/{number}/{sop}/1")
            assert png.status_code == 200 and png["Content-Type"] == "image/png"
            rgba = np.asarray(Image.open(io.BytesIO(png.content)).convert("RGBA"))
            alpha = rgba[..., 3] / 255.0
            highdicom = decoded.get_pixels_by_source_instance([sop], segment_numbers=[number], dtype=np.float32)[0, :, :, 0]
            assert np.allclose(alpha, highdicom, atol=0.5 / 255)
            assert np.allclose(alpha, masks[index, :, :, number - 1], atol=1.01 / 255 if fractional else 0)
            colour = description["segments"][number - 1]["colour"]
            assert (rgba[alpha > 0][:, :3] == [int(colour[i:i + 2], 16) for i in (1, 3, 5)]).all()
            checked += 1
    assert checked >= 3
    uncovered = str(derived.images(phantom_dir)[0].SOPInstanceUID)
    assert _get(client, team["viewer"], f"{base}/1/{uncovered}/1").status_code == 404
    assert _get(client, team["viewer"], f"{base}/9/{sources[0].SOPInstanceUID}/1").status_code == 404
    assert _get(client, team["outsider"], f"{base}/1/{sources[0].SOPInstanceUID}/1").status_code == 404
    assert _get(client, team["viewer"], f"{base.replace('segments', 'contours')}").status_code == 422
    outline = study_outline(access_project(team["viewer"], "trial"), str(seg.StudyInstanceUID))
    assert [d["kind"] for d in outline["documents"]] == ["seg"]


@pytest.mark.django_db
def test_rtstruct_contours_are_their_contour_data(client, team):
    data = corpus.file("pydicom", "rtstruct.dcm").read_bytes()  # a bare data set: no preamble
    assert ingest_bytes(team["project"], data).ok
    original = pydicom.dcmread(io.BytesIO(data), force=True)
    response = _get(client, team["viewer"], f"/projects/trial/instances/{original.SOPInstanceUID}/contours")
    assert response.status_code == 200
    description = response.json()
    names = {int(r.ROINumber): str(r.ROIName) for r in original.StructureSetROISequence}
    assert len(description["rois"]) == len(original.ROIContourSequence)
    for roi, item in zip(description["rois"], original.ROIContourSequence, strict=True):
        assert roi["number"] == int(item.ReferencedROINumber) and roi["name"] == names[roi["number"]]
        assert roi["colour"] == "#{:02x}{:02x}{:02x}".format(*(int(c) for c in item.ROIDisplayColor))
        assert len(roi["contours"]) == len(item.ContourSequence)
        for contour, source in zip(roi["contours"], item.ContourSequence, strict=True):
            assert contour["type"] == source.ContourGeometricType
            assert np.allclose(np.ravel(contour["points"]), [float(v) for v in source.ContourData])
            assert len(contour["points"]) == int(source.NumberOfContourPoints)
            assert contour["images"] == [str(i.ReferencedSOPInstanceUID) for i in source.get("ContourImageSequence", [])]
    assert description["label"] == original.StructureSetLabel
    assert _get(client, team["outsider"], f"/projects/trial/instances/{original.SOPInstanceUID}/contours").status_code == 404
    outline = study_outline(access_project(team["viewer"], "trial"), str(original.StudyInstanceUID))
    assert [d["kind"] for d in outline["documents"]] == ["rtstruct"] and outline["series"] == []


def test_too_many_contour_points_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = pydicom.dcmread(corpus.file("pydicom", "rtstruct.dcm"), force=True)
    monkeypatch.setattr(segmentation, "MAX_CONTOUR_POINTS", 3)
    with pytest.raises(segmentation.TooLarge):
        segmentation.describe_structure_set(ds)


@pytest.mark.django_db
def test_an_uploaded_ct_is_still_an_image_series(team):
    assert ingest_bytes(team["project"], ct_bytes()).ok
    row = Instance.objects.get()
    outline = study_outline(access_project(team["viewer"], "trial"), row.series.study.study_instance_uid)
    assert len(outline["series"]) == 1 and outline["documents"] == []
