"""An independent reference renderer written straight from the PS3.3 text, for the tests.

Deliberately naive: float math per pixel, ``np.where`` chains copied from the standard's
pseudo-code, LUTs read from the raw elements. It shares no code with ``viewer.imaging``; decoding
is pydicom's (decoding is not what the reference checks).
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import get_decoder

Y_MIN, Y_MAX = 0.0, 255.0


def decode(ds: Dataset, frame: int) -> tuple[np.ndarray, str]:
    """Frame `frame` (1-based) as pydicom decodes it WITHOUT colour conversion, and its
    photometric interpretation as reported by the decoder."""
    arr, meta = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds, index=frame - 1, raw=True)
    return arr.astype(arr.dtype.newbyteorder("=")), str(meta["photometric_interpretation"])


def _us_values(element_value: object, little_endian: bool, signed: bool = False) -> np.ndarray:
    if isinstance(element_value, bytes):
        dtype = ("<" if little_endian else ">") + ("i2" if signed else "u2")
        return np.frombuffer(element_value, dtype=dtype).astype(np.float64)
    if isinstance(element_value, int):
        return np.array([element_value], dtype=np.float64)
    return np.array(list(element_value), dtype=np.float64)


def _lut_lookup(x: np.ndarray, item: Dataset, little_endian: bool, signed_first: bool) -> tuple[np.ndarray, int]:
    n, first, bits = (int(v) for v in item.LUTDescriptor)
    n = n or 65536
    if signed_first and first > 32767:
        first -= 65536
    data = _us_values(item.LUTData, little_endian)[:n]
    # "values below the first mapped value map to the first entry, above the last to the last"
    out = np.empty_like(x, dtype=np.float64)
    low = x < first
    high = x >= first + n - 1
    mid = ~(low | high)
    out[low] = data[0]
    out[high] = data[n - 1]
    out[mid] = data[(x[mid] - first).astype(np.int64)]
    return out, bits


def _macro(ds: Dataset, frame: int, keyword: str) -> Dataset:
    """Enhanced multi-frame: the per-frame, else shared functional group item; else `ds` itself."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and keyword in per_frame[frame - 1]:
        return per_frame[frame - 1][keyword][0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and keyword in shared[0]:
        return shared[0][keyword][0]
    return ds


def modality(ds: Dataset, stored: np.ndarray, frame: int = 1) -> np.ndarray:
    """PS3.3 C.11.1: Modality LUT Sequence, else ``slope * SV + intercept``."""
    x = stored.astype(np.float64)
    little = ds.file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.2"
    if "ModalityLUTSequence" in ds:
        out, _ = _lut_lookup(x, ds.ModalityLUTSequence[0], little, ds.get("PixelRepresentation") == 1)
        return out
    source = _macro(ds, frame, "PixelValueTransformationSequence")
    slope = float(source.get("RescaleSlope", 1) or 1)
    intercept = float(source.get("RescaleIntercept", 0) or 0)
    return x * slope + intercept


def window(x: np.ndarray, c: float, w: float, function: str) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 (LINEAR), C.11.2.1.3.2 (LINEAR_EXACT), C.11.2.1.3.1 (SIGMOID)."""
    function = function.upper().replace("-", "_")
    if function == "SIGMOID":
        return (Y_MAX - Y_MIN) / (1 + np.exp(-4 * (x - c) / w)) + Y_MIN
    if function == "LINEAR_EXACT":
        return np.where(
            x <= c - w / 2,
            Y_MIN,
            np.where(x > c + w / 2, Y_MAX, ((x - c) / w + 0.5) * (Y_MAX - Y_MIN) + Y_MIN),
        )
    assert function == "LINEAR"
    if w == 1:
        return np.where(x <= c - 0.5, Y_MIN, Y_MAX)
    return np.where(
        x <= c - 0.5 - (w - 1) / 2,
        Y_MIN,
        np.where(
            x > c - 0.5 + (w - 1) / 2,
            Y_MAX,
            ((x - (c - 0.5)) / (w - 1) + 0.5) * (Y_MAX - Y_MIN) + Y_MIN,
        ),
    )


def _first(value: object) -> float:
    return float(value[0]) if isinstance(value, MultiValue) else float(value)  # type: ignore[arg-type]


def file_voi(ds: Dataset, values: np.ndarray, frame: int = 1) -> np.ndarray:
    """The file's own VOI: first window, else the VOI LUT Sequence, else the frame's full range."""
    source = _macro(ds, frame, "FrameVOILUTSequence")
    if "WindowCenter" in source and "WindowWidth" in source:
        c, w = _first(source.WindowCenter), _first(source.WindowWidth)
        function = str(source.get("VOILUTFunction", "LINEAR") or "LINEAR")
        if w >= 1 or (w > 0 and function != "LINEAR"):
            return window(values, c, w, function)
    if "VOILUTSequence" in ds:
        little = ds.file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.2"
        out, bits = _lut_lookup(values, ds.VOILUTSequence[0], little, ds.get("PixelRepresentation") == 1)
        top = max(2**bits - 1, 2 ** int(out.max()).bit_length() - 1)
        return out / top * (Y_MAX - Y_MIN) + Y_MIN
    low, high = float(values.min()), float(values.max())
    if high == low:
        return np.zeros_like(values)
    return (values - low) / (high - low) * (Y_MAX - Y_MIN) + Y_MIN


def grey(ds: Dataset, frame: int, explicit: tuple[float, float, str] | None = None) -> np.ndarray:
    """Reference grey rendering (float, 0..255, MONOCHROME1 inverted)."""
    stored, photometric = decode(ds, frame)
    values = modality(ds, stored, frame)
    y = window(values, *explicit) if explicit else file_voi(ds, values, frame)
    if photometric == "MONOCHROME1":
        y = Y_MAX - y
    return y


def ybr_full_to_rgb(ybr: np.ndarray) -> np.ndarray:
    """PS3.3 C.7.6.3.1.2 YBR_FULL, inverted (ITU-R BT.601 full range)."""
    y, cb, cr = (ybr[..., i].astype(np.float64) for i in range(3))
    r = y + 1.402 * (cr - 128)
    g = y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)
    b = y + 1.772 * (cb - 128)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255)


def expand_segmented(words: np.ndarray) -> np.ndarray:
    """PS3.3 C.7.9.2: expand Segmented Palette Color LUT Data (discrete, linear, indirect)."""
    out: list[float] = []

    def run(position: int, stop: int) -> None:
        while position < stop:
            kind, length = int(words[position]), int(words[position + 1])
            if kind == 0:  # discrete: the next `length` words are entries
                out.extend(float(v) for v in words[position + 2 : position + 2 + length])
                position += 2 + length
            elif kind == 1:  # linear: ramp from the previous entry to y1 in `length` steps
                y0, y1 = out[-1], float(words[position + 2])
                out.extend(y0 + (y1 - y0) * step / length for step in range(1, length + 1))
                position += 3
            elif kind == 2:  # indirect: replay `length` segments starting at a word offset
                offset = int(words[position + 2]) | int(words[position + 3]) << 16
                replay, count = offset, 0
                while count < length:
                    replay_kind = int(words[replay])
                    size = {0: 2 + int(words[replay + 1]), 1: 3, 2: 4}[replay_kind]
                    run(replay, replay + size)
                    replay += size
                    count += 1
                position += 4
            else:
                raise ValueError("unknown segment type")

    run(0, words.size)
    return np.array(out)


def palette(ds: Dataset, stored: np.ndarray) -> np.ndarray:
    """PS3.3 C.7.6.3.1.5-6: index the Red/Green/Blue Palette Color LUT Data (plain or segmented)."""
    little = ds.file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.2"
    channels = []
    for colour in ("Red", "Green", "Blue"):
        n, first, bits = (int(v) for v in ds[f"{colour}PaletteColorLookupTableDescriptor"].value)
        n = n or 65536
        if f"Segmented{colour}PaletteColorLookupTableData" in ds:
            raw = ds[f"Segmented{colour}PaletteColorLookupTableData"].value
            if bits == 8:
                data = expand_segmented(np.frombuffer(raw, dtype=np.uint8))
            else:
                data = expand_segmented(_us_values(raw, little))
        else:
            raw = ds[f"{colour}PaletteColorLookupTableData"].value
            if len(raw) == n:  # 8-bit entries, one byte each
                data = np.frombuffer(raw, dtype=np.uint8).astype(np.float64)
            else:
                data = _us_values(raw, little)
        if bits == 16 and data.max() > 255:
            data = data / 65535 * 255
        index = np.clip(stored.astype(np.int64) - first, 0, n - 1)
        channels.append(data[index])
    return np.stack(channels, axis=-1)


def color(ds: Dataset, frame: int) -> np.ndarray:
    """Reference colour rendering (float 0..255 RGB)."""
    samples, photometric = decode(ds, frame)
    if photometric == "PALETTE COLOR":
        return palette(ds, samples)
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        return ybr_full_to_rgb(samples)
    assert photometric == "RGB", photometric
    return samples.astype(np.float64) * 255 / (2 ** int(ds.BitsStored) - 1)
