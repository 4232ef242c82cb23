"""Profile and options of PS3.15 Annex E that Crossread implements.

The Basic Application Level Confidentiality Profile (PS3.15 E.2) is always
applied; each option (PS3.15 E.3) overrides the basic action of the attributes
it lists in Table E.1-1.  Codes are those of PS3.16 CID 7050.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from viewer.deid.table import EDITION

#: PS3.16 CID 7050 code of the Basic Application Confidentiality Profile.
BASIC_CODE = ("113100", "Basic Application Confidentiality Profile")
PROFILE_NAMES = frozenset({"basic"})


class Option(StrEnum):
    """Options of PS3.15 E.3 supported here, by their Crossread names."""

    RETAIN_LONGITUDINAL_MODIFIED_DATES = "retain-longitudinal-modified-dates"
    RETAIN_PATIENT_CHARACTERISTICS = "retain-patient-characteristics"
    RETAIN_DEVICE_IDENTITY = "retain-device-identity"
    RETAIN_SAFE_PRIVATE = "retain-safe-private"
    CLEAN_DESCRIPTORS = "clean-descriptors"


@dataclass(frozen=True)
class OptionInfo:
    """Where an option lives in Table E.1-1 and how it is coded in CID 7050."""

    column: str
    code: str
    meaning: str


OPTION_INFO: Mapping[Option, OptionInfo] = {
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES: OptionInfo(
        "retain_longitudinal_modified_dates",
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    Option.RETAIN_PATIENT_CHARACTERISTICS: OptionInfo(
        "retain_patient_characteristics", "113108", "Retain Patient Characteristics Option"
    ),
    Option.RETAIN_DEVICE_IDENTITY: OptionInfo(
        "retain_device_identity", "113109", "Retain Device Identity Option"
    ),
    Option.RETAIN_SAFE_PRIVATE: OptionInfo("retain_safe_private", "113111", "Retain Safe Private Option"),
    Option.CLEAN_DESCRIPTORS: OptionInfo("clean_descriptors", "113105", "Clean Descriptors Option"),
}


def _parse_options(values: Iterable[Any]) -> frozenset[Option]:
    known = ", ".join(o.value for o in Option)
    options: set[Option] = set()
    for value in values:
        try:
            options.add(Option(value))
        except ValueError:
            raise ValueError(f"unknown de-identification option {value!r}; known options: {known}") from None
    return frozenset(options)


@dataclass(frozen=True)
class Profile:
    """Basic Application Level Confidentiality Profile plus a set of options.

    Parameters
    ----------
    options : frozenset of Option
        Options of PS3.15 E.3; plain strings are accepted and validated.

    Raises
    ------
    ValueError
        If an option name is unknown.
    """

    options: frozenset[Option] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _parse_options(self.options))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        """Build from ``{"profile": "basic", "options": [...]}`` (a project's setting).

        Raises
        ------
        ValueError
            If the profile is not ``"basic"``, ``options`` is not a list, or
            an option name is unknown.
        """
        if not isinstance(data, Mapping):
            raise ValueError("de-identification profile must be a JSON object")
        unknown_keys = set(data) - {"profile", "options"}
        if unknown_keys:
            raise ValueError(f"unknown keys in de-identification profile: {sorted(unknown_keys)}")
        name = data.get("profile", "basic")
        if name not in PROFILE_NAMES:
            raise ValueError(f"unknown de-identification profile {name!r}; known profiles: basic")
        options = data.get("options", [])
        if not isinstance(options, list):
            raise ValueError("'options' of a de-identification profile must be a list")
        return cls(_parse_options(options))

    def to_json(self) -> dict[str, Any]:
        """Inverse of :meth:`from_json`, options sorted."""
        return {"profile": "basic", "options": sorted(o.value for o in self.options)}

    @property
    def columns(self) -> tuple[str, ...]:
        """Table E.1-1 columns of the enabled options, in :class:`Option` order."""
        return tuple(OPTION_INFO[o].column for o in Option if o in self.options)

    @property
    def method_codes(self) -> tuple[tuple[str, str], ...]:
        """(code value, code meaning) in DCM for De-identification Method Code Sequence."""
        enabled = ((OPTION_INFO[o].code, OPTION_INFO[o].meaning) for o in Option if o in self.options)
        return (BASIC_CODE, *enabled)

    @property
    def method_texts(self) -> tuple[str, ...]:
        """Values of De-identification Method (0012,0063), LO so at most 64 characters each.

        The table edition, then the profile and option names of CID 7050.
        """
        return (f"{EDITION} Table E.1-1", *(meaning for _, meaning in self.method_codes))
