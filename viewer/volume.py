"""Multiplanar reformatting: a series of slices as one regular volume, and its axial, sagittal and
coronal planes. Pure (numpy and :mod:`viewer.imaging`); no Django.

A series is a volume when its slices form ONE regular stack (:func:`build_stack`): the same
orientation and pixel spacing, the same rows and columns, positions along the normal one slice
spacing apart (no gap, no duplicate, no in-plane shift such as a gantry tilt), all within the
tolerances below. Anything else is refused with a :class:`NotAStack` that says why.

Coordinates are DICOM patient coordinates (LPS: +x the patient's left, +y posterior, +z
superior). The volume's axes, in the array order ``values[k, r, c]``:

- ``k``: the slices, sorted by position along the normal ``row cosines x column cosines``
  (ascending: for an axial acquisition with ImageOrientationPatient ``1\\0\\0\\0\\1\\0``, slice 0 is
  the most inferior), one slice spacing apart;
- ``r``: the rows of each slice, along the column cosines, PixelSpacing[0] apart;
- ``c``: the columns, along the row cosines, PixelSpacing[1] apart.

Each of the three planes is perpendicular to one patient axis (axial: z, sagittal: x, coronal: y).
The volume axis whose direction is closest to that patient axis steps the plane: ``<plane>/<index>``
is position ``index`` along it, in the array's order (so for an axial acquisition ``axial/k`` is
slice ``k``, ``sagittal/c`` column ``c`` of every slice, ``coronal/r`` row ``r``). The image is laid
out as radiologists read it, whatever the acquisition: axial with the patient's right at the left
and anterior at the top, sagittal with anterior at the left and superior at the top, coronal with
the patient's right at the left and superior at the top. The two volume axes in the image keep
their sampling, except the slice axis: it is resampled with linear interpolation between slices at
the other axis's pixel spacing, so pixels are square. For an axial acquisition of ``n`` slices of
``rows x columns``, sagittal planes are ``rows`` wide and ``round((n - 1) * slice spacing / row
spacing) + 1`` high; coronal planes ``columns`` wide and ``round((n - 1) * slice spacing / column
spacing) + 1`` high. (The last resampled row lies at most half a pixel beyond the last slice; it
takes the last slice's values.)

:meth:`Stack.layout` gives each plane's geometry (:class:`PlaneLayout`: the position of its first
pixel, its row and column direction cosines, pixel spacing and size, and how far apart and in
which direction the planes of its stack are), enough to draw reference lines and crosshairs and to
measure in mm on a reformatted plane.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from viewer.imaging import ImageTooLarge, PreparedFrame, RenderError, Rescale, full_range_window
from viewer.imaging.lut import VOITransform, apply_modality_lut

Vec3 = tuple[float, float, float]

PLANES = ("axial", "sagittal", "coronal")

#: Largest difference between two slices' direction cosines (about 0.1 degree).
ORIENTATION_TOLERANCE = 2e-3
#: Largest relative difference between two slices' pixel spacings.
PIXEL_SPACING_TOLERANCE = 1e-3
#: Largest difference between a gap along the normal and the stack's slice spacing: this fraction
#: of the spacing, plus SPACING_TOLERANCE_MM (the rounding of decimal strings).
SPACING_TOLERANCE = 0.02
SPACING_TOLERANCE_MM = 1e-3
#: Largest in-plane offset between slices (a gantry tilt, a shifted slice), in pixels.
IN_PLANE_TOLERANCE = 0.1

#: The patient axis each plane is perpendicular to, and the patient directions of the image's
#: columns (left to right) and rows (top to bottom).
_DISPLAY: dict[str, tuple[int, Vec3, Vec3]] = {
    "axial": (2, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),  # right at the left, anterior at the top
    "sagittal": (0, (0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),  # anterior at the left, superior at the top
    "coronal": (1, (1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),  # right at the left, superior at the top
}
_ACQUISITION = {2: "axial", 0: "sagittal", 1: "coronal"}


class NotAStack(RenderError):
    """The series is not one regular stack of grey slices (the detail says why): 422."""


class VolumeTooLarge(ImageTooLarge):
    """The volume would take more memory than the configured bound: 413."""


class NoSuchPlane(RenderError):
    """An unknown plane name: 400."""

    status = 400
    code = "bad_request"


class PlaneOutOfRange(RenderError):
    """A plane index outside the plane's stack: 404, as a frame that does not exist."""

    status = 404
    code = "not_found"


# --------------------------------------------------------------------------- one slice


