"""Table E.1-1 as data: complete, edition named, option columns right where the options act."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from pydicom.datadict import dictionary_VR
from pydicom.tag import Tag

from viewer.deid.table import (
    ACTION_CODES,
    COLUMNS,
    EDITION,
    TABLE_PATH,
    load_iod_types,
    load_safe_private,
    load_table,
)


def _actions(keyword: str) -> dict[str, str]:
    row = load_table().row_for(Tag(keyword))
    assert row is not None, keyword
    return dict(row.actions)


def test_file_names_its_edition_and_has_all_columns() -> None:
    with TABLE_PATH.open(encoding="utf-8") as fh:
        first = fh.readline()
        lines = [line for line in fh if not line.startswith("#")]
    assert EDITION in first and EDITION.startswith("DICOM PS3.15 20")
    assert next(csv.reader(lines)) == ["tag", "keyword", "name", *COLUMNS]


def test_basic_profile_is_complete() -> None:
    table = load_table()
    assert len(table.rows) > 600
    assert all("basic" in row.actions for row in table.rows)
    counts = Counter(row.actions["basic"] for row in table.rows)
    assert set(counts) <= ACTION_CODES
    assert counts["X"] > 350 and counts["U"] > 50 and counts["D"] > 80 and counts["Z"] > 30
    assert {"Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"} <= set(counts)


@pytest.mark.parametrize(
    ("keyword", "basic"),
    [
        ("PatientName", "Z"),
        ("PatientBirthDate", "Z"),
        ("AccessionNumber", "Z"),
        ("StudyInstanceUID", "U"),
        ("SOPInstanceUID", "U"),
        ("FrameOfReferenceUID", "U"),
        ("ReferencedSOPInstanceUID", "U"),
        ("MediaStorageSOPInstanceUID", "U"),
        ("InstitutionName", "X/Z/D"),
        ("ReferringPhysicianName", "Z"),
        ("OtherPatientIDsSequence", "X"),
        ("PatientAddress", "X"),
        ("ReferencedImageSequence", "X/Z/U*"),
        ("StudyDate", "Z"),
        ("ContentDate", "Z/D"),
    ],
)
def test_basic_actions_of_well_known_attributes(keyword: str, basic: str) -> None:
    assert _actions(keyword)["basic"] == basic


@pytest.mark.parametrize(
    ("keyword", "column", "action"),
    [
        ("PatientSex", "retain_patient_characteristics", "K"),
        ("PatientAge", "retain_patient_characteristics", "K"),
        ("PatientSize", "retain_patient_characteristics", "K"),
        ("PatientWeight", "retain_patient_characteristics", "K"),
        ("DeviceSerialNumber", "retain_device_identity", "K"),
        ("StationName", "retain_device_identity", "K"),
        ("StudyDate", "retain_longitudinal_modified_dates", "C"),
        ("AcquisitionDateTime", "retain_longitudinal_modified_dates", "C"),
        ("StudyDescription", "clean_descriptors", "C"),
        ("SeriesDescription", "clean_descriptors", "C"),
        ("StudyInstanceUID", "retain_uids", "K"),
    ],
)
def test_option_columns(keyword: str, column: str, action: str) -> None:
    assert _actions(keyword)[column] == action


def test_birth_date_is_retained_by_no_option() -> None:
    assert _actions("PatientBirthDate") == {"basic": "Z"}


def test_private_and_repeating_groups() -> None:
    table = load_table()
    assert table.row_for(Tag(0x0009, 0x1001)) is table.private
    assert table.private.actions == {"basic": "X", "retain_safe_private": "C"}
    overlay = table.row_for(Tag(0x6002, 0x3000))
    assert overlay is not None and overlay.keyword == "OverlayData"
    curve = table.row_for(Tag(0x5004, 0x0010))
    assert curve is not None and curve.actions["basic"] == "X"
    assert table.row_for(Tag(0x0028, 0x0010)) is None  # Rows: not listed, kept


def test_uid_rows_are_ui_attributes() -> None:
    for row in load_table().rows:
        if row.actions["basic"] == "U":
            value = int(row.tag[1:5] + row.tag[6:10], 16)
            assert dictionary_VR(value) == "UI", row.keyword


def test_iod_types_decide_compound_actions() -> None:
    types = load_iod_types()
    ct = "1.2.840.10008.5.1.4.1.1.2"
    assert types.type_of(ct, Tag("PatientID")) == "2"
    assert types.type_of(ct, Tag("AccessionNumber")) == "2"
    assert types.type_of(ct, Tag("PatientAge")) == "3"
    assert types.type_of("1.2.3.unknown", Tag("PatientID")) in {"1", "2"}


def test_safe_private_list_is_small_and_typed() -> None:
    safe = load_safe_private()
    assert 10 <= len(safe) <= 100
    assert (0x0019, "SIEMENS MR HEADER", 0x0C) in safe
    assert all(entry.group % 2 == 1 for entry in safe.values())
