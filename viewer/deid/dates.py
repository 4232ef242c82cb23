"""Date shifting for the Retain Longitudinal Temporal Information with Modified Dates Option.

PS3.15 E.3.6: dates are modified so that the intervals between them are kept.
Crossread shifts every DA and DT value of one patient by the same whole number
of days, derived from the project secret and the *original* Patient ID; the
shift is never stored in the output.  Times (TM, and the time part of DT) are
unchanged because the shift is whole days, so a DT that crosses midnight still
does after shifting.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from viewer.deid.uids import keyed_digest

#: Shifts lie in [-MAX_SHIFT_DAYS, -MIN_SHIFT_DAYS]: one to ten years into the past.
MIN_SHIFT_DAYS = 366
MAX_SHIFT_DAYS = 3653

_DA = re.compile(r"^(\d{4})\.?(\d{2})\.?(\d{2})$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(.*)$")


def shift_days(secret: bytes, patient_id: str) -> int:
    """Days (negative) by which every date of the patient ``patient_id`` moves."""
    span = MAX_SHIFT_DAYS - MIN_SHIFT_DAYS + 1
    value = int.from_bytes(keyed_digest(secret, "date-shift", patient_id)[:8], "big")
    return -(MIN_SHIFT_DAYS + value % span)


def shift_da(value: str, days: int) -> str | None:
    """Shift one DA value (``YYYYMMDD``, or the ACR-NEMA ``YYYY.MM.DD``).

    Returns
    -------
    str or None
        ``YYYYMMDD`` shifted by ``days``, or ``None`` if ``value`` is not a date.
    """
    match = _DA.match(value.strip())
    if match is None:
        return None
    try:
        day = date(*(int(g) for g in match.groups()))
    except ValueError:
        return None
    return _format(day + timedelta(days=days), 8)


def shift_dt(value: str, days: int) -> str | None:
    """Shift the date part of one DT value, keeping precision, time and UTC offset.

    ``YYYY`` and ``YYYYMM`` precisions are shifted from their first day and
    written back at the same precision.

    Returns
    -------
    str or None
        The shifted value, or ``None`` if ``value`` is not a DT.
    """
    match = _DT.match(value.strip())
    if match is None:
        return None
    year, month, day_of_month, rest = match.groups()
    if day_of_month is None and rest:
        return None
    try:
        day = date(int(year), int(month or 1), int(day_of_month or 1))
    except ValueError:
        return None
    digits = 4 + (2 if month else 0) + (2 if day_of_month else 0)
    return _format(day + timedelta(days=days), digits) + rest


def _format(day: date, digits: int) -> str:
    """``YYYYMMDD`` cut to ``digits`` characters (4, 6 or 8)."""
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"[:digits]
