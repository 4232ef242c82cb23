"""annotations/geometry.py: lengths, axes, regions and their statistics. No database."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset

from annotations.geometry import (
    Calibration,
    CalibrationSource,
    bidirectional,
    ellipse_area,
    ellipse_mask,
    length,
    length_mm,
    measure,
    polygon_area,
    polygon_mask,
    polygon_self_intersects,
    roi_stats,
    segments_intersect,
)

ISO = Calibration.from_pixel_spacing([1.0, 1.0])


def star(n: int, centre: tuple[float, float], r_in: float, r_out: float) -> list[list[float]]:
    """A simple (non-crossing) star polygon with n spikes."""
    points = []
    for k in range(2 * n):
        radius = r_out if k % 2 == 0 else r_in
        angle = math.pi * k / n + 0.1
        points.append([centre[0] + radius * math.cos(angle), centre[1] + radius * math.sin(angle)])
    return points


def reference_polygon_mask(points: list[list[float]], shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel even-odd ray casting, written plainly, to check the vectorised fill."""
    mask = np.zeros(shape, dtype=bool)
    n = len(points)
    for row in range(shape[0]):
        for col in range(shape[1]):
            x, y, inside = col + 0.5, row + 0.5, False
            for k in range(n):
                (x0, y0), (x1, y1) = points[k], points[(k + 1) % n]
                crosses_row = (y0 <= y < y1) or (y1 <= y < y0)
                if crosses_row and x >= x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                    inside = not inside
            mask[row, col] = inside
    return mask


# ----------------------------------------------------------------------------------------------
# Calibration and lengths
# ----------------------------------------------------------------------------------------------


class TestLength:
    def test_pixel_spacing_is_row_then_column(self) -> None:
        spacing = (0.5, 0.8)  # rows 0.5 mm apart (vertical), columns 0.8 mm apart (horizontal)
        assert length_mm([0, 0], [10, 0], spacing) == pytest.approx(8.0)
        assert length_mm([0, 0], [0, 10], spacing) == pytest.approx(5.0)

    def test_anisotropic_diagonal(self) -> None:
        assert length_mm([1, 1], [4, 5], (2.0, 1.0)) == pytest.approx(math.sqrt(9 + 64))

    def test_no_spacing_gives_none_and_pixels_through_calibration(self) -> None:
        assert length_mm([0, 0], [3, 4], None) is None
        assert length([0, 0], [3, 4], Calibration()) == pytest.approx(5.0)
        assert Calibration().unit == "px" and ISO.unit == "mm"

    def test_measure_length_rounds_to_a_tenth(self) -> None:
        assert measure("length", [[1, 1], [4, 5]], (2.0, 1.0)) == {
            "kind": "length", "unit": "mm", "calibration": "PixelSpacing", "length": 8.5}
        assert measure("length", [[0, 0], [3, 4]], None) == {
            "kind": "length", "unit": "px", "calibration": "none", "length": 5.0}

    @pytest.mark.parametrize("spacing", [(0, 1), (1, -1), (float("nan"), 1), (True, 1), (1,),
                                         (1, 2, 3), "11", ("1", 1)])
    def test_bad_spacing(self, spacing: Any) -> None:
        with pytest.raises(ValueError, match="spacing"):
            measure("length", [[0, 0], [1, 1]], spacing)


@pytest.mark.parametrize(("row", "column"), [(0.0, 1.0), (1.0, -0.5), (math.inf, 1.0)])
def test_calibration_refuses_non_positive_spacing(row: float, column: float) -> None:
    with pytest.raises(ValueError, match="spacing must be a positive finite number"):
        Calibration(row, column, CalibrationSource.PIXEL_SPACING)


class TestCalibrationFromDataset:
    def test_pixel_spacing(self) -> None:
        ds = Dataset()
        ds.PixelSpacing = ["0.7", "0.9"]
        ds.ImagerPixelSpacing = ["0.2", "0.2"]
        expected = Calibration(0.7, 0.9, CalibrationSource.PIXEL_SPACING)
        assert Calibration.from_dataset(ds) == expected

    def test_imager_pixel_spacing_is_at_the_detector(self) -> None:
        ds = Dataset()
        ds.ImagerPixelSpacing = ["0.15", "0.16"]
        calibration = Calibration.from_dataset(ds)
        assert calibration == Calibration(0.15, 0.16, CalibrationSource.IMAGER_PIXEL_SPACING)
        assert measure("length", [[0, 0], [100, 0]], calibration)["calibration"] == (
            "ImagerPixelSpacing")

    def test_magnification_correction(self) -> None:
        ds = Dataset()
        ds.ImagerPixelSpacing = ["0.2", "0.2"]
        ds.EstimatedRadiographicMagnificationFactor = "1.25"
        calibration = Calibration.from_dataset(ds)
        assert calibration.source is CalibrationSource.MAGNIFICATION_CORRECTED
        assert calibration.row_spacing == pytest.approx(0.16)

    def test_enhanced_multiframe_functional_groups(self) -> None:
        def group(spacing: list[str]) -> Dataset:
            measures, item = Dataset(), Dataset()
            measures.PixelSpacing = spacing
            item.PixelMeasuresSequence = [measures]
            return item
        ds = Dataset()
        ds.SharedFunctionalGroupsSequence = [group(["0.5", "0.5"])]
        assert Calibration.from_dataset(ds).row_spacing == 0.5
        ds.PerFrameFunctionalGroupsSequence = [Dataset(), group(["0.3", "0.4"])]
        assert Calibration.from_dataset(ds, frame=1).column_spacing == 0.4
        assert Calibration.from_dataset(ds, frame=0).column_spacing == 0.5

    def test_no_spacing_is_uncalibrated(self) -> None:
        assert Calibration.from_dataset(Dataset()) == Calibration()


