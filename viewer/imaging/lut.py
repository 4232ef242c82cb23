"""Modality LUT (PS3.3 C.11.1) and VOI LUT (PS3.3 C.11.2) transformations.

The grey-scale pipeline of PS3.4 N.2 is: stored values -> Modality LUT -> VOI LUT -> Presentation
LUT -> P-values. The functions here work on float arrays so the same code serves two purposes:
applied to every possible stored value once, they build the lookup table of the fast path
(:mod:`viewer.imaging.render`); applied to pixels directly, they render data too wide for a table.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .errors import InvalidWindow

WindowFunction = Literal["linear", "linear-exact", "sigmoid"]

#: Window functions of PS3.3 C.11.2.1.2, by WADO-RS name (PS3.18 8.3.5.1.4) and DICOM term.
_FUNCTIONS: dict[str, WindowFunction] = {
    "linear": "linear",
    "linear-exact": "linear-exact",
    "linear_exact": "linear-exact",
    "sigmoid": "sigmoid",
}

#: A window centre or width beyond this magnitude is refused as absurd.
MAX_WINDOW_MAGNITUDE = 1e15


@dataclass(frozen=True)
class Rescale:
    """A linear Modality LUT, ``value = slope * stored + intercept`` (PS3.3 C.11.1.1.2)."""

    slope: float = 1.0
    intercept: float = 0.0


@dataclass(frozen=True, eq=False)
class LookupTable:
    """A Modality or VOI LUT from a LUT Sequence item (PS3.3 C.11.1.1.1).

    Attributes
    ----------
    first_mapped : int
        The input value mapped to ``data[0]`` (second value of LUT Descriptor).
    data : numpy.ndarray
        The LUT Data entries, as integers.
    bits : int
        Bits per entry (third value of LUT Descriptor); a VOI LUT's output range is
        ``0 .. 2**bits - 1``.
    """

    first_mapped: int
    data: np.ndarray
    bits: int


@dataclass(frozen=True)
class Window:
    """A VOI window (PS3.3 C.11.2.1.2): centre, width and VOI LUT Function.

    Raises
    ------
    InvalidWindow
        For a non-finite or absurd centre or width, an unknown function, a width below 1 for
        ``linear`` or not above 0 for ``linear-exact`` and ``sigmoid``.
    """

    center: float
    width: float
    function: WindowFunction = "linear"

    def __post_init__(self) -> None:
        function = _FUNCTIONS.get(str(self.function).strip().lower())
        if function is None:
            raise InvalidWindow("The window function must be linear, linear-exact or sigmoid.")
        object.__setattr__(self, "function", function)
        for name in ("center", "width"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidWindow(f"The window {name} must be a finite number.")
            if abs(value) > MAX_WINDOW_MAGNITUDE:
                raise InvalidWindow(f"The window {name} is out of range.")
        if function == "linear" and self.width < 1:
            raise InvalidWindow("A linear window needs a width of at least 1.")
        if self.width <= 0:
            raise InvalidWindow("The window width must be positive.")


VOITransform = Window | LookupTable
ModalityTransform = Rescale | LookupTable


def parse_window(text: str) -> Window:
    """Parse the WADO-RS ``window=center,width,function`` parameter (PS3.18 8.3.5.1.4).

    The function is optional and defaults to ``linear``.

    Raises
    ------
    InvalidWindow
        When the text is not two numbers and an optional function name, or the window is invalid.
    """
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (2, 3):
        raise InvalidWindow("The window parameter must be center,width[,function].")
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError as exc:
        raise InvalidWindow("The window center and width must be numbers.") from exc
    return Window(center, width, parts[2] if len(parts) == 3 else "linear")  # type: ignore[arg-type]


def _lut_from_item(item: Dataset, *, signed_input: bool) -> LookupTable | None:
    """Read LUT Descriptor and LUT Data of a Modality or VOI LUT Sequence item (PS3.3 C.11.1.1.1)."""
    descriptor = item.get("LUTDescriptor")
    if descriptor is None or "LUTData" not in item or len(descriptor) != 3:
        return None
    count, first_mapped, bits = (int(value) for value in descriptor)
    count = count or 65536  # 0 means 2**16 entries
    if signed_input and first_mapped >= 32768:  # an SS value read as US
        first_mapped -= 65536
    raw = item.LUTData
    if isinstance(raw, bytes):
        # OW: 16-bit words in the dataset's byte order.
        little = getattr(item, "original_encoding", (None, True))[1] is not False
        data = np.asarray(struct.unpack(f"{'<' if little else '>'}{len(raw) // 2}H", raw))
    else:
        data = np.asarray(raw if isinstance(raw, list | tuple) else [raw])
    if data.size < count:
        return None
    return LookupTable(first_mapped, data[:count].astype(np.int64), bits)


def functional_group(ds: Dataset, frame: int, keyword: str) -> Dataset | None:
    """The `keyword` macro item that applies to `frame` of an enhanced multi-frame instance: from
    its Per-Frame Functional Groups Sequence, else its Shared one (PS3.3 C.7.6.16), else None."""
    for groups_keyword, index in (
        ("PerFrameFunctionalGroupsSequence", frame - 1),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        groups = ds.get(groups_keyword)
        if groups and 0 <= index < len(groups):
            sequence = groups[index].get(keyword)
            if sequence:
                return sequence[0]
    return None


def modality_transform(ds: Dataset, frame: int = 1) -> ModalityTransform:
    """The Modality LUT of `frame` of `ds` (PS3.3 C.11.1): its Modality LUT Sequence, else Rescale
    Slope and Intercept (of the Pixel Value Transformation functional group, PS3.3 C.7.6.16.2.9,
    for enhanced multi-frame instances), else the identity."""
    sequence = ds.get("ModalityLUTSequence")
    if sequence:
        table = _lut_from_item(sequence[0], signed_input=ds.get("PixelRepresentation", 0) == 1)
        if table is not None:
            return table
    source = functional_group(ds, frame, "PixelValueTransformationSequence") or ds
    try:
        slope = float(source.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(source.get("RescaleIntercept", 0.0) or 0.0)
    except (TypeError, ValueError):
        return Rescale()
    if not (math.isfinite(slope) and math.isfinite(intercept)) or slope == 0:
        return Rescale()
    return Rescale(slope, intercept)


def _first(value: object) -> object:
    """The first value of a multi-valued element (Window Center/Width may hold several)."""
    if isinstance(value, MultiValue | list | tuple):
        return value[0] if len(value) else None
    return value


def file_voi(ds: Dataset, frame: int = 1) -> VOITransform | None:
    """The VOI the instance asks for (PS3.3 C.11.2): its first Window Center/Width with the VOI LUT
    Function (of the Frame VOI LUT functional group, PS3.3 C.7.6.16.2.10, for enhanced
    multi-frame instances), else the first VOI LUT Sequence item, else ``None``. Invalid values
    are skipped."""
    source = functional_group(ds, frame, "FrameVOILUTSequence") or ds
    if "WindowCenter" in source and "WindowWidth" in source:
        try:
            center = float(_first(source.WindowCenter))  # type: ignore[arg-type]
            width = float(_first(source.WindowWidth))  # type: ignore[arg-type]
            function = str(source.get("VOILUTFunction", "LINEAR") or "LINEAR")
            return Window(center, width, function)  # type: ignore[arg-type]
        except (TypeError, ValueError, InvalidWindow):
            pass
    sequence = ds.get("VOILUTSequence")
    if sequence:
        return _lut_from_item(sequence[0], signed_input=ds.get("PixelRepresentation", 0) == 1)
    return None


def _apply_lookup(values: np.ndarray, table: LookupTable) -> np.ndarray:
    """Look `values` up in `table`: below the first mapped value -> first entry, past the end ->
    last entry (PS3.3 C.11.1.1.1)."""
    index = np.clip(np.floor(values) - table.first_mapped, 0, table.data.size - 1).astype(np.intp)
    return table.data[index].astype(np.float64)


def apply_modality_lut(values: np.ndarray, transform: ModalityTransform) -> np.ndarray:
    """Apply the Modality LUT (PS3.3 C.11.1) to stored values.

    Parameters
    ----------
    values : numpy.ndarray
        Stored pixel values (any numeric dtype).
    transform : Rescale or LookupTable
        From :func:`modality_transform`.

    Returns
    -------
    numpy.ndarray
        Modality values (e.g. Hounsfield units) as float64.
    """
    if isinstance(transform, LookupTable):
        return _apply_lookup(values, transform)
    result = np.asarray(values, dtype=np.float64)
    if transform.slope != 1.0:
        result = result * transform.slope
    if transform.intercept != 0.0:
        result = result + transform.intercept
    return result


def apply_windowing(
    values: np.ndarray, window: Window, *, y_min: float = 0.0, y_max: float = 255.0
) -> np.ndarray:
    """Apply a VOI window with its VOI LUT Function (PS3.3 C.11.2.1.2, C.11.2.1.3).

    * ``linear`` (C.11.2.1.2.1): ``x <= c - 0.5 - (w-1)/2`` -> y_min; ``x > c - 0.5 + (w-1)/2``
      -> y_max; else ``((x - (c - 0.5)) / (w-1) + 0.5) * (y_max - y_min) + y_min``.
    * ``linear-exact`` (C.11.2.1.3.2): ``x <= c - w/2`` -> y_min; ``x > c + w/2`` -> y_max; else
      ``((x - c) / w + 0.5) * (y_max - y_min) + y_min``.
    * ``sigmoid`` (C.11.2.1.3.1): ``(y_max - y_min) / (1 + exp(-4 (x - c) / w)) + y_min``.

    Parameters
    ----------
    values : numpy.ndarray
        Modality values.
    window : Window
        Centre, width and function.
    y_min, y_max : float
        Output range, 0-255 for 8-bit display.

    Returns
    -------
    numpy.ndarray
        float64 values in ``[y_min, y_max]``.
    """
    x = np.asarray(values, dtype=np.float64)
    c, w = window.center, window.width
    span = y_max - y_min
    if window.function == "sigmoid":
        with np.errstate(over="ignore"):
            return span / (1.0 + np.exp(-4.0 * (x - c) / w)) + y_min
    if window.function == "linear-exact":
        return np.clip(((x - c) / w + 0.5) * span + y_min, y_min, y_max)
    if w == 1:  # a threshold at c - 0.5
        return np.where(x > c - 0.5, y_max, y_min).astype(np.float64)
    # The clip implements both tails: the ramp reaches y_min/y_max exactly at the bounds.
    return np.clip(((x - (c - 0.5)) / (w - 1) + 0.5) * span + y_min, y_min, y_max)


def apply_voi_lut(
    values: np.ndarray, table: LookupTable, *, y_min: float = 0.0, y_max: float = 255.0
) -> np.ndarray:
    """Apply a VOI LUT Sequence item (PS3.3 C.11.2.1.1) and scale its output range
    ``0 .. 2**bits - 1`` to ``[y_min, y_max]``.

    Some files declare fewer bits than their entries use; the range then follows the largest
    entry (as dcmtk does) so the image is not saturated.
    """
    looked_up = _apply_lookup(values, table)
    top = max(2**table.bits - 1, 2 ** int(table.data.max()).bit_length() - 1, 1)
    return looked_up / top * (y_max - y_min) + y_min


def apply_voi(
    values: np.ndarray, voi: VOITransform, *, y_min: float = 0.0, y_max: float = 255.0
) -> np.ndarray:
    """Apply a VOI transformation (PS3.3 C.11.2), a :class:`Window` or a VOI :class:`LookupTable`."""
    if isinstance(voi, LookupTable):
        return apply_voi_lut(values, voi, y_min=y_min, y_max=y_max)
    return apply_windowing(values, voi, y_min=y_min, y_max=y_max)


def full_range_window(low: float, high: float) -> Window:
    """A ``linear-exact`` window mapping ``low`` to black and ``high`` to white (a constant frame
    maps to black): the VOI used when neither the request nor the file gives one."""
    if high <= low:
        high = low + 1.0
    return Window((low + high) / 2.0, high - low, "linear-exact")
