"""From a stored instance and a frame number to the 8-bit pixels a reader sees.

Two stages:

1. :func:`prepare_frame` decodes ONE frame and keeps what every later rendering of it needs: for
   grey images the stored values as offsets ``stored - minimum`` (uint8/uint16) plus the Modality
   LUT, the file's VOI and the inversion flag; for colour images the final RGB bytes. The result,
   a :class:`PreparedFrame`, is immutable and is what :class:`~viewer.imaging.cache.FrameCache`
   holds.
2. :func:`render_prepared` applies a window and a viewport. For integer data it builds a lookup
   table from stored value to display byte (Modality LUT -> VOI -> Presentation LUT, PS3.4 N.2)
   over the frame's value range only, then applies it with one ``np.take``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

from .cache import FrameCache
from .codecs import DEFAULT_LIMITS, Limits, decode_frame, load_dataset
from .geometry import Region, Viewport
from .lut import (
    ModalityTransform,
    Rescale,
    VOITransform,
    Window,
    apply_modality_lut,
    apply_voi,
    file_voi,
    full_range_window,
    modality_transform,
)
from .errors import NotAnImage
from .presentation import (
    MONOCHROME,
    apply_presentation_lut,
    check_presentable,
    color_to_rgb8,
    is_inverted,
    palette_lut,
    to_display_bytes,
)

#: Widest stored-value range rendered through a lookup table (larger ranges use float math).
MAX_LUT_ENTRIES = 65536


@dataclass(frozen=True, eq=False)
class PreparedFrame:
    """One decoded frame, ready to be rendered with any window and viewport.

    Attributes
    ----------
    pixels : numpy.ndarray
        Grey: ``stored - offset`` as uint8/uint16 (lookup path) or the stored values (float path).
        Colour: uint8 (Rows, Columns, 3) RGB.
    offset : int
        Stored value of index 0 of the lookup path (the frame minimum).
    entries : int
        Lookup table size, ``max index + 1``; 0 for colour and float-path frames.
    modality : Rescale or LookupTable
        Modality LUT (grey only).
    voi : Window or LookupTable or None
        The file's VOI (grey only).
    inverted : bool
        MONOCHROME1.
    """

    pixels: np.ndarray
    offset: int = 0
    entries: int = 0
    modality: ModalityTransform = Rescale()
    voi: VOITransform | None = None
    inverted: bool = False

    @property
    def is_color(self) -> bool:
        """True for RGB output (colour and palette images)."""
        return self.pixels.ndim == 3

    @property
    def rows(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def columns(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def nbytes(self) -> int:
        """Memory held, for the cache budget."""
        return int(self.pixels.nbytes)

    @functools.cached_property
    def value_range(self) -> tuple[float, float]:
        """(min, max) of the frame's modality values, for the full-range VOI."""
        if self.entries:
            # Index 0 and entries - 1 are present by construction; a LUT needs every value.
            present = np.array([0, self.entries - 1])
            if not isinstance(self.modality, Rescale):
                present = np.flatnonzero(np.bincount(self.pixels.ravel(), minlength=self.entries))
            values = apply_modality_lut(present + self.offset, self.modality)
        else:
            values = apply_modality_lut(self.pixels, self.modality)
        return float(np.nanmin(values)), float(np.nanmax(values))


def _lut_indices(pixels: np.ndarray, low: int, index_type: type[np.unsignedinteger]) -> np.ndarray:
    """``pixels - low`` as ``index_type``, for integer pixels whose range fits ``index_type``.

    8- and 16-bit pixels (nearly every image) are subtracted in the unsigned type of their own
    width, wrapping modulo 2**bits: exact, because the true difference is in 0 .. 2**bits - 1,
    and it avoids a 64-bit temporary four times the frame's size.
    """
    if pixels.dtype.itemsize <= 2:
        unsigned = np.dtype(f"u{pixels.dtype.itemsize}")
        wrapped = np.subtract(pixels.view(unsigned), unsigned.type(low % (1 << (8 * unsigned.itemsize))))
        return wrapped if wrapped.dtype == index_type else wrapped.astype(index_type)
    return np.subtract(pixels, low, dtype=np.int64).astype(index_type)


