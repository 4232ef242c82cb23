"""Which pixel spacing a measurement uses, decided from the image's attributes and where the points
are. Pure: no Django.

:func:`calibrate` is the one decision REST and the websocket use (through
:func:`annotations.services.calibration_for`):

1. A VL Whole Slide Microscopy image: the ``PixelSpacing`` of the pyramid's base level (its Pixel
   Measures functional group; points are that level's total pixel matrix coordinates), in micrometres
   (:attr:`CalibrationSource.SLIDE`, unit ``"um"``).
2. An image with a Sequence of Ultrasound Regions (PS3.3 C.8.5.5) that has at least one spatially
   calibrated region (Physical Units X and Y both 3, cm; a non-zero Physical Delta X and Y): the
   points must all lie in one such region, whose deltas give the spacing
   (:attr:`CalibrationSource.ULTRASOUND_REGION`, mm). Points in two regions (the two halves of a dual
   B-mode image, a B-mode image and its Doppler spectrum) or outside every calibrated region are
   refused with :class:`CalibrationError`: a distance across regions, or on a spectrum's time and
   velocity axes, is no length in the patient, and pixels would be a number without meaning. This
   is stricter than OHIF, which answers in pixels; Crossread refuses with the reason. A region's box
   is ``RegionLocationMinX0 .. MaxX1`` by ``MinY0 .. MaxY1`` in pixel indices, inclusive: in the
   continuous coordinates of :mod:`annotations.geometry` it covers ``[MinX0, MaxX1 + 1]`` x
   ``[MinY0, MaxY1 + 1]``. When boxes nest (a colour-flow box in a B-mode one) the smallest that holds
   every point wins. Images whose regions are none of them spatial (only a spectrum) go on to 3.
3. Otherwise :meth:`Calibration.from_dataset`: ``PixelSpacing`` (or the frame's Pixel Measures),
   projection radiographs by PS3.3 10.7.1.3 (detector, calibrated, magnification corrected, unknown
   plane), else pixels.

Kinds that measure nothing (arrows, points) are never refused: only what has a size or an angle
needs a spacing (:func:`needs_spacing`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from annotations.geometry import Calibration, CalibrationSource, ShapeKind

#: VL Whole Slide Microscopy Image Storage.
WSI_SOP_CLASS: Final = "1.2.840.10008.5.1.4.1.1.77.1.6"
#: Physical Units X/Y Direction code for centimetres (PS3.3 C.8.5.5.1.15).
UNITS_CM: Final = 3
#: The most ultrasound regions read from one image (a sequence a file controls).
MAX_REGIONS: Final = 64
_NOT_MEASURING: Final = frozenset({ShapeKind.ARROW, ShapeKind.POINT})


class CalibrationError(ValueError):
    """The points cannot be measured with one spacing (ultrasound regions); the message says why."""


@dataclass(frozen=True)
class UltrasoundRegion:
    """One item of the Sequence of Ultrasound Regions (PS3.3 C.8.5.5.1), as needed to measure.

    ``box`` is ``(x0, y0, x1, y1)`` in continuous image coordinates (``x1 = MaxX1 + 1``);
    ``delta_x``/``delta_y`` the Physical Delta X and Y (absolute values) in the region's units.
    """

    box: tuple[float, float, float, float]
    units_x: int
    units_y: int
    delta_x: float
    delta_y: float
    spatial_format: int | None = None
    data_type: int | None = None

    @property
    def spatial(self) -> bool:
        """Calibrated in centimetres along both axes: lengths and angles in it are the patient's."""
        return self.units_x == UNITS_CM and self.units_y == UNITS_CM and self.delta_x > 0 and self.delta_y > 0

    def contains(self, x: float, y: float) -> bool:
        x0, y0, x1, y1 = self.box
        return x0 <= x <= x1 and y0 <= y <= y1

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)

    def calibration(self) -> Calibration:
        """The region's spacing in mm (cm x 10): Physical Delta Y between rows, X between columns."""
        return Calibration(self.delta_y * 10, self.delta_x * 10, CalibrationSource.ULTRASOUND_REGION)


