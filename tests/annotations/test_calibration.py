"""Which spacing a measurement uses (annotations.calibration), on the corpus' real files: ultrasound
regions, projection radiographs (PS3.3 10.7.1.3) and whole-slide images. No database."""

from __future__ import annotations

import copy
from pathlib import Path

import pydicom
import pytest

from annotations.calibration import (
    CalibrationError,
    calibrate,
    region_calibration,
    slide_calibration,
    ultrasound_regions,
)
from annotations.geometry import Calibration, CalibrationSource, ShapeKind, measure
from demo import corpus
from demo.slide import write_synthetic_slide

LENGTH, ANGLE, ARROW, POINT = ShapeKind.LENGTH, ShapeKind.ANGLE, ShapeKind.ARROW, ShapeKind.POINT


def corpus_file(source: str, name: str) -> pydicom.Dataset:
    path = corpus.source_dirs()[source] / name
    if not path.exists():
        pytest.skip(f"{source} has no {name}")
    return pydicom.dcmread(path, stop_before_pixels=True)


#: The corpus' ultrasound files and the spatially calibrated regions they carry (cm per pixel along
#: X and Y; each file's other regions, a spectrum or a graphic, are not spatial). Files without
#: regions (pydicom-data's US1_*, examples_rgb_color, examples_jpeg2k) measure in pixels.
US_REGIONS = [
    ("deid-data", "ultrasounds/GREYSCALE_IMAGE.dcm", 1, [(14, 38, 1011, 759)]),
    ("deid-data", "ultrasounds/RGB_IMAGE.dcm", 1, [(0, 60, 1009, 765)]),
    ("deid-data", "ultrasounds/ultrasound-multiframe.dcm", 1, [(11, 30, 789, 593)]),
    ("pydicom", "examples_palette.dcm", 2, [(120, 60, 801, 519)]),
    ("pydicom", "examples_ybr_color.dcm", 1, [(84, 31, 596, 415)]),
    ("pydicom-data", "OBXXXX1A.dcm", 2, [(120, 60, 801, 519)]),
    ("pydicom-data", "gdcm-US-ALOKA-16.dcm", 3, [(32, 24, 336, 416), (336, 24, 640, 416)]),
]


@pytest.mark.parametrize(("source", "name", "count", "spatial"), US_REGIONS)
def test_corpus_ultrasound_regions(source, name, count, spatial):
    regions = ultrasound_regions(corpus_file(source, name))
    assert len(regions) == count
    assert [region.box for region in regions if region.spatial] == [tuple(map(float, box)) for box in spatial]


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "US1_J2KI.dcm"])
def test_ultrasound_without_regions_measures_in_pixels(name):
    ds = corpus_file("pydicom-data", name)
    assert ultrasound_regions(ds) == []
    assert calibrate(ds, LENGTH, [[10, 10], [20, 20]]) == Calibration()


def test_a_length_inside_one_region_is_in_mm_from_its_deltas():
    ds = corpus_file("deid-data", "ultrasounds/GREYSCALE_IMAGE.dcm")
    delta = float(ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaX)  # cm per pixel, the same along Y
    found = calibrate(ds, LENGTH, [[100, 100], [400, 500]])
    assert found.source is CalibrationSource.ULTRASOUND_REGION and found.unit == "mm"
    assert found.row_spacing == found.column_spacing == pytest.approx(delta * 10)
    # 300 x 400 px = 500 px; x 0.0649 cm x 10 = 32.45 mm
    assert measure("length", [[100, 100], [400, 500]], found)["length"] == round(500 * delta * 10, 1) == 32.5


