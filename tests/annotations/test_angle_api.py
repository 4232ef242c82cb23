"""Angles and calibration through the REST API: angle and Cobb angle created, measured in physical
space and read back; lengths on ultrasound in the region's mm (refused across regions); whole-slide
lengths in micrometres at the base level's pixel coordinates; a projection radiograph's source."""

from __future__ import annotations

import io
import math

import numpy as np
import pydicom
import pytest

from demo import corpus
from demo.slide import write_synthetic_slide
from tests.annotations.test_annotations_api import URL, api, post
from tests.factories.dicom import ct_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stow
from viewer import rendering

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_caches():
    rendering.FRAME_CACHE.clear()


def store(client, team, *files: bytes) -> list[str]:
    assert stow(client, "trial", list(files), token_for(team["reader"])).status_code == 200
    return [pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True).SOPInstanceUID for raw in files]


def corpus_bytes(source: str, name: str) -> bytes:
    path = corpus.source_dirs()[source] / name
    if not path.exists():
        pytest.skip(f"{source} has no {name}")
    return path.read_bytes()


def test_angle_and_cobb_created_measured_in_physical_space_and_read_back(client, team):
    stored = np.zeros((24, 32), dtype="<i2")
    # rows 0.5 mm apart, columns 0.8 mm: anisotropic
    [ct] = store(client, team, ct_bytes(Rows=24, Columns=32, PixelData=stored.tobytes(), PixelSpacing=[0.5, 0.8]))
    reader = api(team["reader"])
    created = post(reader, {"instance": ct, "kind": "angle", "points": [[20, 4], [4, 4], [20, 20]], "label": "hip"})
    assert created.status_code == 201, created.content
    # arms (16, 0) and (16, 16) px = (12.8, 0) and (12.8, 8) mm: atan(8 / 12.8) = 32.0 degrees (45 on pixels)
    assert created.json()["measurements"] == {"kind": "angle", "unit": "deg", "calibration": "PixelSpacing",
                                              "angle": round(math.degrees(math.atan(8 / 12.8)), 1)}
    cobb = post(reader, {"instance": ct, "kind": "cobb", "points": [[2, 2], [30, 6], [2, 20], [30, 12]]})
    assert cobb.status_code == 201, cobb.content
    # lines (28, 4) and (28, -8) px = (22.4, 2) and (22.4, -4) mm
    expected = math.degrees(math.atan(2 / 22.4) + math.atan(4 / 22.4))
    assert cobb.json()["measurements"]["angle"] == round(expected, 1)
    listed = reader.get(f"{URL}?instance={ct}").json()["annotations"]
    assert [(a["kind"], a["points"], a["label"]) for a in listed] == [
        ("angle", [[20.0, 4.0], [4.0, 4.0], [20.0, 20.0]], "hip"),
        ("cobb", [[2.0, 2.0], [30.0, 6.0], [2.0, 20.0], [30.0, 12.0]], ""),
    ]
    got = reader.get(f"{URL}{cobb.json()['id']}/").json()
    assert got["measurements"] == cobb.json()["measurements"]
    # moving the vertex measures again
    moved = reader.patch(f"{URL}{created.json()['id']}/", {"version": 1, "points": [[20, 4], [4, 4], [4, 20]]},
                         content_type="application/json")
    assert moved.status_code == 200 and moved.json()["measurements"]["angle"] == 90.0
    # wrong counts and degenerate arms: 400 with the reason, nothing written
    for body, message in (
        ({"kind": "angle", "points": [[1, 1], [2, 2]]}, "expected 3 points"),
        ({"kind": "cobb", "points": [[1, 1], [2, 2], [3, 3]]}, "expected 4 points"),
        ({"kind": "angle", "points": [[1, 1], [1, 1], [5, 5]]}, "zero length"),
    ):
        refused = post(reader, {"instance": ct, **body})
        assert refused.status_code == 400 and message in refused.json()["detail"], refused.content
    assert len(reader.get(f"{URL}?instance={ct}").json()["annotations"]) == 2


