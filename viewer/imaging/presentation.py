"""Photometric interpretation to display pixels (PS3.3 C.7.6.3.1.2, C.7.6.3.1.5, C.7.9).

* MONOCHROME1 / MONOCHROME2: grey; MONOCHROME1 is displayed inverted (minimum value is white).
* PALETTE COLOR: stored values index the Red/Green/Blue Palette Color LUTs (8- or 16-bit entries,
  plain or segmented, via pydicom's ``apply_color_lut``).
* RGB, and YBR_FULL / YBR_FULL_422 / YBR_ICT / YBR_RCT which the decoder (see
  :func:`viewer.imaging.codecs.decode_frame`) already returned as RGB: scaled to 8 bits per
  sample from Bits Stored.
"""

from __future__ import annotations

import numpy as np
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut

from .errors import NotAnImage

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
#: Photometric interpretations whose decoded samples are RGB.
RGB_LIKE = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")


def is_inverted(photometric_interpretation: str) -> bool:
    """True when the minimum value is meant to be displayed white (MONOCHROME1, PS3.3 C.7.6.3.1.2)."""
    return photometric_interpretation == "MONOCHROME1"


def apply_presentation_lut(values: np.ndarray, *, inverted: bool) -> np.ndarray:
    """Apply the implicit Presentation LUT of an image (PS3.3 C.11.6): identity for MONOCHROME2,
    inversion of the 0-255 display range for MONOCHROME1."""
    return 255.0 - values if inverted else values


def to_display_bytes(values: np.ndarray) -> np.ndarray:
    """Round float display values to the nearest of 0..255 (uint8)."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _plain_palette_channel(ds: Dataset, colour: str, domain: np.ndarray, little: bool) -> np.ndarray:
    """Entries of one non-segmented Palette Color LUT for `domain` (PS3.3 C.7.6.3.1.5-6)."""
    count, first_mapped, _ = (int(v) for v in ds[f"{colour}PaletteColorLookupTableDescriptor"].value)
    count = count or 65536
    if first_mapped >= 32768 and ds.get("PixelRepresentation", 0) == 1:  # SS read as US
        first_mapped -= 65536
    raw = ds[f"{colour}PaletteColorLookupTableData"].value
    if len(raw) == count:  # 8-bit entries, one byte each
        data = np.frombuffer(raw, dtype=np.uint8)
    else:  # 16-bit words in the dataset's byte order
        data = np.frombuffer(raw, dtype="<u2" if little else ">u2")[:count]
    return data[np.clip(domain - first_mapped, 0, data.size - 1)]


def palette_lut(ds: Dataset, first: int, count: int, dtype: np.dtype) -> np.ndarray:
    """The RGB display colours of stored values ``first .. first + count - 1``, through the
    Palette Color Lookup Table Module (PS3.3 C.7.6.3.1.5-6; segmented tables C.7.9.2 are expanded
    by pydicom's ``apply_color_lut``).

    Returns
    -------
    numpy.ndarray
        uint8 array of shape (count, 3); 16-bit entries are scaled to 8 bits.

    Raises
    ------
    NotAnImage
        When the palette is missing or unreadable.
    """
    domain = np.arange(first, first + count, dtype=np.int64)
    little = uid.UID(ds.file_meta.TransferSyntaxUID).is_little_endian
    try:
        if "SegmentedRedPaletteColorLookupTableData" in ds:
            rgb = apply_color_lut(domain.astype(dtype), ds)[..., :3]
        else:
            rgb = np.stack(
                [_plain_palette_channel(ds, c, domain, little) for c in ("Red", "Green", "Blue")],
                axis=-1,
            )
    except (ValueError, AttributeError, TypeError, KeyError, IndexError) as exc:
        raise NotAnImage("The palette colour lookup tables are missing or unreadable.") from exc
    if int(rgb.max()) <= 255:
        # 8-bit entries, or 8-bit values some writers put in a 16-bit table.
        return rgb.astype(np.uint8)
    return to_display_bytes(rgb.astype(np.float64) * (255.0 / 65535.0))


def color_to_rgb8(pixels: np.ndarray, bits_stored: int) -> np.ndarray:
    """Scale decoded RGB samples of `bits_stored` bits to 8 bits per sample.

    Parameters
    ----------
    pixels : numpy.ndarray
        (Rows, Columns, 3) unsigned samples, already RGB.
    bits_stored : int
        Bits Stored (0028,0101).

    Returns
    -------
    numpy.ndarray
        C-contiguous uint8 (Rows, Columns, 3).
    """
    if pixels.dtype == np.uint8 and bits_stored == 8:
        return np.ascontiguousarray(pixels)
    top = float(2**bits_stored - 1)
    return to_display_bytes(pixels.astype(np.float64) * (255.0 / top))


def check_presentable(photometric_interpretation: str, samples_per_pixel: int) -> None:
    """Refuse photometric interpretations this pipeline cannot display.

    Raises
    ------
    NotAnImage
        For unknown or retired interpretations, or one that does not match Samples per Pixel.
    """
    if photometric_interpretation in (*MONOCHROME, "PALETTE COLOR") and samples_per_pixel == 1:
        return
    if photometric_interpretation in RGB_LIKE and samples_per_pixel == 3:
        return
    raise NotAnImage("The photometric interpretation is not supported for display.")
