"""DICOM Segmentations and RT Structure Sets as overlays on their source images. No Django.

- **SEG** (PS3.3 A.51, binary and fractional), decoded with highdicom: :func:`describe_segmentation`
  lists the segments (number, label, colour from RecommendedDisplayCIELabValue when present, else a
  fixed palette) and, for each source image frame, the segments that have a frame on it;
  :func:`segment_overlay` gives one segment's mask on one source frame as an RGBA PNG in the
  segment's colour, the alpha the mask (fractional values scaled to 0..255).
- **RTSTRUCT** (PS3.3 A.19): :func:`describe_structure_set` gives each ROI (number, name, colour from
  ROIDisplayColor) with its contours in patient coordinates (mm), each with the SOP Instance UIDs
  its ContourImageSequence names; the viewer draws a contour on the slice it names, or else on the
  slice whose plane it lies in.

Bounded: at most :data:`MAX_SEGMENTS` segments, :data:`MAX_ROIS` ROIs and :data:`MAX_CONTOUR_POINTS`
points in all; a larger object is refused (:class:`TooLarge`).
"""

from __future__ import annotations

import io
from typing import Any

import highdicom as hd
import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"

MAX_SEGMENTS = 256
MAX_ROIS = 512
MAX_CONTOUR_POINTS = 500_000
MAX_SOURCE_FRAMES = 20_000

#: Colours of segments and ROIs that recommend none (RGB).
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255)]


class TooLarge(ValueError):
    """The object holds more than this module draws."""


class NotAnOverlay(ValueError):
    """The data set is not a SEG (or RTSTRUCT), or cannot be decoded."""


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(max(0, min(255, int(c))) for c in rgb))


def segment_colour(item: Dataset, number: int) -> tuple[int, int, int]:
    """A segment's colour: RecommendedDisplayCIELabValue (PS3.3 C.8.20.2, C.10.7.1.1) as sRGB, else the palette."""
    lab = item.get("RecommendedDisplayCIELabValue")
    if lab is not None and len(lab) == 3:
        try:
            r, g, b = hd.color.CIELabColor.from_dicom_value([int(v) for v in lab]).to_rgb(clip=True)
            return int(r), int(g), int(b)
        except (ValueError, TypeError):
            pass
    return PALETTE[(number - 1) % len(PALETTE)]


def read_segmentation(ds: Dataset) -> hd.seg.Segmentation:
    """The SEG decoded by highdicom. ``ds`` becomes the Segmentation (no copy), whose index is an SQLite
    database of the thread that made it: use it in that thread only."""
    if str(ds.get("SOPClassUID", "")) != SEG_SOP_CLASS:
        raise NotAnOverlay("Not a DICOM Segmentation.")
    if len(ds.get("SegmentSequence", []) or []) > MAX_SEGMENTS:
        raise TooLarge(f"The segmentation has more than {MAX_SEGMENTS} segments.")
    try:
        return hd.seg.Segmentation.from_dataset(ds, copy=False)
    except (ValueError, AttributeError, KeyError, TypeError, IndexError) as exc:
        raise NotAnOverlay(f"The segmentation cannot be read ({type(exc).__name__}).") from None