# ----------------------------------------------------------------------------------------------
# Bidirectional
# ----------------------------------------------------------------------------------------------


class TestBidirectional:
    def test_lengths_and_validity(self) -> None:
        result = measure("bidirectional", [[0, 5], [20, 5], [10, 0], [10, 8]], (0.5, 0.5))
        assert result == {
            "kind": "bidirectional", "unit": "mm", "calibration": "PixelSpacing",
            "long_axis": 10.0, "short_axis": 4.0, "angle_deg": 90.0, "perpendicular": True,
            "intersecting": True, "valid": True}

    def test_perpendicularity_is_judged_in_the_patient_not_on_pixels(self) -> None:
        # Rows 2 mm apart, columns 1 mm: pixel vectors (2, 1) and (-2, 1) are (2, 2) and
        # (-2, 2) mm, perpendicular in the patient although not on the pixel grid.
        points = [[0, 0], [2, 1], [2, 0], [0, 1]]
        assert bidirectional(points, Calibration.from_pixel_spacing([2.0, 1.0])).perpendicular
        on_pixels = bidirectional(points, ISO)
        assert not on_pixels.perpendicular
        assert on_pixels.angle_deg == pytest.approx(math.degrees(math.acos(3 / 5)))

    @pytest.mark.parametrize(("degrees", "perpendicular"), [(88.1, True), (87.9, False),
                                                            (90.0, True)])
    def test_tolerance(self, degrees: float, perpendicular: bool) -> None:
        angle = math.radians(degrees)
        short = [10 - 3 * math.cos(angle), -3 * math.sin(angle)], [10 + 3 * math.cos(angle),
                                                                  3 * math.sin(angle)]
        result = bidirectional([[0, 0], [20, 0], *short], ISO)
        assert result.angle_deg == pytest.approx(degrees)
        assert result.perpendicular is perpendicular

    def test_axes_must_cross(self) -> None:
        apart = measure("bidirectional", [[0, 0], [20, 0], [25, -3], [25, 3]], None)
        assert (apart["perpendicular"], apart["intersecting"], apart["valid"]) == (
            True, False, False)
        touching = bidirectional([[0, 0], [20, 0], [20, -3], [20, 3]], ISO)
        assert touching.intersecting

    def test_short_axis_longer_than_long_axis_is_invalid(self) -> None:
        result = bidirectional([[0, 5], [6, 5], [3, 0], [3, 10]], ISO)
        assert result.perpendicular and result.intersecting and not result.valid

    def test_zero_length_axis(self) -> None:
        with pytest.raises(ValueError, match="zero length"):
            measure("bidirectional", [[0, 0], [10, 0], [5, 1], [5, 1]], None)


@pytest.mark.parametrize(("segments", "expected"), [
    (([0, 0], [4, 4], [0, 4], [4, 0]), True),
    (([0, 0], [4, 4], [5, 5], [6, 7]), False),
    (([0, 0], [4, 0], [2, 0], [6, 0]), True),  # collinear overlap
    (([0, 0], [4, 0], [5, 0], [6, 0]), False),  # collinear, apart
    (([0, 0], [4, 0], [4, 0], [4, 3]), True),  # shared end point
    (([0, 0], [4, 0], [2, 1], [3, 5]), False),
])
def test_segments_intersect(segments: tuple[list[float], ...], expected: bool) -> None:
    assert segments_intersect(*segments) is expected


# ----------------------------------------------------------------------------------------------
# Ellipse
# ----------------------------------------------------------------------------------------------