@dataclass(frozen=True)
class SliceGeometry:
    """Where one slice is: ImagePositionPatient (the centre of its first pixel),
    ImageOrientationPatient (row and column direction cosines), PixelSpacing (between rows, between
    columns, in mm), Rows and Columns."""

    position: Vec3
    row_cosines: Vec3
    column_cosines: Vec3
    row_spacing: float
    column_spacing: float
    rows: int
    columns: int


def _numbers(metadata: Mapping[str, Any], tag: str, count: int, what: str) -> list[float]:
    element = metadata.get(tag)
    values = element.get("Value") if isinstance(element, Mapping) else None
    try:
        numbers = [float(v) for v in values] if isinstance(values, list) else []
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        raise NotAStack(f"A slice has no valid {what}: the series cannot be reformatted.")
    return numbers


def slice_geometry(metadata: Mapping[str, Any]) -> SliceGeometry:
    """The geometry of one single-frame grey slice from its DICOM JSON (PS3.18 F.2) attributes.

    Raises :class:`NotAStack` for a missing or invalid attribute, a multi-frame instance or a colour
    image."""
    frames = metadata.get("00280008", {}).get("Value") if isinstance(metadata.get("00280008"), Mapping) else None
    if frames and str(frames[0]).strip() not in ("", "1"):
        raise NotAStack("Multi-frame instances cannot be reformatted yet.")
    photometric = metadata.get("00280004", {}).get("Value") if isinstance(metadata.get("00280004"), Mapping) else None
    if not photometric or str(photometric[0]).strip() not in ("MONOCHROME1", "MONOCHROME2"):
        raise NotAStack("Only grey (MONOCHROME) images can be reformatted.")
    x, y, z = _numbers(metadata, "00200032", 3, "Image Position (Patient)")
    orientation = _numbers(metadata, "00200037", 6, "Image Orientation (Patient)")
    row_spacing, column_spacing = _numbers(metadata, "00280030", 2, "Pixel Spacing")
    (rows,), (columns,) = _numbers(metadata, "00280010", 1, "Rows"), _numbers(metadata, "00280011", 1, "Columns")
    return SliceGeometry((x, y, z), _unit(orientation[:3]), _unit(orientation[3:]), row_spacing, column_spacing,
                         int(rows), int(columns))


