"""Window presets per modality, as plain data the viewer fetches as JSON.

CT values are Hounsfield units (centre/width as commonly taught, e.g. Radiopaedia "Windowing
(CT)"). MR and projection radiographs (CR, DX) have no absolute scale: their presets are
the window stored in the file (``"voi": "file"``) or the frame's full range (``"voi": "full"``).
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidParameter
from .lut import Window


def _ct(name: str, label: str, center: int, width: int, group: str) -> dict[str, Any]:
    return {
        "id": f"ct-{name}",
        "modality": "CT",
        "group": group,  # where the viewer's menu lists it
        "label": label,
        "center": center,
        "width": width,
        "function": "linear",
    }


def _relative(modality: str) -> tuple[dict[str, Any], ...]:
    prefix = modality.lower()
    return (
        {"id": f"{prefix}-default", "modality": modality, "group": "Relative", "label": "As acquired", "voi": "file"},
        {"id": f"{prefix}-full", "modality": modality, "group": "Relative", "label": "Full range", "voi": "full"},
    )


#: Every preset: ``id``, ``modality``, ``group`` (its heading in the viewer's menu), ``label``, and either ``center``/``width``/``function``
#: (a fixed window, in modality units) or ``voi`` (``"file"`` or ``"full"``).
PRESETS: tuple[dict[str, Any], ...] = (
    _ct("brain", "Brain", 40, 80, "Head"),
    _ct("subdural", "Subdural", 75, 215, "Head"),
    _ct("stroke", "Stroke", 40, 40, "Head"),
    _ct("temporal-bone", "Temporal bones", 600, 2800, "Head"),
    _ct("soft-tissue", "Soft tissue", 50, 400, "Body"),
    _ct("lung", "Lung", -600, 1500, "Chest"),
    _ct("mediastinum", "Mediastinum", 50, 350, "Chest"),
    _ct("abdomen", "Abdomen", 40, 400, "Abdomen"),
    _ct("liver", "Liver", 30, 150, "Abdomen"),
    _ct("bone", "Bone", 400, 1800, "Bone"),
    *_relative("MR"),
    *_relative("CR"),
    *_relative("DX"),
)


#: Body regions a series may be read in (:func:`body_region`); ``"body"`` when nothing says.
REGIONS: tuple[str, ...] = ("head", "neck", "chest", "abdomen", "spine", "extremity", "body")

_BODY = ("soft-tissue", "lung", "bone", "liver", "brain", "mediastinum", "abdomen", "subdural", "stroke", "temporal-bone")

#: The CT presets in number-key order (key 1 first, then 2 ... 9, 0) per body region: the windows a
#: region is read in first; every preset is in every order, so each is reachable.
CT_ORDER: dict[str, tuple[str, ...]] = {
    "head": ("brain", "subdural", "stroke", "bone", "temporal-bone", "soft-tissue", "lung", "mediastinum", "abdomen", "liver"),
    "neck": ("soft-tissue", "bone", "brain", "lung", "mediastinum", "subdural", "stroke", "temporal-bone", "abdomen", "liver"),
    "chest": _BODY,
    "abdomen": ("soft-tissue", "lung", "bone", "liver", "brain", "abdomen", "mediastinum", "subdural", "stroke", "temporal-bone"),
    "spine": ("bone", "soft-tissue", "lung", "liver", "brain", "mediastinum", "abdomen", "subdural", "stroke", "temporal-bone"),
    "extremity": ("bone", "soft-tissue", "lung", "liver", "brain", "mediastinum", "abdomen", "subdural", "stroke", "temporal-bone"),
    "body": _BODY,
}

#: Words of BodyPartExamined (PS3.16 Annex L defined terms) or of a description, per region, in the
#: order they are tried: spine before chest ("T SPINE"), head before neck ("HEAD NECK" is read as head).
_REGION_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("spine", ("SPINE", "CSPINE", "TSPINE", "LSPINE", "SSPINE", "VERTEBRA", "SACRUM", "COCCYX")),
    ("head", ("HEAD", "BRAIN", "SKULL", "CRANIUM", "CEREBR", "IAC", "TEMPORAL", "ORBIT", "SINUS", "STROKE", "FACE")),
    ("neck", ("NECK", "LARYNX", "THYROID", "PHARYNX")),
    ("chest", ("CHEST", "THORAX", "THX", "LUNG", "PULMO", "CTPA", "HEART", "CARDIAC", "CORONARY", "BREAST", "RIB")),
    ("abdomen", ("ABDOMEN", "ABD", "PELVIS", "LIVER", "KIDNEY", "RENAL", "PANCREA", "BLADDER", "COLON", "UROGRAM")),
    ("extremity", ("EXTREMITY", "KNEE", "HIP", "SHOULDER", "ANKLE", "WRIST", "HAND", "FOOT", "ELBOW", "LEG", "ARM",
                   "FEMUR", "TIBIA", "HUMERUS", "FOREARM", "CLAVICLE")),
)


def _words(text: str) -> list[str]:
    return [w for w in "".join(c if c.isalnum() else " " for c in text.upper()).split() if w]


def body_region(body_part: str | None = None, *descriptions: str | None) -> str:
    """The body region of a series, one of :data:`REGIONS`: from BodyPartExamined when it names one,
    else from the first description (series, then study) that does, else ``"body"``. Pure.

    A word matches a region's word when it starts with it ("ABDOMENPELVIS", "CEREBRAL"); hyphens and
    spaces split words, and "C-SPINE" reads as spine."""
    for text in (body_part, *descriptions):
        if not text:
            continue
        words = _words(text)
        joined = "".join(words)
        for region, keys in _REGION_WORDS:
            if any(w.startswith(k) for w in words for k in keys) or (region == "spine" and "SPINE" in joined):
                return region
    return "body"


def presets_for(modality: str | None = None, region: str | None = None) -> list[dict[str, Any]]:
    """Presets of `modality` (e.g. ``"CT"``), or all of them; copies, safe to serialise. With a
    `region` (:data:`REGIONS`), CT presets come in that region's number-key order (:data:`CT_ORDER`)."""
    wanted = (modality or "").upper()
    found = [dict(preset) for preset in PRESETS if not wanted or preset["modality"] == wanted]
    if region is None or wanted != "CT":
        return found
    order = {f"ct-{name}": i for i, name in enumerate(CT_ORDER.get(region, CT_ORDER["body"]))}
    return sorted(found, key=lambda preset: order.get(preset["id"], len(order)))


def preset_orders() -> dict[str, dict[str, list[str]]]:
    """The number-key order of each modality's presets per region, ``{"CT": {region: [id, ...]}}``,
    for the viewer page (which orders the presets of each series' region)."""
    return {"CT": {region: [f"ct-{name}" for name in names] for region, names in CT_ORDER.items()}}


def preset_window(preset_id: str) -> Window | None:
    """The :class:`Window` of a fixed preset, or ``None`` for a ``"file"``/``"full"`` preset.

    Raises
    ------
    InvalidParameter
        For an unknown preset id.
    """
    for preset in PRESETS:
        if preset["id"] == preset_id:
            if "center" not in preset:
                return None
            return Window(float(preset["center"]), float(preset["width"]), preset["function"])
    raise InvalidParameter("Unknown window preset.")
