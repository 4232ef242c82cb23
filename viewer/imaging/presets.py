"""Window presets per modality, as plain data the viewer fetches as JSON.

CT values are Hounsfield units (centre/width as commonly taught, e.g. Radiopaedia "Windowing
(CT)"). MR and projection radiographs (CR, DX) have no absolute scale: their presets are
the window stored in the file (``"voi": "file"``) or the frame's full range (``"voi": "full"``).
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidParameter
from .lut import Window


def _ct(name: str, label: str, center: int, width: int) -> dict[str, Any]:
    return {
        "id": f"ct-{name}",
        "modality": "CT",
        "label": label,
        "center": center,
        "width": width,
        "function": "linear",
    }


def _relative(modality: str) -> tuple[dict[str, Any], ...]:
    prefix = modality.lower()
    return (
        {"id": f"{prefix}-default", "modality": modality, "label": "As acquired", "voi": "file"},
        {"id": f"{prefix}-full", "modality": modality, "label": "Full range", "voi": "full"},
    )


#: Every preset: ``id``, ``modality``, ``label``, and either ``center``/``width``/``function``
#: (a fixed window, in modality units) or ``voi`` (``"file"`` or ``"full"``).
PRESETS: tuple[dict[str, Any], ...] = (
    _ct("brain", "Brain", 40, 80),
    _ct("subdural", "Subdural", 75, 215),
    _ct("stroke", "Stroke", 40, 40),
    _ct("temporal-bone", "Temporal bones", 600, 2800),
    _ct("soft-tissue", "Soft tissue", 50, 400),
    _ct("lung", "Lung", -600, 1500),
    _ct("mediastinum", "Mediastinum", 50, 350),
    _ct("abdomen", "Abdomen", 40, 400),
    _ct("liver", "Liver", 30, 150),
    _ct("bone", "Bone", 400, 1800),
    *_relative("MR"),
    *_relative("CR"),
    *_relative("DX"),
)


def presets_for(modality: str | None = None) -> list[dict[str, Any]]:
    """Presets of `modality` (e.g. ``"CT"``), or all of them; copies, safe to serialise."""
    wanted = (modality or "").upper()
    return [dict(preset) for preset in PRESETS if not wanted or preset["modality"] == wanted]


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