def _unit(values: Sequence[float]) -> Vec3:
    vector = np.asarray(values, dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm < 0.5:
        raise NotAStack("A slice has invalid direction cosines: the series cannot be reformatted.")
    x, y, z = (vector / norm).tolist()
    return (x, y, z)


# --------------------------------------------------------------------------- the stack


@dataclass(frozen=True)
class Axis:
    """One axis of the volume: its direction in patient coordinates, the distance between two
    samples along it, and how many there are."""

    direction: Vec3
    spacing: float
    size: int


@dataclass(frozen=True)
class PlaneLayout:
    """The geometry of the planes ``<plane>/0 .. count - 1``, in DICOM's terms.

    ``first_position`` is the centre of the top left pixel of plane 0, and plane ``i``'s is
    ``first_position + i * spacing * normal`` (:meth:`position`); ``row_cosines`` is the direction
    from one column to the next (left to right), ``column_cosines`` from one row to the next (top
    to bottom); ``pixel_spacing`` is (between rows, between columns) in mm, as PixelSpacing.
    """

    plane: str
    count: int
    spacing: float
    normal: Vec3
    rows: int
    columns: int
    pixel_spacing: tuple[float, float]
    row_cosines: Vec3
    column_cosines: Vec3
    first_position: Vec3
    # how to sample the volume: (fixed axis, vertical axis, horizontal axis) and each image axis's
    # (first, step) in index units along its volume axis
    axes: tuple[int, int, int]
    vertical: tuple[float, float]
    horizontal: tuple[float, float]

    def position(self, index: int) -> Vec3:
        x, y, z = (float(p + index * self.spacing * n) for p, n in zip(self.first_position, self.normal, strict=True))
        return (x, y, z)

    def describe(self) -> dict[str, Any]:
        """The layout as JSON for the viewer."""
        return {
            "plane": self.plane, "count": self.count, "spacing": self.spacing, "normal": list(self.normal),
            "rows": self.rows, "columns": self.columns, "pixel_spacing": list(self.pixel_spacing),
            "row_cosines": list(self.row_cosines), "column_cosines": list(self.column_cosines),
            "first_position": list(self.first_position),
        }


@dataclass(frozen=True)
class Stack:
    """A regular stack: the slices' order along the normal and the volume's three axes."""

    order: tuple[int, ...]  # the input slices, sorted along the normal
    origin: Vec3  # the centre of the first pixel of the first sorted slice
    axes: tuple[Axis, Axis, Axis]  # k (slices), r (rows), c (columns)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.axes[0].size, self.axes[1].size, self.axes[2].size)

    @property
    def slice_spacing(self) -> float:
        return self.axes[0].spacing

    def nbytes(self, itemsize: int = 4) -> int:
        slices, rows, columns = self.shape
        return slices * rows * columns * itemsize

    @cached_property
    def patient_axes(self) -> tuple[int, int, int]:
        """The patient axis (0 x, 1 y, 2 z) each volume axis runs closest to."""
        found = tuple(int(np.argmax(np.abs(axis.direction))) for axis in self.axes)
        if len(set(found)) != 3:
            raise NotAStack("The slices are too oblique to tell axial, sagittal and coronal apart.")
        return found  # type: ignore[return-value]

    @property
    def acquisition(self) -> str:
        """The plane the slices were acquired in."""
        return _ACQUISITION[self.patient_axes[0]]

    def layout(self, plane: str) -> PlaneLayout:
        """The geometry of ``plane`` (``axial``, ``sagittal`` or ``coronal``) of this volume."""
        if plane not in _DISPLAY:
            raise NoSuchPlane(f"The plane must be one of {', '.join(PLANES)}.")
        normal_axis, across, down = _DISPLAY[plane]
        patient = self.patient_axes
        fixed = patient.index(normal_axis)
        horizontal = patient.index(int(np.argmax(np.abs(across))))
        vertical = patient.index(int(np.argmax(np.abs(down))))
        # The slice axis, when in the image, is sampled at the other image axis's spacing.
        h_spacing = self.axes[vertical].spacing if horizontal == 0 else self.axes[horizontal].spacing
        v_spacing = self.axes[horizontal].spacing if vertical == 0 else self.axes[vertical].spacing
        columns, h_sampling, h_cosines, h_start = self._sampling(horizontal, across, h_spacing)
        rows, v_sampling, v_cosines, v_start = self._sampling(vertical, down, v_spacing)
        fixed_axis = self.axes[fixed]
        first = np.asarray(self.origin) + np.asarray(h_start) + np.asarray(v_start)
        x, y, z = (float(v) for v in first)
        return PlaneLayout(
            plane=plane, count=fixed_axis.size, spacing=fixed_axis.spacing, normal=fixed_axis.direction,
            rows=rows, columns=columns, pixel_spacing=(v_spacing, h_spacing),
            row_cosines=h_cosines, column_cosines=v_cosines, first_position=(x, y, z),
            axes=(fixed, vertical, horizontal), vertical=v_sampling, horizontal=h_sampling,
        )

    def _sampling(self, index: int, wanted: Vec3, spacing: float) -> tuple[int, tuple[float, float], Vec3, Vec3]:
        """For an image axis along volume axis ``index`` shown running towards ``wanted``: its
        number of pixels, (first, step) in index units, its direction cosines and the offset of
        its first pixel from the origin."""
        axis = self.axes[index]
        sign = 1.0 if float(np.dot(axis.direction, wanted)) >= 0 else -1.0
        length = (axis.size - 1) * axis.spacing
        count = round(length / spacing) + 1 if index == 0 else axis.size
        step = spacing / axis.spacing if index == 0 else 1.0
        first = 0.0 if sign > 0 else float(axis.size - 1)
        dx, dy, dz = axis.direction
        reach = 0.0 if sign > 0 else length
        cosines = (sign * dx + 0.0, sign * dy + 0.0, sign * dz + 0.0)  # (+ 0.0: no negative zeros)
        return count, (first, sign * step), cosines, (reach * dx, reach * dy, reach * dz)


def build_stack(slices: Sequence[SliceGeometry]) -> Stack:
    """The regular stack these slices form, or :class:`NotAStack` with the reason."""
    if len(slices) < 2:
        raise NotAStack("A volume needs at least two slices.")
    first = slices[0]
    for other in slices[1:]:
        if (other.rows, other.columns) != (first.rows, first.columns):
            raise NotAStack("The slices are not all the same size.")
        if any(abs(a - b) > ORIENTATION_TOLERANCE for a, b in zip(
                other.row_cosines + other.column_cosines, first.row_cosines + first.column_cosines, strict=True)):
            raise NotAStack("The slices do not all have the same orientation.")
        if any(abs(a - b) > PIXEL_SPACING_TOLERANCE * b for a, b in zip(
                (other.row_spacing, other.column_spacing), (first.row_spacing, first.column_spacing), strict=True)):
            raise NotAStack("The slices do not all have the same pixel spacing.")
    if first.row_spacing <= 0 or first.column_spacing <= 0 or first.rows < 1 or first.columns < 1:
        raise NotAStack("The slices have no valid pixel spacing or size.")
    row = np.asarray(first.row_cosines)
    column = np.asarray(first.column_cosines)
    if abs(float(np.dot(row, column))) > ORIENTATION_TOLERANCE:
        raise NotAStack("The slices' row and column directions are not perpendicular.")
    normal = np.cross(row, column)
    normal /= np.linalg.norm(normal)
    positions = np.asarray([s.position for s in slices], dtype=np.float64)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    along = along[order]
    gaps = np.diff(along)
    if float(gaps.min()) <= SPACING_TOLERANCE_MM:
        raise NotAStack("Two slices are at the same position.")
    spacing = float((along[-1] - along[0]) / (len(slices) - 1))
    if float(np.abs(gaps - spacing).max()) > SPACING_TOLERANCE * spacing + SPACING_TOLERANCE_MM:
        raise NotAStack("The slices are not evenly spaced (a missing slice, or irregular spacing).")
    shifts = (positions[order] - positions[order[0]])
    if (float(np.abs(shifts @ row).max()) > IN_PLANE_TOLERANCE * first.column_spacing
            or float(np.abs(shifts @ column).max()) > IN_PLANE_TOLERANCE * first.row_spacing):
        raise NotAStack("The slices are shifted in their plane (a tilted gantry?): not one straight stack.")
    ox, oy, oz = (float(v) for v in positions[order[0]])
    nx, ny, nz = (float(v) + 0.0 for v in normal)
    stack = Stack(
        order=tuple(int(i) for i in order),
        origin=(ox, oy, oz),
        axes=(Axis((nx, ny, nz), spacing, len(slices)), Axis(first.column_cosines, first.row_spacing, first.rows),
              Axis(first.row_cosines, first.column_spacing, first.columns)),
    )
    stack.patient_axes  # noqa: B018 - refuses an oblique stack now rather than at the first plane
    return stack


def check_size(stack: Stack, max_bytes: int) -> None:
    """Refuse a volume of more than ``max_bytes`` (of float32 values)."""
    if stack.nbytes() > max_bytes:
        raise VolumeTooLarge(
            f"The volume would take {stack.nbytes() / 2**20:.0f} MiB; reformatting is limited to "
            f"{max_bytes / 2**20:.0f} MiB.")


# --------------------------------------------------------------------------- the values


def modality_values(frame: PreparedFrame, out: np.ndarray | None = None) -> np.ndarray:
    """A decoded grey frame's modality values (e.g. Hounsfield units) as float32 (into ``out``)."""
    if frame.is_color:
        raise NotAStack("Only grey images can be reformatted.")
    if out is None:
        out = np.empty(frame.pixels.shape, dtype=np.float32)
    modality = frame.modality
    if isinstance(modality, Rescale):  # slope * (index + offset) + intercept, without a float64 copy
        np.multiply(frame.pixels, np.float32(modality.slope), out=out, casting="unsafe")
        out += np.float32(modality.slope * frame.offset + modality.intercept)
    elif frame.entries:
        table = apply_modality_lut(np.arange(frame.offset, frame.offset + frame.entries), modality)
        np.take(table.astype(np.float32), frame.pixels, out=out)
    else:
        out[...] = apply_modality_lut(frame.pixels, modality)
    return out


def _integral(frame: PreparedFrame) -> bool:
    """True when the frame's modality values are integers (an integer rescale of integer pixels)."""
    modality = frame.modality
    return bool(frame.entries) and isinstance(modality, Rescale) and float(modality.slope).is_integer() \
        and float(modality.intercept).is_integer()


@dataclass(frozen=True, eq=False)
class Volume:
    """A stack's modality values, ``values[k, r, c]`` float32 (see the module's doc), with what
    rendering its planes needs: the VOI of its middle slice, MONOCHROME1, and whether every value is
    an integer (then a plane is rendered through a lookup table, as a stored frame is)."""

    values: np.ndarray
    stack: Stack
    voi: VOITransform | None
    inverted: bool
    integral: bool

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)

    @cached_property
    def value_range(self) -> tuple[float, float]:
        return float(self.values.min()), float(self.values.max())

    def plane(self, plane: str, index: int) -> np.ndarray:
        """``plane``/``index`` as float32 modality values (see :func:`reslice`)."""
        return reslice(self.values, self.stack.layout(plane), index)

    def prepared(self, plane: str, index: int) -> PreparedFrame:
        """``plane``/``index`` ready for :func:`viewer.imaging.render_prepared`: windowed like a
        stored frame, with the volume's VOI (else its full range) when the request gives none."""
        return self.prepared_block(plane, index, index + 1)[0]

    def prepared_block(self, plane: str, start: int, stop: int) -> list[PreparedFrame]:
        """Planes ``start .. stop - 1`` as :meth:`prepared` (see :func:`block_of`)."""
        return [self._prepared(values) for values in reslice_block(self.values, self.stack.layout(plane), start, stop)]

    def _prepared(self, values: np.ndarray) -> PreparedFrame:
        voi = self.voi or full_range_window(*self.value_range)
        if self.integral:
            low, high = self.value_range
            if high - low < 65536:
                indices = np.rint(values - low).astype(np.uint16 if high - low >= 256 else np.uint8)
                indices.flags.writeable = False
                return PreparedFrame(indices, offset=int(low), entries=int(high - low) + 1, voi=voi,
                                     inverted=self.inverted)
        values.flags.writeable = False
        return PreparedFrame(values, voi=voi, inverted=self.inverted)