def test_points_in_the_two_halves_of_a_dual_image_are_refused():
    ds = corpus_file("pydicom-data", "gdcm-US-ALOKA-16.dcm")
    left = calibrate(ds, LENGTH, [[50, 100], [300, 300]])
    right = calibrate(ds, LENGTH, [[350, 100], [600, 300]])
    assert left.source is right.source is CalibrationSource.ULTRASOUND_REGION
    with pytest.raises(CalibrationError, match="different ultrasound regions"):
        calibrate(ds, LENGTH, [[100, 100], [500, 100]])
    with pytest.raises(CalibrationError, match="different ultrasound regions"):
        calibrate(ds, ANGLE, [[100, 100], [300, 200], [500, 100]])
    # The shared edge (x = 336) belongs to both: a length along it is measured.
    assert calibrate(ds, LENGTH, [[336, 100], [336, 300]]).source is CalibrationSource.ULTRASOUND_REGION


def test_points_outside_every_spatial_region_are_refused():
    ds = corpus_file("pydicom", "examples_palette.dcm")
    # Below the B-mode box (rows 60..518) lies the Doppler spectrum (time x velocity; in OBXXXX1A, of which
    # this file keeps the first 350 rows): no length there, nor in the margin left of column 120.
    with pytest.raises(CalibrationError, match="Point 2 lies outside every calibrated ultrasound region"):
        calibrate(ds, LENGTH, [[300, 200], [300, 540]])
    with pytest.raises(CalibrationError, match="Point 1 lies outside"):
        calibrate(ds, LENGTH, [[5, 5], [300, 300]])
    # Arrows and points measure nothing: never refused, wherever they are.
    assert calibrate(ds, ARROW, [[5, 5], [300, 540]]) == Calibration()
    assert calibrate(ds, POINT, [[5, 5]]) == Calibration()


def test_anisotropic_region_and_nested_regions():
    ds = copy.deepcopy(corpus_file("pydicom", "examples_ybr_color.dcm"))
    region = ds.SequenceOfUltrasoundRegions[0]
    region.PhysicalDeltaX, region.PhysicalDeltaY = 0.02, -0.04  # the sign of a delta is a direction
    inner = copy.deepcopy(region)
    inner.RegionLocationMinX0, inner.RegionLocationMaxX1 = 200, 300
    inner.PhysicalDeltaX, inner.PhysicalDeltaY = 0.01, 0.01
    ds.SequenceOfUltrasoundRegions.append(inner)
    outer = calibrate(ds, ANGLE, [[100, 100], [150, 100], [150, 200]])
    assert (outer.row_spacing, outer.column_spacing) == (pytest.approx(0.4), pytest.approx(0.2))
    # Arms (-50, 0) px and (0, 100) px: at right angles on pixels and in the patient; (50, 50) px
    # from the vertex, though, is (10, 20) mm: atan(2).
    assert measure("angle", [[100, 100], [150, 100], [200, 150]], outer)["angle"] == 116.6
    # Inside the colour-flow box the smaller region's scale holds.
    assert calibrate(ds, LENGTH, [[210, 100], [290, 100]]).column_spacing == pytest.approx(0.1)


def test_regions_tolerate_broken_items():
    ds = copy.deepcopy(corpus_file("deid-data", "ultrasounds/GREYSCALE_IMAGE.dcm"))
    del ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaX
    assert ultrasound_regions(ds) == []
    assert calibrate(ds, LENGTH, [[0, 0], [3, 4]]) == Calibration()  # as if without regions
    # With its region intact, (0, 0) lies left of and above the box (14..1011 x 38..759).
    with pytest.raises(CalibrationError, match="Point 1 lies outside"):
        region_calibration(ultrasound_regions(corpus_file("deid-data", "ultrasounds/GREYSCALE_IMAGE.dcm")),
                           [[0, 0], [30, 40]])


# ------------------------------------------------------------------------------ projection radiographs


