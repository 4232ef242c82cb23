"""Pixel data for WADO-RS: uncompressed frames, bulk data and transcoding. No Django here."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian

PIXEL_DATA = 0x7FE00010
NATIVE_LITTLE_ENDIAN = {UID("1.2.840.10008.1.2"), UID("1.2.840.10008.1.2.1")}
_DECIMAL = re.compile(r"[0-9]{1,10}")  # (int() also takes "+1", "1_0" and thousands of digits)


class FrameError(ValueError):
    """A frame request that cannot be answered; ``status`` is the HTTP status to use."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def number_of_frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def parse_frame_list(text: str, available: int) -> list[int]:
    """``"1,3,5"`` → ``[1, 3, 5]``: one or more non-duplicate frame numbers, 1-based (PS3.18 8.3.2).

    The list is checked before any frame is read, so that an answer holds each of the instance's
    frames at most once: more numbers than the instance has frames, a number given twice or one
    that is not a plain decimal is a 400; a frame the instance does not have is a 404.
    """
    fields = [part.strip() for part in text.split(",")]
    fields = [field for field in fields if field]
    if not fields:
        raise FrameError("No frame numbers given.")
    if len(fields) > available:
        raise FrameError(f"The list names {len(fields)} frames; the instance has {available}.")
    if not all(_DECIMAL.fullmatch(field) for field in fields):
        raise FrameError("Frame numbers must be positive integers separated by commas.")
    frames = [int(field) for field in fields]
    seen: set[int] = set()
    for number in frames:
        if number in seen:
            raise FrameError(f"Frame {number} is listed more than once.")
        seen.add(number)
    out_of_range = [n for n in frames if n < 1 or n > available]
    if out_of_range:
        raise FrameError(f"Frame {out_of_range[0]} does not exist; the instance has {available} frame(s).", 404)
    return frames


def frame_bytes(ds: Dataset, frame: int) -> bytes:
    """One frame as uncompressed little-endian bytes (``application/octet-stream``).

    Native little-endian data is sliced as stored; anything else (big endian, compressed,
    1-bit) is decoded by pydicom, colour JPEGs arriving as RGB as pydicom returns them.
    """
    if "PixelData" not in ds:
        raise FrameError("The instance has no Pixel Data.", 404)
    syntax = ds.file_meta.TransferSyntaxUID
    bits = int(ds.BitsAllocated)
    if syntax in NATIVE_LITTLE_ENDIAN and bits % 8 == 0:
        size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * bits // 8
        start = (frame - 1) * size
        data = ds.PixelData[start : start + size]
        if len(data) != size:
            raise FrameError("The stored Pixel Data is shorter than its frames.", 422)
        return bytes(data)
    try:
        array = pydicom.pixels.pixel_array(ds, index=frame - 1)
    except Exception as exc:  # decoders raise many kinds on damaged or unsupported data
        raise FrameError(f"The frame cannot be decoded ({type(exc).__name__}).", 422) from None
    return _little_endian(array).tobytes()


def _little_endian(array: np.ndarray) -> np.ndarray:
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and not np.little_endian):
        return array.astype(array.dtype.newbyteorder("<"))
    return array


def pixel_data_frames(ds: Dataset) -> Iterator[bytes]:
    """Pixel Data as bulk data, one uncompressed frame after another, each made when asked for."""
    for number in range(1, number_of_frames(ds) + 1):
        yield frame_bytes(ds, number)


def element_bytes(ds: Dataset, tag: int) -> bytes | None:
    """The value of a binary element, found at the top level or else in nested sequences."""
    if tag == PIXEL_DATA:
        return b"".join(pixel_data_frames(ds))
    found: list[bytes] = []

    def visit(_ds: Dataset, elem: pydicom.DataElement) -> None:
        if not found and elem.tag == tag and isinstance(elem.value, bytes | bytearray):
            found.append(bytes(elem.value))

    if tag in ds and isinstance(ds[tag].value, bytes | bytearray):
        return bytes(ds[tag].value)
    ds.walk(visit)
    return found[0] if found else None


def to_explicit_vr_little_endian(data: bytes) -> bytes:
    """Transcode a PS3.10 file to Explicit VR Little Endian (the default of PS3.18 8.7.3.5.2)."""
    ds = pydicom.dcmread(io.BytesIO(data))
    syntax = ds.file_meta.TransferSyntaxUID
    if syntax == ExplicitVRLittleEndian:
        return data
    if "PixelData" in ds and (syntax.is_compressed or not syntax.is_little_endian):
        if syntax.is_compressed:
            ds.decompress()
        else:
            array = ds.pixel_array
            ds.PixelData = _little_endian(array).tobytes()
            ds["PixelData"].VR = "OW" if int(ds.BitsAllocated) > 8 else "OB"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