def ultrasound_regions(dataset: Any) -> list[UltrasoundRegion]:
    """The regions of ``dataset``'s Sequence of Ultrasound Regions that can be read (tolerant: an
    item missing its box, units or deltas is left out; at most :data:`MAX_REGIONS` are read)."""
    items = getattr(dataset, "SequenceOfUltrasoundRegions", None) or []
    regions = []
    for item in list(items)[:MAX_REGIONS]:
        try:
            x0, y0 = int(item.RegionLocationMinX0), int(item.RegionLocationMinY0)
            x1, y1 = int(item.RegionLocationMaxX1), int(item.RegionLocationMaxY1)
            units_x, units_y = int(item.PhysicalUnitsXDirection), int(item.PhysicalUnitsYDirection)
            delta_x, delta_y = abs(float(item.PhysicalDeltaX)), abs(float(item.PhysicalDeltaY))
        except (AttributeError, TypeError, ValueError):
            continue
        if x1 < x0 or y1 < y0 or not (math.isfinite(delta_x) and math.isfinite(delta_y)):
            continue
        spatial_format = getattr(item, "RegionSpatialFormat", None)
        data_type = getattr(item, "RegionDataType", None)
        regions.append(UltrasoundRegion(
            (float(x0), float(y0), float(x1 + 1), float(y1 + 1)), units_x, units_y, delta_x, delta_y,
            None if spatial_format is None else int(spatial_format), None if data_type is None else int(data_type)))
    return regions


def region_calibration(regions: Sequence[UltrasoundRegion], points: Sequence[Sequence[float]]) -> Calibration:
    """The spacing of the smallest spatial region holding every point; :class:`CalibrationError`
    when the points lie in different regions or outside every spatial region."""
    spatial = [region for region in regions if region.spatial]
    holding = [region for region in spatial if all(region.contains(float(x), float(y)) for x, y in points)]
    if holding:
        return min(holding, key=lambda region: region.area).calibration()
    outside = [index for index, (x, y) in enumerate(points)
               if not any(region.contains(float(x), float(y)) for region in spatial)]
    if outside:
        raise CalibrationError(
            f"Point {outside[0] + 1} lies outside every calibrated ultrasound region: only distances inside "
            "one region (PS3.3 C.8.5.5, Sequence of Ultrasound Regions) are lengths in the patient.")
    raise CalibrationError(
        "The points lie in different ultrasound regions: a measurement must stay inside one calibrated "
        "region (each has its own scale).")


def needs_spacing(kind: ShapeKind) -> bool:
    """Whether ``kind`` measures a size or an angle (arrows and points do not)."""
    return kind not in _NOT_MEASURING


def is_slide(dataset: Any) -> bool:
    return str(getattr(dataset, "SOPClassUID", "") or "") == WSI_SOP_CLASS


def slide_calibration(dataset: Any) -> Calibration:
    """A whole-slide level's spacing in micrometres (its Pixel Measures ``PixelSpacing`` in mm x 1000),
    or pixels when it has none."""
    found = Calibration.from_dataset(dataset)
    if found.source is CalibrationSource.NONE:
        return found
    return Calibration(found.row_spacing * 1000, found.column_spacing * 1000, CalibrationSource.SLIDE, "um")


def calibrate(dataset: Any, kind: ShapeKind, points: Sequence[Sequence[float]], frame: int = 0) -> Calibration:
    """The spacing to measure ``points`` of ``kind`` with on ``dataset`` (frame index ``frame``,
    0-based); see the module's docstring for the order. Raises :class:`CalibrationError`."""
    if is_slide(dataset):
        return slide_calibration(dataset)
    regions = ultrasound_regions(dataset)
    if any(region.spatial for region in regions):
        if not needs_spacing(kind):
            return Calibration()
        return region_calibration(regions, points)
    return Calibration.from_dataset(dataset, frame)


__all__ = [
    "CalibrationError",
    "UltrasoundRegion",
    "WSI_SOP_CLASS",
    "calibrate",
    "is_slide",
    "needs_spacing",
    "region_calibration",
    "slide_calibration",
    "ultrasound_regions",
]