def assemble(frames: Sequence[PreparedFrame], stack: Stack) -> Volume:
    """The volume of ``frames`` (in the order given to :func:`build_stack`), Modality LUT applied."""
    if len(frames) != stack.shape[0]:
        raise ValueError("one frame per slice of the stack")
    values = np.empty(stack.shape, dtype=np.float32)
    for k, i in enumerate(stack.order):
        frame = frames[i]
        if (frame.rows, frame.columns) != stack.shape[1:]:
            raise NotAStack("A slice's pixel data does not have its stated size.")
        modality_values(frame, out=values[k])
    values.flags.writeable = False
    middle = frames[stack.order[len(stack.order) // 2]]
    return Volume(values, stack, middle.voi, middle.inverted, all(_integral(f) for f in frames))


def _take(plane: np.ndarray, axis: int, size: int, sampling: tuple[float, float], resample: bool) -> np.ndarray:
    first, step = sampling
    if not resample:  # whole pixels: a view, reversed when the axis runs the other way
        return plane if step > 0 else np.flip(plane, axis)
    last = plane.shape[axis] - 1
    where = np.clip(first + step * np.arange(size), 0, last)
    below = np.minimum(np.floor(where).astype(np.intp), max(last - 1, 0))
    weight = (where - below).astype(np.float32)
    lower, upper = np.take(plane, below, axis=axis), np.take(plane, np.minimum(below + 1, last), axis=axis)
    shape = [1, 1]
    shape[axis] = size
    weight = weight.reshape(shape)
    return lower + (upper - lower) * weight


#: Planes across the array's last axis (sagittal planes of an axial acquisition: one value every row
#: of every slice) are cut this many at a time: one pass over the volume's memory serves them all for
#: about the cost of one (a cache line holds 16 float32 values).
BLOCK = 16


def block_of(layout: PlaneLayout, index: int) -> tuple[int, int]:
    """The planes cut together with ``index``: its aligned block across the array's last axis, else itself."""
    if layout.axes[0] != 2:
        return index, index + 1
    start = index - index % BLOCK
    return start, min(start + BLOCK, layout.count)


def reslice(values: np.ndarray, layout: PlaneLayout, index: int) -> np.ndarray:
    """Plane ``index`` of ``layout`` from ``values[k, r, c]``: float32 (rows, columns)."""
    return reslice_block(values, layout, index, index + 1)[0]


def reslice_block(values: np.ndarray, layout: PlaneLayout, start: int, stop: int) -> list[np.ndarray]:
    """Planes ``start .. stop - 1`` of ``layout`` from ``values[k, r, c]``: float32 (rows, columns) each."""
    for index in (start, stop - 1):
        if not 0 <= index < layout.count:
            raise PlaneOutOfRange(f"The {layout.plane} plane {index} does not exist; there are {layout.count} "
                                  f"(0 to {layout.count - 1}).")
    fixed, vertical, horizontal = layout.axes
    where: list[slice] = [slice(None)] * 3
    where[fixed] = slice(start, stop)
    slab = np.ascontiguousarray(np.moveaxis(values[tuple(where)], fixed, 0))  # one copy of the planes
    planes = []
    for plane in slab:  # the two other axes, in the array's order
        if vertical > horizontal:
            plane = plane.T  # (vertical, horizontal)
        plane = _take(plane, 0, layout.rows, layout.vertical, vertical == 0)
        plane = _take(plane, 1, layout.columns, layout.horizontal, horizontal == 0)
        planes.append(np.ascontiguousarray(plane, dtype=np.float32))
    return planes