def test_ultrasound_lengths_in_the_regions_mm_and_refused_across_regions(client, team):
    raw = corpus_bytes("pydicom-data", "gdcm-US-ALOKA-16.dcm")
    [us] = store(client, team, raw)
    delta_mm = float(pydicom.dcmread(io.BytesIO(raw)).SequenceOfUltrasoundRegions[0].PhysicalDeltaX) * 10
    reader = api(team["reader"])
    inside = post(reader, {"instance": us, "kind": "length", "points": [[100, 100], [100, 300]]})
    assert inside.status_code == 201, inside.content
    assert inside.json()["measurements"] == {"kind": "length", "unit": "mm", "calibration": "SequenceOfUltrasoundRegions",
                                             "length": round(200 * delta_mm, 1)}
    across = post(reader, {"instance": us, "kind": "length", "points": [[100, 100], [500, 100]]})
    assert across.status_code == 400 and "different ultrasound regions" in across.json()["detail"]
    outside = post(reader, {"instance": us, "kind": "ellipse", "points": [[2, 2], [20, 20]]})
    assert outside.status_code == 400 and "outside every calibrated ultrasound region" in outside.json()["detail"]
    # an arrow measures nothing: wherever it points
    assert post(reader, {"instance": us, "kind": "arrow", "points": [[2, 2], [500, 100]]}).status_code == 201
    # moving a length across the regions is refused too, and leaves it as it was
    moved = reader.patch(f"{URL}{inside.json()['id']}/", {"version": 1, "points": [[100, 100], [600, 100]]},
                         content_type="application/json")
    assert moved.status_code == 400
    assert reader.get(f"{URL}{inside.json()['id']}/").json()["version"] == 1


def test_projection_radiograph_source_is_recorded(client, team):
    dx = pydicom.dcmread(io.BytesIO(ct_bytes(Rows=16, Columns=16, PixelData=np.zeros((16, 16), "<i2").tobytes())))
    if "PixelSpacing" in dx:
        del dx.PixelSpacing
    dx.Modality, dx.ImagerPixelSpacing, dx.EstimatedRadiographicMagnificationFactor = "DX", [0.2, 0.2], 1.25
    calibrated = pydicom.dcmread(io.BytesIO(ct_bytes(Rows=16, Columns=16, PixelData=np.zeros((16, 16), "<i2").tobytes(),
                                                     PixelSpacing=[0.15, 0.15])))
    calibrated.Modality, calibrated.ImagerPixelSpacing = "CR", [0.2, 0.2]
    files = []
    for ds in (dx, calibrated):
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        files.append(buffer.getvalue())
    first, second = store(client, team, *files)
    reader = api(team["reader"])
    corrected = post(reader, {"instance": first, "kind": "length", "points": [[0, 0], [10, 0]]}).json()["measurements"]
    assert corrected == {"kind": "length", "unit": "mm", "length": 1.6,
                         "calibration": "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"}
    found = post(reader, {"instance": second, "kind": "length", "points": [[0, 0], [10, 0]]}).json()["measurements"]
    assert (found["calibration"], found["length"]) == ("PixelSpacing/calibrated", 1.5)


@pytest.fixture(scope="module")
def slide_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slide-marks")
    return write_synthetic_slide(folder, texture=corpus.source_dirs()["wsidicom-data"] / "test_tile.png",
                                 width=1024, height=768)


def test_whole_slide_lengths_in_micrometres_at_base_level_coordinates(client, team, slide_files):
    uids = store(client, team, *[p.read_bytes() for p in slide_files])
    base = uids[0]  # the finest level, 1024 x 768 in tiles of 256
    reader = api(team["reader"])
    # beyond one tile (256 px): the total pixel matrix is the image marks are drawn on
    made = post(reader, {"instance": base, "kind": "length", "points": [[100, 100], [900, 700]]})
    assert made.status_code == 201, made.content
    assert made.json()["measurements"] == {"kind": "length", "unit": "um", "calibration": "PixelSpacing/slide",
                                           "length": 250.0}  # 1000 px x 0.25 um
    assert post(reader, {"instance": base, "kind": "length", "points": [[0, 0], [1025, 0]]}).status_code == 400
    ellipse = post(reader, {"instance": base, "kind": "ellipse", "points": [[100, 100], [500, 500]]}).json()
    assert ellipse["measurements"]["area"] == round(math.pi * 50 * 50, 2) and ellipse["measurements"]["unit"] == "um"
    angle = post(reader, {"instance": base, "kind": "angle", "points": [[900, 100], [100, 100], [100, 700]]}).json()
    assert angle["measurements"]["angle"] == 90.0


def test_angles_are_not_recist_measurements():
    from trials import rules

    for role in ("target", "non_target", "new"):
        for nodal in (False, True):
            assert not {"angle", "cobb"} & set(rules.measuring_kinds(role, nodal=nodal, targets_by_length=True))
    assert not {"angle", "cobb"} & set(rules.MARK_KINDS)
    assert rules.mark_refusal("target", nodal=False, targets_by_length=True, kind="angle", baseline=True)