class TestEllipse:
    def test_area_is_pi_a_b(self) -> None:
        calibration = Calibration.from_pixel_spacing([0.7, 0.9])
        assert ellipse_area([10, 20], [50, 30], calibration) == pytest.approx(
            math.pi * (20 * 0.9) * (5 * 0.7))

    def test_pixel_count_matches_the_area_on_a_fine_grid(self) -> None:
        spacing = (0.7, 0.9)
        p0, p1 = [10.3, 20.7], [410.9, 320.2]
        region = ellipse_mask(p0, p1, (400, 450))
        counted = int(region.mask.sum()) * spacing[0] * spacing[1]
        analytic = math.pi * (400.6 / 2 * 0.9) * (299.5 / 2 * 0.7)
        assert counted == pytest.approx(analytic, rel=2e-3)
        assert measure("ellipse", [p1, p0], spacing)["area"] == round(analytic, 2)

    def test_pixel_centres_decide_membership(self) -> None:
        # The box (0,0)-(2,2) is a circle of radius 1 centred on (1, 1): the four pixel centres
        # (0.5, 0.5) ... (1.5, 1.5) lie inside, at distance 0.71.
        values = np.arange(16, dtype=float).reshape(4, 4)
        stats = measure("ellipse", [[0, 0], [2, 2]], None, values)["stats"]
        assert stats == {"count": 4, "mean": 2.5, "std": 2.06, "min": 0.0, "max": 5.0}
        # A box of one pixel holds exactly that pixel's centre.
        assert ellipse_mask([2, 1], [3, 2], (4, 4)).full((4, 4)).nonzero() == (
            np.array([1]), np.array([2]))
        # Shifted by half a pixel, the 1 x 1 box holds no centre.
        assert ellipse_mask([0, 0], [1, 1], (4, 4)).full((4, 4)).sum() == 1
        assert ellipse_mask([0.5, 0.5], [1.2, 1.2], (4, 4)).full((4, 4)).sum() == 0

    def test_region_is_clipped_to_the_image(self) -> None:
        region = ellipse_mask([-10, -10], [10, 10], (8, 6))
        assert region.mask.shape == (8, 6) and (region.row0, region.col0) == (0, 0)
        assert region.full((8, 6)).all()
        outside = ellipse_mask([100, 100], [110, 120], (8, 6))
        assert outside.mask.size == 0
        assert roi_stats(np.zeros((8, 6)), outside).count == 0

    def test_region_entirely_outside_the_image_has_no_stats(self) -> None:
        result = measure("ellipse", [[100, 100], [110, 120]], None, np.zeros((8, 6)))
        assert result["stats"] == {"count": 0, "mean": None, "std": None, "min": None,
                                   "max": None}

    def test_stats_on_a_two_valued_image(self) -> None:
        values = np.full((40, 40), -100, dtype=np.int16)  # int16 like CT pixel data
        values[:, 20:] = 50
        result = measure("ellipse", [[10, 10], [30, 30]], (1, 1), values)
        stats = result["stats"]
        assert stats["count"] % 2 == 0  # symmetric about the x = 20 boundary
        assert (stats["mean"], stats["std"], stats["min"], stats["max"]) == (
            -25.0, 75.0, -100.0, 50.0)

    def test_zero_size_box(self) -> None:
        with pytest.raises(ValueError, match="zero width or height"):
            measure("ellipse", [[5, 5], [5, 9]], None)
        with pytest.raises(ValueError, match="zero width or height"):
            ellipse_mask([5, 5], [9, 5], (10, 10))


# ----------------------------------------------------------------------------------------------
# Freehand polygon
# ----------------------------------------------------------------------------------------------


