"""Which images may carry burned-in text (PS3.15 E.1.1 Note 5, E.3.1).

De-identification does not touch Pixel Data, so the caller quarantines any
image flagged here until an organizer has looked at it.  The rule:

1. Burned In Annotation (0028,0301) is ``YES``: flagged.
2. Secondary Capture SOP Classes (screen captures, scanned documents): flagged
   whatever Burned In Annotation says, because capturing software often
   writes ``NO`` without looking at the screen it captured.
3. Whole-slide ``LABEL`` or ``OVERVIEW`` images (slide labels are handwritten
   or printed with the patient's name): flagged.
4. Modalities that usually show text on the image (ultrasound, endoscopy,
   external camera, ophthalmic and general photography, "other", documents):
   flagged unless Burned In Annotation is explicitly ``NO``.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

#: Modalities whose images usually carry burned-in text (PS3.3 C.7.3.1.1.1 terms).
TEXT_PRONE_MODALITIES = frozenset({"US", "IVUS", "ES", "XC", "GM", "OP", "OT", "SC", "DOC"})
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
SLIDE_LABEL_TYPES = frozenset({"LABEL", "OVERVIEW"})


def burned_in_text_reasons(ds: Dataset) -> tuple[str, ...]:
    """Why ``ds`` (the original) may carry burned-in text; empty if no reason.

    Returns
    -------
    tuple of str
        Human-readable reasons, in the order of the rule above.
    """
    reasons: list[str] = []
    annotation = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    sop_class = str(ds.get("SOPClassUID", "") or "")
    modality = str(ds.get("Modality", "") or "").strip().upper()
    image_type = {str(v).strip().upper() for v in _as_list(ds.get("ImageType"))}
    if annotation == "YES":
        reasons.append("Burned In Annotation is YES")
    if sop_class == SECONDARY_CAPTURE_PREFIX or sop_class.startswith(SECONDARY_CAPTURE_PREFIX + "."):
        reasons.append("Secondary Capture SOP Class")
    if image_type & SLIDE_LABEL_TYPES:
        reasons.append("slide label or overview image")
    if modality in TEXT_PRONE_MODALITIES and annotation != "NO":
        reasons.append(f"modality {modality} without Burned In Annotation NO")
    return tuple(reasons)


def _as_list(value: object) -> list[object]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    try:
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        return [value]
