"""Date shifting: one shift per patient, intervals kept, precision kept."""

from __future__ import annotations

from datetime import date

from viewer.deid.dates import MAX_SHIFT_DAYS, MIN_SHIFT_DAYS, shift_da, shift_days, shift_dt


def _day(value: str) -> date:
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


def test_one_secret_shift_per_patient() -> None:
    days = shift_days(b"s", "PAT-1")
    assert days == shift_days(b"s", "PAT-1")
    assert -MAX_SHIFT_DAYS <= days <= -MIN_SHIFT_DAYS
    assert len({shift_days(b"s", f"PAT-{i}") for i in range(50)}) > 40
    assert shift_days(b"other", "PAT-1") != days or shift_days(b"other", "PAT-2") != shift_days(b"s", "PAT-2")


def test_intervals_are_kept_across_leap_days() -> None:
    days = -1000
    first, second = "20000228", "20040301"
    delta = _day(second) - _day(first)
    shifted = [shift_da(v, days) for v in (first, second)]
    assert all(s is not None for s in shifted)
    assert _day(shifted[1]) - _day(shifted[0]) == delta  # type: ignore[arg-type]
    assert shift_da("1997.04.24", 10) == "19970504"


def test_dt_keeps_time_offset_and_precision() -> None:
    assert shift_dt("20230101011721.621000-0400", -1) == "20221231011721.621000-0400"
    assert shift_dt("202301", -40) == "202211"
    assert shift_dt("2023", -400) == "2021"


def test_garbage_is_not_a_date() -> None:
    assert shift_da("20231340", 1) is None
    assert shift_da("yesterday", 1) is None
    assert shift_dt("not a dt", 1) is None