class TestFreehand:
    def test_axis_aligned_rectangle(self) -> None:
        points = [[2, 3], [7, 3], [7, 9], [2, 9]]
        mask = polygon_mask(points, (20, 20)).full((20, 20))
        expected = np.zeros((20, 20), dtype=bool)
        expected[3:9, 2:7] = True
        assert np.array_equal(mask, expected)
        assert polygon_area(points, Calibration.from_pixel_spacing([0.5, 2.0])) == pytest.approx(30)

    def test_matches_plain_ray_casting_on_a_concave_star(self) -> None:
        points = star(7, (31.3, 27.8), 9.2, 24.6)
        assert not polygon_self_intersects(points)
        shape = (60, 70)
        assert np.array_equal(polygon_mask(points, shape).full(shape),
                              reference_polygon_mask(points, shape))

    def test_clipped_to_the_image(self) -> None:
        points: list[list[float]] = [[-5, -5], [3.5, -5], [3.5, 2.5], [-5, 2.5]]
        mask = polygon_mask(points, (10, 10)).full((10, 10))
        assert mask.sum() == 3 * 2 and mask[:2, :3].all()

    def test_area_against_pi_r2(self) -> None:
        circle = [[50 + 40 * math.cos(float(t)), 50 + 40 * math.sin(float(t))]
                  for t in np.linspace(0, 2 * math.pi, 2000, endpoint=False)]
        area = measure("freehand", circle, (0.5, 0.5))["area"]
        assert area == pytest.approx(math.pi * 20**2, rel=1e-4)
        counted = polygon_mask(circle, (100, 100)).mask.sum() * 0.25
        assert counted == pytest.approx(math.pi * 20**2, rel=5e-3)

    def test_stats_with_known_values(self) -> None:
        values = np.zeros((30, 30))
        values[10:20, 10:15] = 100.0
        values[10:20, 15:20] = 300.0
        result = measure("freehand", [[10, 10], [20, 10], [20, 20], [10, 20]], (1, 1), values)
        assert result == {"kind": "freehand", "unit": "mm", "calibration": "PixelSpacing",
                          "area": 100.0, "stats": {"count": 100, "mean": 200.0, "std": 100.0,
                                                   "min": 100.0, "max": 300.0}}

    def test_without_values_there_are_no_stats(self) -> None:
        assert measure("freehand", [[0, 0], [4, 0], [0, 3]], None) == {
            "kind": "freehand", "unit": "px", "calibration": "none", "area": 6.0, "stats": None}

    def test_crossing_outline_is_refused(self) -> None:
        bowtie = [[0, 0], [10, 10], [10, 0], [0, 10]]
        assert polygon_self_intersects(bowtie)
        with pytest.raises(ValueError, match="crosses itself"):
            measure("freehand", bowtie, None)

    def test_outline_without_area_is_refused(self) -> None:
        with pytest.raises(ValueError, match="encloses no area"):
            measure("freehand", [[0, 0], [5, 5], [10, 10]], None)

    def test_many_points(self) -> None:
        circle = [[256 + 200 * math.cos(float(t)), 256 + 200 * math.sin(float(t))]
                  for t in np.linspace(0, 2 * math.pi, 5000, endpoint=False)]
        values = np.ones((512, 512))
        assert measure("freehand", circle, None, values)["stats"]["mean"] == 1.0


# ----------------------------------------------------------------------------------------------
# Point, arrow and validation of measure()
# ----------------------------------------------------------------------------------------------


def test_point_value_is_the_pixel_containing_it() -> None:
    values = np.arange(12, dtype=float).reshape(3, 4)
    assert measure("point", [[3.7, 2.2]], None, values) == {"kind": "point", "value": 11.0}
    assert measure("point", [[0.0, 0.99]], None, values)["value"] == 0.0
    assert measure("point", [[4.0, 0]], None, values)["value"] is None
    assert measure("point", [[-0.1, 0]], None, values)["value"] is None
    assert measure("point", [[1, 1]], None) == {"kind": "point", "value": None}


def test_arrow_has_nothing_to_measure() -> None:
    assert measure("arrow", [[1, 1], [5, 5]], (1, 1)) == {"kind": "arrow"}


@pytest.mark.parametrize(("kind", "points", "message"), [
    ("protractor", [[0, 0]], "unknown measurement kind 'protractor'; expected one of length, "),
    ("length", [[0, 0]], "length: got 1 points; expected 2 points"),
    ("length", [[0, 0], [1, 1], [2, 2]], "length: got 3 points"),
    ("bidirectional", [[0, 0], [1, 1]], "expected 4 points"),
    ("ellipse", [[0, 0]], "opposite corners of the bounding box"),
    ("freehand", [[0, 0], [1, 1]], "expected 3 to 5000 points"),
    ("freehand", [[0, 0]] * 5001, "got 5001 points"),
    ("arrow", [[0, 0]], "tip, then tail"),
    ("point", [], "got 0 points; expected 1 point"),
    ("length", "0,0,1,1", "points must be a list of [x, y] pairs"),
    ("length", None, "points must be a list"),
    ("length", [[0, 0], [1]], "point 1 must be an [x, y] pair"),
    ("length", [[0, 0], "xy"], "point 1 must be an [x, y] pair"),
    ("length", [[0, 0], [1, "2"]], "point 1 y must be a number"),
    ("length", [[0, True], [1, 2]], "point 0 y must be a number"),
    ("length", [[0, float("nan")], [1, 2]], "point 0 y must be a finite number"),
    ("length", [[0, 0], [float("inf"), 2]], "point 1 x must be a finite number"),
])
def test_measure_validation(kind: str, points: Any, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        measure(kind, points, None)
    assert message in str(raised.value)


def test_points_may_be_a_numpy_array_and_negative() -> None:
    assert measure("length", np.array([[-3.0, 0.0], [0.0, 4.0]]), None)["length"] == 5.0


@pytest.mark.parametrize("values", [np.zeros(5), np.zeros((2, 2, 2)), [[1, 2], [3, 4]]])
def test_values_must_be_a_2d_array(values: Any) -> None:
    with pytest.raises(ValueError, match="2-D numpy array"):
        measure("ellipse", [[0, 0], [2, 2]], None, values)