def test_computed_radiograph_at_the_detector_and_magnification_corrected():
    ds = corpus_file("pydicom", "dicomdirtests/77654033/CR1/6154")
    assert "PixelSpacing" not in ds and [float(v) for v in ds.ImagerPixelSpacing] == [0.1, 0.1]
    detector = calibrate(ds, LENGTH, [[0, 0], [10, 0]])
    assert detector == Calibration(0.1, 0.1, CalibrationSource.IMAGER_PIXEL_SPACING)
    corrected = copy.deepcopy(ds)
    corrected.EstimatedRadiographicMagnificationFactor = 1.25
    found = calibrate(corrected, LENGTH, [[0, 0], [10, 0]])
    assert found.source is CalibrationSource.MAGNIFICATION_CORRECTED
    assert measure("length", [[0, 0], [10, 0]], found)["length"] == 0.8  # 10 x 0.1 / 1.25
    only_pixel_spacing = copy.deepcopy(ds)
    del only_pixel_spacing.ImagerPixelSpacing
    only_pixel_spacing.PixelSpacing = [0.1, 0.1]
    assert calibrate(only_pixel_spacing, LENGTH, [[0, 0], [1, 0]]).source is CalibrationSource.PROJECTION_UNKNOWN


def test_digital_radiograph_pixel_spacing_equal_or_calibrated():
    ds = corpus_file("deid-data", "animals/cat.dcm")
    assert ds.Modality == "DX" and list(ds.PixelSpacing) == list(ds.ImagerPixelSpacing)
    # PixelSpacing equal to ImagerPixelSpacing is at the detector (PS3.3 10.7.1.3), ...
    assert calibrate(ds, LENGTH, [[0, 0], [1, 0]]).source is CalibrationSource.IMAGER_PIXEL_SPACING
    magnified = copy.deepcopy(ds)
    magnified.EstimatedRadiographicMagnificationFactor = 1.1
    found = calibrate(magnified, LENGTH, [[0, 0], [1, 0]])
    assert found.source is CalibrationSource.MAGNIFICATION_CORRECTED
    assert found.column_spacing == pytest.approx(0.14 / 1.1)
    # ... a different one has been calibrated (here by a fiducial of known size).
    calibrated = copy.deepcopy(ds)
    calibrated.PixelSpacing = [0.125, 0.125]
    calibrated.PixelSpacingCalibrationType = "FIDUCIAL"
    assert calibrate(calibrated, LENGTH, [[0, 0], [1, 0]]) == Calibration(0.125, 0.125, CalibrationSource.CALIBRATED)
    # The cat's file carries an odd "ultrasound regions" sequence without units: not spatial, ignored.
    assert not any(region.spatial for region in ultrasound_regions(ds))


def test_zero_pixel_spacing_is_ignored():
    ds = corpus_file("pydicom-data", "RG1_UNCI.dcm")
    assert [float(v) for v in ds.PixelSpacing] == [0.0, 0.0]
    assert calibrate(ds, LENGTH, [[0, 0], [1, 0]]) == Calibration()


def test_cross_sectional_images_keep_pixel_spacing():
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    found = calibrate(ds, LENGTH, [[0, 0], [1, 0]])
    assert found.source is CalibrationSource.PIXEL_SPACING and found.unit == "mm"


# ------------------------------------------------------------------------------ whole-slide images


@pytest.fixture(scope="module")
def slide_base(tmp_path_factory) -> pydicom.Dataset:
    folder: Path = tmp_path_factory.mktemp("slide")
    paths = write_synthetic_slide(folder, texture=corpus.source_dirs()["wsidicom-data"] / "test_tile.png",
                                  width=512, height=512)
    return pydicom.dcmread(paths[0], stop_before_pixels=True)


def test_whole_slide_lengths_in_micrometres_from_the_base_level(slide_base):
    found = calibrate(slide_base, LENGTH, [[0, 0], [400, 300]])
    assert found == slide_calibration(slide_base)
    assert found.source is CalibrationSource.SLIDE and found.unit == "um"
    assert found.row_spacing == pytest.approx(0.25)  # 0.00025 mm
    assert measure("length", [[0, 0], [400, 300]], found) == {
        "kind": "length", "unit": "um", "calibration": "PixelSpacing/slide", "length": 125.0}
    area = measure("ellipse", [[0, 0], [400, 400]], found)["area"]
    assert area == round(3.141592653589793 * 50 * 50, 2)  # radii 200 px x 0.25 um
