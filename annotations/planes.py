"""What names a reformatted plane (MPR) a mark is drawn on: ``{"series", "plane", "index"}``. Pure.

The one reading of that object, its bounds and the kinds a plane takes, shared by the REST path
(``annotations.services.check_plane``, which then checks the series through the gate) and the
websocket of reading sessions (``collab.protocol``: creates, drafts and cursors on planes). Raises
:class:`ValueError` with the reason; each caller turns it into its own refusal (400, an ``error`` frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The reformatted planes (``viewer.volume.PLANES``; a test holds the two together).
PLANES = ("axial", "sagittal", "coronal")
#: A plane's index is at most this (a volume has at most 5,000 slices of at most 65,535 pixels a side,
#: resampled to square pixels).
MAX_PLANE_INDEX = 1 << 20
#: The longest DICOM UID.
MAX_UID = 64
#: What may be drawn on a reformatted plane: RECIST reads take their bidirectionals from acquired
#: slices, and the other kinds have not been asked for.
PLANE_KINDS = ("length", "ellipse")

SHAPE = '{"series": <Series Instance UID>, "plane": "axial"|"sagittal"|"coronal", "index": n}'


@dataclass(frozen=True)
class PlaneRef:
    """A plane of a series, as named by a client (not yet checked against the archive)."""

    series: str
    plane: str
    index: int

    def as_dict(self) -> dict[str, Any]:
        return {"series": self.series, "plane": self.plane, "index": self.index}


def read_plane(value: Any) -> PlaneRef:
    """``value`` as a :class:`PlaneRef`, or :class:`ValueError` naming the field. Other keys (the
    geometry a stored plane carries) are ignored: the server computes the geometry itself."""
    if not isinstance(value, dict):
        raise ValueError(f"plane must be {SHAPE}.")
    series, name, index = value.get("series"), value.get("plane"), value.get("index")
    if not isinstance(series, str) or not 0 < len(series) <= MAX_UID or not all(c in "0123456789." for c in series):
        raise ValueError("plane.series must be a Series Instance UID.")
    if name not in PLANES:
        raise ValueError(f"plane.plane must be one of {', '.join(PLANES)}.")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_PLANE_INDEX:
        raise ValueError(f"plane.index must be an integer from 0 to {MAX_PLANE_INDEX}.")
    return PlaneRef(series, str(name), index)


def check_plane_kind(kind: Any) -> None:
    """:class:`ValueError` unless ``kind`` may be drawn on a reformatted plane."""
    if kind not in PLANE_KINDS:
        raise ValueError(f"On a reformatted plane only {' and '.join(PLANE_KINDS)} can be drawn.")


__all__ = ["MAX_PLANE_INDEX", "PLANES", "PLANE_KINDS", "PlaneRef", "check_plane_kind", "read_plane"]