def describe_segmentation(ds: Dataset, *, masked: bool = False) -> dict[str, Any]:
    """The segments and which source frames they cover (``"<sop>/<frame>": [segment numbers]``).

    ``masked``: segment descriptions (free text) are left out, labels and codes stay.
    """
    if str(ds.get("SOPClassUID", "")) != SEG_SOP_CLASS:
        raise NotAnOverlay("Not a DICOM Segmentation.")
    if len(ds.get("SegmentSequence", []) or []) > MAX_SEGMENTS:
        raise TooLarge(f"The segmentation has more than {MAX_SEGMENTS} segments.")
    segments = []
    for item in ds.SegmentSequence:
        number = int(item.SegmentNumber)
        category = item.get("SegmentedPropertyCategoryCodeSequence")
        kind = item.get("SegmentedPropertyTypeCodeSequence")
        entry: dict[str, Any] = {
            "number": number,
            "label": str(item.get("SegmentLabel", f"Segment {number}")),
            "colour": _hex(segment_colour(item, number)),
            "algorithmType": str(item.get("SegmentAlgorithmType", "")),
            "category": str(category[0].get("CodeMeaning", "")) if category else "",
            "type": str(kind[0].get("CodeMeaning", "")) if kind else "",
        }
        if not masked and item.get("SegmentDescription"):
            entry["description"] = str(item.SegmentDescription)[:200]
        segments.append(entry)
    frames: dict[str, list[int]] = {}
    shared = (ds.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
    for frame in ds.get("PerFrameFunctionalGroupsSequence", []) or []:
        # per frame, or shared by all frames (a SEG of one segment)
        ident = frame.get("SegmentIdentificationSequence") or shared.get("SegmentIdentificationSequence")
        if not ident:
            continue
        number = int(ident[0].ReferencedSegmentNumber)
        for derivation in frame.get("DerivationImageSequence", []) or []:
            for source in derivation.get("SourceImageSequence", []) or []:
                sop = str(source.get("ReferencedSOPInstanceUID", ""))
                numbers = source.get("ReferencedFrameNumber")
                source_frames = [int(numbers)] if isinstance(numbers, int) else [int(n) for n in numbers or [1]]
                for source_frame in source_frames:
                    key = f"{sop}/{source_frame}"
                    if key not in frames and len(frames) >= MAX_SOURCE_FRAMES:
                        raise TooLarge(f"The segmentation covers more than {MAX_SOURCE_FRAMES} source frames.")
                    listed = frames.setdefault(key, [])
                    if number not in listed:
                        listed.append(number)
    return {
        "sopInstanceUID": str(ds.SOPInstanceUID),
        "segmentationType": str(ds.get("SegmentationType", "")),
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "segments": segments,
        "frames": {key: sorted(value) for key, value in frames.items()},
    }


def segment_mask(seg: hd.seg.Segmentation, number: int, source_sop: str, frame: int, *, multiframe: bool) -> np.ndarray:
    """Segment ``number`` on frame ``frame`` of source image ``source_sop`` as floats in 0..1 (rows, columns).

    Decoded by highdicom (binary: 0 or 1; fractional: the stored value over MaximumFractionalValue).
    """
    if number not in seg.get_segment_numbers():
        raise NotAnOverlay("No such segment.")
    try:
        if multiframe:
            pixels = seg.get_pixels_by_source_frame(source_sop, source_frame_numbers=[frame], segment_numbers=[number],
                                                    assert_missing_frames_are_empty=True, dtype=np.float32)
        else:
            pixels = seg.get_pixels_by_source_instance([source_sop], segment_numbers=[number],
                                                       assert_missing_frames_are_empty=True, dtype=np.float32)
    except (ValueError, KeyError, IndexError, RuntimeError) as exc:
        raise NotAnOverlay(f"The segment has no frame on that image ({type(exc).__name__}).") from None
    mask: np.ndarray = np.asarray(pixels[0, :, :, 0], dtype=np.float32)
    return np.clip(mask, 0.0, 1.0)


def overlay_png(mask: np.ndarray, colour: tuple[int, int, int]) -> bytes:
    """An RGBA PNG of ``mask`` (floats 0..1): the colour everywhere, alpha = round(mask * 255)."""
    rows, columns = mask.shape
    rgba = np.empty((rows, columns, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = colour
    rgba[..., 3] = np.rint(mask * 255.0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def segment_overlay(ds: Dataset, number: int, source_sop: str, frame: int, *, multiframe: bool) -> bytes:
    seg = read_segmentation(ds)
    item = next((s for s in ds.SegmentSequence if int(s.SegmentNumber) == number), None)
    if item is None:
        raise NotAnOverlay("No such segment.")
    return overlay_png(segment_mask(seg, number, source_sop, frame, multiframe=multiframe), segment_colour(item, number))


# --------------------------------------------------------------------------- RT Structure Set


def describe_structure_set(ds: Dataset, *, masked: bool = False) -> dict[str, Any]:
    """The ROIs of an RT Structure Set with their contours (PS3.3 C.8.8.5, C.8.8.6).

    Each contour: its ContourGeometricType, its points ``[x, y, z]`` in patient coordinates (mm, as
    ContourData) and the SOP Instance UIDs of ContourImageSequence. ``masked``: the structure set's
    label, name, description, dates and ROI descriptions are left out; ROI names stay (labels of a
    reading, such as "GTV").
    """
    if str(ds.get("SOPClassUID", "")) != RTSTRUCT_SOP_CLASS:
        raise NotAnOverlay("Not an RT Structure Set.")
    rois = ds.get("StructureSetROISequence", []) or []
    if len(rois) > MAX_ROIS:
        raise TooLarge(f"The structure set has more than {MAX_ROIS} ROIs.")
    names = {int(r.ROINumber): r for r in rois if "ROINumber" in r}
    total = 0
    out = []
    for index, roi in enumerate(ds.get("ROIContourSequence", []) or []):
        number = int(roi.get("ReferencedROINumber", index + 1))
        info = names.get(number)
        colour = roi.get("ROIDisplayColor")
        rgb = tuple(int(c) for c in colour) if colour is not None and len(colour) == 3 else PALETTE[index % len(PALETTE)]
        contours = []
        for contour in roi.get("ContourSequence", []) or []:
            data = [float(v) for v in (contour.get("ContourData") or [])]
            total += len(data) // 3
            if total > MAX_CONTOUR_POINTS:
                raise TooLarge(f"The structure set has more than {MAX_CONTOUR_POINTS} contour points.")
            contours.append({
                "type": str(contour.get("ContourGeometricType", "")),
                "points": [data[i:i + 3] for i in range(0, len(data) - 2, 3)],
                "images": [str(i.get("ReferencedSOPInstanceUID", "")) for i in contour.get("ContourImageSequence", []) or []],
            })
        entry: dict[str, Any] = {
            "number": number,
            "name": str(info.get("ROIName", "")) if info is not None else f"ROI {number}",
            "colour": _hex(rgb),  # type: ignore[arg-type]
            "frameOfReferenceUID": str(info.get("ReferencedFrameOfReferenceUID", "")) if info is not None else "",
            "contours": contours,
        }
        out.append(entry)
    description: dict[str, Any] = {"sopInstanceUID": str(ds.SOPInstanceUID), "rois": out}
    if not masked:
        description["label"] = str(ds.get("StructureSetLabel", ""))
    return description
