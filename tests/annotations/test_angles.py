"""Angles and Cobb angles (annotations.geometry), checked against hand-computed values, in
physical space: with anisotropic pixel spacing the angle on screen pixels is not the patient's."""

from __future__ import annotations

import math

import pytest

from annotations.geometry import Calibration, CalibrationSource, angle, cobb_angle, measure

SQUARE = Calibration(1.0, 1.0, CalibrationSource.PIXEL_SPACING)
#: Rows 2 mm apart, columns 1 mm: a pixel is twice as tall as it is wide.
TALL = Calibration(2.0, 1.0, CalibrationSource.PIXEL_SPACING)


@pytest.mark.parametrize(("points", "expected"), [
    ([[10, 0], [0, 0], [0, 10]], 90.0),  # the vertex in the middle
    ([[10, 0], [0, 0], [10, 10]], 45.0),
    ([[10, 0], [0, 0], [-10, 0]], 180.0),  # a straight line
    ([[10, 0], [0, 0], [5, 0]], 0.0),  # both arms the same way
    ([[3, 4], [0, 0], [-4, 3]], 90.0),  # (3, 4) . (-4, 3) = 0
    ([[10, 0], [0, 0], [-10, 10]], 135.0),  # obtuse: the angle at the vertex, not its supplement
    ([[10, 0], [0, 0], [10, -10]], 45.0),  # clockwise or anticlockwise: the same angle
])
def test_angle_at_the_vertex(points, expected):
    assert angle(points, SQUARE) == pytest.approx(expected, abs=1e-9)
    assert measure("angle", points, SQUARE) == {"kind": "angle", "unit": "deg", "calibration": "PixelSpacing",
                                                  "angle": expected}


def test_angle_in_physical_space_with_anisotropic_spacing():
    # On pixels the arms (10, 0) and (10, 10) make 45 degrees; in the patient they are (10, 0) mm
    # and (10, 20) mm: atan(20 / 10) = 63.43 degrees.
    points = [[10, 0], [0, 0], [10, 10]]
    assert angle(points, TALL) == pytest.approx(math.degrees(math.atan(2)))
    assert measure("angle", points, [2.0, 1.0])["angle"] == 63.4
    # A right angle on pixels need not be one in the patient: (1, 1) and (-1, 1) px become (1, 2)
    # and (-1, 2) mm, whose angle is acos(3 / 5) = 53.13 degrees.
    assert angle([[1, 1], [0, 0], [-1, 1]], TALL) == pytest.approx(math.degrees(math.acos(3 / 5)))
    # Uncalibrated images measure on square pixels.
    assert measure("angle", points, None) == {"kind": "angle", "unit": "deg", "calibration": "none", "angle": 45.0}


@pytest.mark.parametrize(("points", "expected"), [
    ([[0, 0], [10, 0], [0, 5], [10, 5]], 0.0),  # parallel lines
    ([[0, 0], [10, 0], [0, 0], [0, 10]], 90.0),
    ([[0, 0], [10, 0], [0, 0], [10, 10]], 45.0),
    # Lines at 150 degrees to each other as drawn: the Cobb angle is the acute one, 30.
    ([[0, 0], [10, 0], [0, 0], [-10 * math.cos(math.radians(30)), 10 * math.sin(math.radians(30))]], 30.0),
    # Drawn in either direction: the same.
    ([[10, 0], [0, 0], [0, 0], [10 * math.cos(math.radians(30)), 10 * math.sin(math.radians(30))]], 30.0),
    # Typical scoliosis: two end-plate lines tilted +12 and -20 degrees, apart, not crossing on the image.
    ([[100, 100], [200, 100 + 100 * math.tan(math.radians(12))],
      [100, 400], [200, 400 - 100 * math.tan(math.radians(20))]], 32.0),
])
def test_cobb_angle_is_the_acute_angle_between_the_lines(points, expected):
    assert cobb_angle(points, SQUARE) == pytest.approx(expected, abs=1e-9)
    assert measure("cobb", points, SQUARE)["angle"] == round(expected, 1)
    assert measure("cobb", points, SQUARE)["unit"] == "deg"


def test_cobb_angle_with_anisotropic_spacing():
    # Lines (10, 0) px and (10, 10) px: 45 degrees on pixels; rows 0.5 mm and columns 1 mm make them
    # (10, 0) and (10, 5) mm: atan(0.5) = 26.57 degrees.
    points = [[0, 0], [10, 0], [0, 0], [10, 10]]
    wide = Calibration(0.5, 1.0, CalibrationSource.IMAGER_PIXEL_SPACING)
    assert cobb_angle(points, wide) == pytest.approx(math.degrees(math.atan(0.5)))
    assert measure("cobb", points, wide) == {"kind": "cobb", "unit": "deg", "calibration": "ImagerPixelSpacing",
                                              "angle": 26.6}


@pytest.mark.parametrize(("kind", "points", "message"), [
    ("angle", [[0, 0], [0, 0], [5, 5]], "angle: the first arm has zero length"),
    ("angle", [[5, 5], [0, 0], [0, 0]], "angle: the second arm has zero length"),
    ("cobb", [[0, 0], [10, 0], [3, 3], [3, 3]], "cobb: the second line has zero length"),
    ("angle", [[0, 0], [1, 1]], "angle: got 2 points; expected 3 points"),
    ("cobb", [[0, 0], [1, 1], [2, 2]], "cobb: got 3 points; expected 4 points"),
])
def test_degenerate_angles_are_refused(kind, points, message):
    with pytest.raises(ValueError) as raised:
        measure(kind, points, SQUARE)
    assert message in str(raised.value)
