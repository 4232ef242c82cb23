"""Reading an instance and decoding ONE frame of its pixel data (PS3.5 Section 8 and Annex A).

Decoding is delegated to pydicom 3's decoder registry (``pydicom.pixels.get_decoder``), whose
plugins are the installed pylibjpeg family (libjpeg, openjpeg, rle), pyjpegls and Pillow. This
module adds what a server needs around it:

* a table of the transfer syntaxes we render, by codec family, with a :func:`capabilities` report
  for documentation and the health endpoint;
* :class:`ImageHeader`, the Image Pixel Module (PS3.3 C.7.6.3) attributes parsed and validated;
* :class:`Limits` and a decompression-bomb check made from the header BEFORE any allocation;
* :func:`decode_frame`, which decodes a single frame (``index=frame - 1``) so a 120-frame
  ultrasound clip is never decoded whole to show one frame.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder

from .errors import (
    CorruptPixelData,
    FrameNotFound,
    ImageTooLarge,
    NotAnImage,
    UnsupportedTransferSyntax,
)

#: The transfer syntaxes this pipeline renders, mapped to their codec family.
TRANSFER_SYNTAX_FAMILIES: dict[str, str] = {
    uid.ImplicitVRLittleEndian: "native",
    uid.ExplicitVRLittleEndian: "native",
    uid.ExplicitVRBigEndian: "native",
    uid.DeflatedExplicitVRLittleEndian: "deflate",
    uid.RLELossless: "rle",
    uid.JPEGBaseline8Bit: "jpeg",
    uid.JPEGExtended12Bit: "jpeg",
    uid.JPEGLossless: "jpeg",
    uid.JPEGLosslessSV1: "jpeg",
    uid.JPEGLSLossless: "jpeg-ls",
    uid.JPEGLSNearLossless: "jpeg-ls",
    uid.JPEG2000Lossless: "jpeg2000",
    uid.JPEG2000: "jpeg2000",
    uid.HTJ2KLossless: "htj2k",
    uid.HTJ2KLosslessRPCL: "htj2k",
    uid.HTJ2K: "htj2k",
}

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True)
class Limits:
    """Memory limits checked from the header before decoding (decompression-bomb guard).

    Attributes
    ----------
    max_frame_bytes : int
        Largest decoded frame, ``Rows * Columns * SamplesPerPixel * ceil(BitsAllocated / 8)``.
    max_instance_bytes : int
        Largest decoded instance, the frame size times ``NumberOfFrames``.
    """

    max_frame_bytes: int = 256 * 2**20
    max_instance_bytes: int = 8 * 2**30


DEFAULT_LIMITS = Limits()


def is_available(transfer_syntax: str) -> bool:
    """True when `transfer_syntax` is one we render and an installed plugin can decode it."""
    if transfer_syntax not in TRANSFER_SYNTAX_FAMILIES:
        return False
    return get_decoder(transfer_syntax).is_available


def capabilities() -> list[dict[str, Any]]:
    """One row per supported transfer syntax: UID, name, family, availability and plugins.

    Returns
    -------
    list of dict
        Keys ``uid``, ``name``, ``family``, ``available`` (bool), ``plugins`` (installed decoding
        plugins, in pydicom's order of preference) and ``missing`` (plugins that could be
        installed). JSON-serialisable, for the documentation and the health endpoint.
    """
    rows = []
    for ts, family in TRANSFER_SYNTAX_FAMILIES.items():
        decoder = get_decoder(ts)
        rows.append(
            {
                "uid": str(ts),
                "name": uid.UID(ts).name,
                "family": family,
                "available": decoder.is_available,
                "plugins": list(decoder.available_plugins),
                "missing": list(decoder.missing_dependencies),
            }
        )
    return rows


def load_dataset(source: Dataset | bytes | str | os.PathLike[str]) -> Dataset:
    """Return `source` as a :class:`~pydicom.dataset.Dataset`, reading a PS3.10 file if needed.

    Raises
    ------
    CorruptPixelData
        When the bytes or the file are not a readable DICOM file.
    """
    if isinstance(source, Dataset):
        return source
    try:
        if isinstance(source, bytes | bytearray | memoryview):
            return pydicom.dcmread(io.BytesIO(bytes(source)))
        return pydicom.dcmread(source)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise CorruptPixelData("The file is not a readable DICOM file.") from exc


def _int_attribute(ds: Dataset, keyword: str, default: int | None = None) -> int:
    try:
        value = ds.get(keyword, default)
        if value is None or value == "":
            raise NotAnImage(f"The instance has no {keyword}.")
        return int(value)
    except (TypeError, ValueError) as exc:
        raise CorruptPixelData(f"The {keyword} attribute is not an integer.") from exc


@dataclass(frozen=True)
class ImageHeader:
    """The Image Pixel Module attributes (PS3.3 C.7.6.3) that drive decoding and presentation."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    number_of_frames: int
    photometric_interpretation: str
    pixel_keyword: str
    transfer_syntax: str

    @classmethod
    def from_dataset(cls, ds: Dataset) -> ImageHeader:
        """Parse and sanity-check the header of `ds`.

        Raises
        ------
        NotAnImage
            No pixel data element, or a required Image Pixel attribute is missing.
        CorruptPixelData
            An attribute is not a number, or its value is outside what PS3.3 allows.
        """
        keyword = next((kw for kw in _PIXEL_KEYWORDS if kw in ds), None)
        if keyword is None:
            raise NotAnImage("The instance has no pixel data.")
        meta = getattr(ds, "file_meta", None)
        transfer_syntax = meta.get("TransferSyntaxUID") if meta is not None else None
        if not transfer_syntax:
            raise CorruptPixelData("The file meta information has no transfer syntax.")
        header = cls(
            rows=_int_attribute(ds, "Rows"),
            columns=_int_attribute(ds, "Columns"),
            samples_per_pixel=_int_attribute(ds, "SamplesPerPixel", 1),
            bits_allocated=_int_attribute(ds, "BitsAllocated"),
            bits_stored=_int_attribute(ds, "BitsStored", ds.get("BitsAllocated")),
            pixel_representation=_int_attribute(ds, "PixelRepresentation", 0),
            number_of_frames=_int_attribute(ds, "NumberOfFrames", 1) or 1,
            photometric_interpretation=str(ds.get("PhotometricInterpretation", "")).strip(),
            pixel_keyword=keyword,
            transfer_syntax=str(transfer_syntax),
        )
        header._validate()
        return header

    def _validate(self) -> None:
        if self.rows < 1 or self.columns < 1 or self.number_of_frames < 1:
            raise CorruptPixelData("Rows, Columns and Number of Frames must be positive.")
        if self.samples_per_pixel not in (1, 3):
            raise CorruptPixelData("Samples per Pixel must be 1 or 3.")
        if self.bits_allocated not in (1, 8, 16, 32, 64):
            raise CorruptPixelData("Bits Allocated must be 1, 8, 16, 32 or 64.")
        if not 1 <= self.bits_stored <= self.bits_allocated:
            raise CorruptPixelData("Bits Stored must be between 1 and Bits Allocated.")
        if self.pixel_representation not in (0, 1):
            raise CorruptPixelData("Pixel Representation must be 0 or 1.")

    @property
    def frame_bytes(self) -> int:
        """Decoded size of one frame in bytes (1-bit data is unpacked to one byte per pixel)."""
        bytes_per_sample = max(1, self.bits_allocated // 8)
        return self.rows * self.columns * self.samples_per_pixel * bytes_per_sample


def check_limits(header: ImageHeader, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse to decode an instance whose declared size exceeds `limits` (nothing is allocated).

    Raises
    ------
    ImageTooLarge
        When one frame, or all frames together, would be larger than allowed.
    """
    if header.frame_bytes > limits.max_frame_bytes:
        raise ImageTooLarge(
            f"A decoded frame would take {header.frame_bytes} bytes; "
            f"the limit is {limits.max_frame_bytes}."
        )
    total = header.frame_bytes * header.number_of_frames
    if total > limits.max_instance_bytes:
        raise ImageTooLarge(
            f"The decoded instance would take {total} bytes; "
            f"the limit is {limits.max_instance_bytes}."
        )


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame and the photometric interpretation of the returned samples."""

    pixels: np.ndarray
    photometric_interpretation: str


_NATIVE_LITTLE_ENDIAN = {uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian}


def _native_grey_frame(ds: Dataset, header: ImageHeader, frame: int) -> np.ndarray | None:
    """Frame `frame` of complete, uncompressed little-endian 8/16-bit grey pixel data, or None.

    The most common stored form (CT, MR, CR as sent by modalities and most archives), read straight
    from the Pixel Data bytes: pydicom's decoder machinery costs several times the work itself, all
    of it holding the GIL. Unused high bits are cleared (unsigned) or sign-extended from Bits Stored
    (signed), as ``correct_unused_bits`` does (PS3.5 8.1.1). Anything else (other syntaxes, colour,
    palette, 1/32/64-bit, float, or Pixel Data shorter than declared) returns None and goes through
    pydicom, which also produces the errors.
    """
    if (
        header.transfer_syntax not in _NATIVE_LITTLE_ENDIAN
        or header.pixel_keyword != "PixelData"
        or header.samples_per_pixel != 1
        or header.bits_allocated not in (8, 16)
        or header.photometric_interpretation not in ("MONOCHROME1", "MONOCHROME2")
    ):
        return None
    data = ds.PixelData
    if not isinstance(data, bytes) or len(data) < header.frame_bytes * header.number_of_frames:
        return None
    kind = "i" if header.pixel_representation else "u"
    pixels = np.frombuffer(
        data, f"<{kind}{header.bits_allocated // 8}", header.rows * header.columns, (frame - 1) * header.frame_bytes
    ).reshape(header.rows, header.columns)
    unused = header.bits_allocated - header.bits_stored
    if unused == 0:
        return pixels.astype(pixels.dtype.newbyteorder("="))  # a writeable array of native order
    if header.pixel_representation:
        extended = np.right_shift(np.left_shift(pixels, unused), unused)
        return extended.astype(extended.dtype.newbyteorder("="), copy=False)
    masked = np.bitwise_and(pixels, (1 << header.bits_stored) - 1)
    return masked.astype(masked.dtype.newbyteorder("="), copy=False)


def decode_frame(
    ds: Dataset, frame: int, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[ImageHeader, DecodedFrame]:
    """Decode only frame number `frame` (1-based, as in WADO-RS) of `ds`.

    Unused high bits are cleared and signed values sign-extended (Bits Stored, PS3.5 8.1.1);
    YBR_FULL and YBR_FULL_422 samples are returned as RGB (PS3.3 C.7.6.3.1.2), as are the
    YBR_ICT/YBR_RCT colour transforms of JPEG 2000; planar configuration 1 is interleaved.

    Parameters
    ----------
    ds : Dataset
        The instance.
    frame : int
        1-based frame number.
    limits : Limits
        Decompression-bomb limits, checked before decoding.

    Returns
    -------
    tuple of (ImageHeader, DecodedFrame)
        The parsed header and the frame, shaped (Rows, Columns) or (Rows, Columns, 3).

    Raises
    ------
    NotAnImage, CorruptPixelData, FrameNotFound, UnsupportedTransferSyntax, ImageTooLarge
    """
    header = ImageHeader.from_dataset(ds)
    if not 1 <= frame <= header.number_of_frames:
        raise FrameNotFound(f"Frame {frame} is outside 1..{header.number_of_frames}.")
    if not is_available(header.transfer_syntax):
        raise UnsupportedTransferSyntax(
            f"No installed decoder for transfer syntax {header.transfer_syntax}."
        )
    check_limits(header, limits)
    native = _native_grey_frame(ds, header, frame)
    if native is not None:
        return header, DecodedFrame(native, header.photometric_interpretation)
    try:
        options: Any = {"as_rgb": True, "correct_unused_bits": True}  # typed as DecodeOptions upstream
        pixels, meta = get_decoder(header.transfer_syntax).as_array(ds, index=frame - 1, **options)
    except (ValueError, RuntimeError, AttributeError, NotImplementedError, KeyError) as exc:
        raise CorruptPixelData(f"The pixel data of frame {frame} could not be decoded.") from exc
    expected: tuple[int, ...] = (header.rows, header.columns)
    if header.samples_per_pixel == 3:
        expected += (3,)
    if pixels.shape != expected:
        raise CorruptPixelData(f"Frame {frame} decoded to an unexpected shape.")
    if not pixels.dtype.isnative:
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    photometric = str(meta.get("photometric_interpretation", header.photometric_interpretation))
    return header, DecodedFrame(pixels, photometric)
