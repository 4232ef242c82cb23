"""Keyed UIDs: deterministic per secret, 2.25 form, well-known UIDs untouched."""

from __future__ import annotations

import re

import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from viewer.deid import new_uid
from viewer.deid.uids import UidMapper

SECRET = b"project-secret"
FORM = re.compile(r"^2\.25\.(0|[1-9][0-9]*)$")


def test_same_uid_same_new_uid_and_secret_matters() -> None:
    original = "1.2.826.0.1.3680043.8.498.12345678901234567890"
    assert new_uid(original, SECRET) == new_uid(original, SECRET)
    assert new_uid(original, SECRET) != new_uid(original, b"other-secret")
    assert new_uid(original, SECRET) != new_uid(original + "1", SECRET)
    assert new_uid(original + "\x00", SECRET) == new_uid(original, SECRET)


def test_form_rules() -> None:
    for _ in range(2000):
        uid = new_uid(generate_uid(), SECRET)
        assert FORM.match(uid), uid
        assert len(uid) <= 64
        assert all(part == "0" or not part.startswith("0") for part in uid.split("."))


def test_well_known_uids_are_never_replaced() -> None:
    for uid in (CTImageStorage, ExplicitVRLittleEndian, "1.2.840.10008.2.16.4"):
        assert new_uid(uid, SECRET) == uid
    mapper = UidMapper(SECRET)
    assert mapper(CTImageStorage) == CTImageStorage
    assert mapper.mapping == {}


def test_mapper_records_the_map() -> None:
    mapper = UidMapper(SECRET)
    first = mapper("1.2.3.4")
    assert mapper("1.2.3.4") == first
    assert mapper.mapping == {"1.2.3.4": first}


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        new_uid("1.2.3", b"")