def _freeze(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def prepare_frame(ds: Dataset, frame: int = 1, *, limits: Limits = DEFAULT_LIMITS) -> PreparedFrame:
    """Decode frame `frame` (1-based) of `ds` and keep what rendering it needs.

    Raises
    ------
    RenderError
        Any subclass: see :func:`viewer.imaging.codecs.decode_frame`; :class:`NotAnImage` for a
        photometric interpretation that cannot be displayed.
    """
    header, decoded = decode_frame(ds, frame, limits=limits)
    photometric = decoded.photometric_interpretation
    check_presentable(photometric, header.samples_per_pixel)
    pixels = decoded.pixels
    if header.samples_per_pixel == 3:
        return PreparedFrame(_freeze(color_to_rgb8(pixels, header.bits_stored)))
    is_integer = pixels.dtype.kind in "iub"
    if is_integer:
        low, high = int(pixels.min()), int(pixels.max())
        if high - low < MAX_LUT_ENTRIES:
            index_type = np.uint8 if high - low < 256 else np.uint16
            indices = _lut_indices(pixels, low, index_type)
            entries = high - low + 1
            if photometric not in MONOCHROME:  # PALETTE COLOR
                rgb = palette_lut(ds, low, entries, pixels.dtype)[indices]
                return PreparedFrame(_freeze(rgb))
            return PreparedFrame(
                _freeze(indices),
                offset=low,
                entries=entries,
                modality=modality_transform(ds, frame),
                voi=file_voi(ds, frame),
                inverted=is_inverted(photometric),
            )
    if photometric not in MONOCHROME:
        raise NotAnImage("The palette colour indices are out of range.")
    return PreparedFrame(
        _freeze(np.ascontiguousarray(pixels)),
        modality=modality_transform(ds, frame),
        voi=file_voi(ds, frame),
        inverted=is_inverted(photometric),
    )


def downscale_prepared(frame: PreparedFrame, region: Region) -> PreparedFrame:
    """The `region` of `frame`, averaged down to the region's output size, before any VOI.

    Grey frames average their stored values (a box filter, in float32, rounded back to the
    lookup-table indices), so that any window is then applied to the small image: what GPU viewers
    do when they sample raw values and window them. Colour frames average their RGB bytes. Cache
    the result per (frame, region): every later window costs one lookup over the output pixels.

    Raises
    ------
    ValueError
        If `region` does not scale down.
    """
    if not region.downscales:
        raise ValueError("The region does not scale down.")
    source = region.crop(frame.pixels)
    if frame.is_color:
        return dataclasses.replace(frame, pixels=_freeze(region.scale(source)))
    size = (region.out_width, region.out_height)
    averaged = np.asarray(
        Image.fromarray(np.ascontiguousarray(source, dtype=np.float32), "F").resize(size, Image.Resampling.BOX)
    )
    pixels = np.rint(averaged).astype(frame.pixels.dtype) if frame.entries else averaged
    return dataclasses.replace(frame, pixels=_freeze(pixels))


def _display(stored: np.ndarray, frame: PreparedFrame, voi: VOITransform) -> np.ndarray:
    """Stored values -> Modality LUT -> VOI -> Presentation LUT -> uint8 (PS3.4 N.2)."""
    values = apply_voi(apply_modality_lut(stored, frame.modality), voi)
    return to_display_bytes(apply_presentation_lut(values, inverted=frame.inverted))


def grey_lookup_table(frame: PreparedFrame, voi: VOITransform) -> np.ndarray:
    """The uint8 display value of every stored value ``offset .. offset + entries - 1``."""
    stored = np.arange(frame.offset, frame.offset + frame.entries, dtype=np.float64)
    return _display(stored, frame, voi)


def auto_window(frame: PreparedFrame) -> Window | None:
    """The window :func:`render_prepared` uses when neither the request nor the file gives one: the
    frame's full range of modality values present (a ``linear-exact`` window); ``None`` for colour
    frames and frames with a VOI of their own. The viewer shows it as the window in force ("auto")
    and starts a window drag from it."""
    if frame.is_color or frame.voi is not None:
        return None
    return full_range_window(*frame.value_range)


def render_prepared(
    frame: PreparedFrame, *, window: Window | None = None, viewport: Viewport | None = None
) -> np.ndarray:
    """Render a prepared frame: VOI (the request's `window`, else the file's, else the frame's
    full range), presentation, then the viewport.

    Returns
    -------
    numpy.ndarray
        uint8, (H, W) grey or (H, W, 3) RGB. A window is ignored for colour images.
    """
    region = viewport.resolve(frame.columns, frame.rows) if viewport else None
    source = region.crop(frame.pixels) if region else frame.pixels
    if frame.is_color:
        image = source
    else:
        voi = window or frame.voi or full_range_window(*frame.value_range)  # auto_window(frame)
        if frame.entries:
            image = np.take(grey_lookup_table(frame, voi), source)
        else:
            image = _display(source, frame, voi)
    return region.scale(image) if region else np.ascontiguousarray(image)


def render_frame(
    source: Dataset | bytes | str | os.PathLike[str],
    frame: int = 1,
    *,
    window: Window | None = None,
    viewport: Viewport | None = None,
    cache: FrameCache[PreparedFrame] | None = None,
    key: Hashable | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> np.ndarray:
    """Render frame `frame` (1-based) of an instance to 8-bit display pixels.

    Parameters
    ----------
    source : Dataset, bytes or path
        The instance (a PS3.10 file's bytes or path is read with pydicom).
    frame : int
        1-based frame number, as in WADO-RS.
    window : Window, optional
        VOI window from the request (PS3.3 C.11.2.1.2); default: the file's VOI, else full range.
    viewport : Viewport, optional
        Source region and output size (PS3.18 8.3.5.1.3).
    cache : FrameCache, optional
        Decoded-frame cache; used only together with `key`.
    key : hashable, optional
        Identifies the instance in `cache` (e.g. its SOP Instance UID and storage version); the
        cache key is ``(key, frame)``. On a hit `source` is not read at all.
    limits : Limits
        Decompression-bomb limits.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W) grey or (H, W, 3) RGB.

    Raises
    ------
    RenderError
        A subclass with a ``status`` for the HTTP answer.
    """
    prepared = cache.get((key, frame)) if cache is not None and key is not None else None
    if prepared is None:
        prepared = prepare_frame(load_dataset(source), frame, limits=limits)
        if cache is not None and key is not None:
            cache.put((key, frame), prepared)
    return render_prepared(prepared, window=window, viewport=viewport)
