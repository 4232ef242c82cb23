"""Dummy values for action D of PS3.15 Table E.1-1, valid for each VR (PS3.5 6.2)."""

from __future__ import annotations

from typing import Any

#: One dummy per VR: non-zero length, within the VR's length and character rules.
DUMMY_TEXT = "ANONYMIZED"
DUMMY_DATE = "19000101"
DUMMY_BY_VR: dict[str, Any] = {
    "AE": DUMMY_TEXT,
    "AS": "000Y",
    "CS": DUMMY_TEXT,
    "DA": DUMMY_DATE,
    "DS": "0",
    "DT": DUMMY_DATE + "000000",
    "IS": "0",
    "LO": DUMMY_TEXT,
    "LT": DUMMY_TEXT,
    "PN": DUMMY_TEXT,
    "SH": DUMMY_TEXT,
    "ST": DUMMY_TEXT,
    "TM": "000000",
    "UC": DUMMY_TEXT,
    "UR": DUMMY_TEXT,
    "UT": DUMMY_TEXT,
    "AT": 0,
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "SV": 0,
    "UL": 0,
    "US": 0,
    "UV": 0,
    # Eight zero bytes: a whole number of values for OB, OW, OF, OL, OD and OV.
    "OB": b"\x00" * 8,
    "OD": b"\x00" * 8,
    "OF": b"\x00" * 8,
    "OL": b"\x00" * 8,
    "OV": b"\x00" * 8,
    "OW": b"\x00" * 8,
    "UN": b"\x00" * 8,
}


def dummy_for(vr: str) -> Any:
    """Dummy value for ``vr`` (not for UI or SQ, which the caller handles).

    Raises
    ------
    KeyError
        For a VR with no dummy (UI, SQ).
    """
    return DUMMY_BY_VR[vr]
