"""Profile and options: names, validation, CID 7050 codes."""

from __future__ import annotations

import pytest

from viewer.deid import EDITION, Option, Profile


def test_from_json_accepts_the_supported_options() -> None:
    profile = Profile.from_json({"profile": "basic", "options": [o.value for o in Option]})
    assert profile.options == frozenset(Option)
    assert Profile.from_json({"profile": "basic"}) == Profile()
    assert Profile.from_json(profile.to_json()) == profile


def test_unknown_option_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"unknown de-identification option 'retain-uids'.*retain-device-identity"
    ):
        Profile.from_json({"profile": "basic", "options": ["retain-uids"]})
    with pytest.raises(ValueError, match="unknown de-identification option"):
        Profile(frozenset({"clean-everything"}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        {"profile": "full", "options": []},
        {"profile": "basic", "options": "clean-descriptors"},
        {"profile": "basic", "extra": 1},
        ["basic"],
    ],
)
def test_bad_profile_json_is_rejected(data: object) -> None:
    with pytest.raises(ValueError):
        Profile.from_json(data)  # type: ignore[arg-type]


def test_method_codes_and_texts() -> None:
    profile = Profile(frozenset({Option.CLEAN_DESCRIPTORS, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}))
    assert [code for code, _ in profile.method_codes] == ["113100", "113107", "113105"]
    assert profile.method_texts[0] == f"{EDITION} Table E.1-1"
    assert all(len(text) <= 64 for text in Profile(frozenset(Option)).method_texts)
    assert [code for code, _ in Profile(frozenset(Option)).method_codes] == [
        "113100",
        "113107",
        "113108",
        "113109",
        "113111",
        "113105",
    ]
