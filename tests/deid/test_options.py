"""Options, pseudonyms and the record of what was done, on real and small made-up datasets."""

from __future__ import annotations

import copy
import io
import re
from datetime import date

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.deid.conftest import SECRET, case, read
from demo import corpus
from viewer.deid import Option, Profile, default_pseudonym, deidentify
from viewer.deid.core import IMPLEMENTATION_CLASS_UID
from viewer.deid.table import load_safe_private

MODIFIED_DATES = Option.RETAIN_LONGITUDINAL_MODIFIED_DATES.value
# Patient 98890234 of pydicom's dicomdirtests: a CT study (2001-01-01) and an MR study (2003-05-05).
CT_STUDY = corpus.file("pydicom", "dicomdirtests/98892001/CT2N/6293")
MR_STUDY = corpus.file("pydicom", "dicomdirtests/98892003/MR1/15820")


def _day(value: str) -> date:
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


def _ct() -> Dataset:
    """pydicom's CT_small with a full set of patient, device and descriptor attributes."""
    ds = copy.deepcopy(read(corpus.file("pydicom", "CT_small.dcm")))
    ds.PatientName = "Doe^John"
    ds.PatientID = "MRN-0042"
    ds.PatientBirthDate = "19600214"
    ds.PatientSex = "M"
    ds.PatientAge = "063Y"
    ds.PatientSize = "1.82"
    ds.PatientWeight = "81.5"
    ds.DeviceSerialNumber = "SN-778899"
    ds.StationName = "CTROOM7"
    ds.StudyDescription = "CT head for Doe John, MRN-0042"
    return ds


def test_longitudinal_option_keeps_the_interval_between_two_studies_of_one_patient() -> None:
    ct = case(CT_STUDY, frozenset({MODIFIED_DATES}))
    mr = case(MR_STUDY, frozenset({MODIFIED_DATES}))
    assert ct.original.PatientID == mr.original.PatientID
    before = _day(mr.original.StudyDate) - _day(ct.original.StudyDate)
    after = _day(mr.result.dataset.StudyDate) - _day(ct.result.dataset.StudyDate)
    assert after == before
    shift = _day(ct.result.dataset.StudyDate) - _day(ct.original.StudyDate)
    assert shift.days < 0
    assert _day(mr.result.dataset.SeriesDate) - _day(mr.original.SeriesDate) == shift
    assert mr.result.dataset.StudyTime == mr.original.StudyTime
    assert ct.result.dataset.LongitudinalTemporalInformationModified == "MODIFIED"


def test_without_the_option_dates_are_removed() -> None:
    ct = case(CT_STUDY)
    assert not ct.result.dataset.get("StudyDate")
    assert ct.result.dataset.LongitudinalTemporalInformationModified == "REMOVED"


@pytest.mark.parametrize("options", [frozenset(), *(frozenset({o}) for o in Option), frozenset(Option)])
def test_birth_date_is_emptied_under_every_option(options: frozenset[Option]) -> None:
    out = deidentify(_ct(), Profile(options), secret=SECRET).dataset
    assert not out.get("PatientBirthDate")


def test_patient_characteristics_option_keeps_sex_age_size_weight() -> None:
    kept = deidentify(
        _ct(), Profile(frozenset({Option.RETAIN_PATIENT_CHARACTERISTICS})), secret=SECRET
    ).dataset
    assert (kept.PatientSex, kept.PatientAge, kept.PatientSize, kept.PatientWeight) == (
        "M",
        "063Y",
        1.82,
        81.5,
    )
    basic = deidentify(_ct(), Profile(), secret=SECRET).dataset
    assert not basic.get("PatientSex")
    assert "PatientAge" not in basic and "PatientSize" not in basic and "PatientWeight" not in basic


def test_device_identity_option() -> None:
    kept = deidentify(_ct(), Profile(frozenset({Option.RETAIN_DEVICE_IDENTITY})), secret=SECRET).dataset
    assert (kept.DeviceSerialNumber, kept.StationName) == ("SN-778899", "CTROOM7")
    basic = deidentify(_ct(), Profile(), secret=SECRET).dataset
    assert basic.get("DeviceSerialNumber") in (None, "") and basic.get("StationName") in (None, "")


def test_clean_descriptors_option_keeps_the_descriptor_without_identifiers() -> None:
    cleaned = deidentify(_ct(), Profile(frozenset({Option.CLEAN_DESCRIPTORS})), secret=SECRET).dataset
    assert cleaned.StudyDescription == "CT head for ***, ***"  # "Doe John" is the name as a phrase
    assert "StudyDescription" not in deidentify(_ct(), Profile(), secret=SECRET).dataset


def test_safe_private_option_keeps_only_listed_private_attributes() -> None:
    ds = _ct()
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", "1000")  # B Value: on the safe list
    block.add_new(0x10, "LO", "Doe^John")  # not on the list
    other = ds.private_block(0x0029, "ACME PRIVATE", create=True)
    other.add_new(0x01, "LO", "secret")
    kept = deidentify(ds, Profile(frozenset({Option.RETAIN_SAFE_PRIVATE})), secret=SECRET).dataset
    b_value = block.get_tag(0x0C)
    assert (
        kept[b_value].value == "1000"
        and kept[block.block_start >> 8 | 0x00190000].value == "SIEMENS MR HEADER"
    )
    assert block.get_tag(0x10) not in kept
    assert not [elem for elem in kept if elem.tag.group == 0x0029]
    safe = load_safe_private()
    for elem in kept:
        if elem.tag.is_private and elem.tag.element >= 0x1000:
            creator = kept[(elem.tag.group << 16) | (elem.tag.element >> 8)].value
            assert (elem.tag.group, creator, elem.tag.element & 0xFF) in safe
    # CT_small's own GE private attributes include safe ones (Table Speed, Mid Scan Time).
    assert kept[0x00190010].value == "GEMS_ACQU_01" and 0x00191023 in kept
    basic = deidentify(ds, Profile(), secret=SECRET).dataset
    assert not [elem for elem in basic if elem.tag.is_private]


def test_pseudonym_replaces_patient_id_and_name() -> None:
    out = deidentify(_ct(), Profile(), secret=SECRET).dataset
    assert re.fullmatch(r"CR-[A-Z2-7]{16}", out.PatientID)
    assert out.PatientID == default_pseudonym("MRN-0042", SECRET) == str(out.PatientName)
    by_callable = deidentify(_ct(), Profile(), secret=SECRET, pseudonym=lambda pid: f"P-{len(pid)}").dataset
    assert by_callable.PatientID == "P-8"
    by_mapping = deidentify(_ct(), Profile(), secret=SECRET, pseudonym={"MRN-0042": "SUBJ-001"}).dataset
    assert (by_mapping.PatientID, str(by_mapping.PatientName)) == ("SUBJ-001", "SUBJ-001")


@pytest.mark.parametrize(
    "pseudonym", [{"OTHER": "X"}, lambda pid: "", lambda pid: "a\\b", lambda pid: "x" * 65]
)
def test_missing_or_invalid_pseudonym_is_refused(pseudonym: object) -> None:
    with pytest.raises(ValueError, match="pseudonym"):
        deidentify(_ct(), Profile(), secret=SECRET, pseudonym=pseudonym)  # type: ignore[arg-type]


def test_result_records_profile_options_and_codes() -> None:
    profile = Profile(frozenset({Option.RETAIN_PATIENT_CHARACTERISTICS, Option.CLEAN_DESCRIPTORS}))
    out = deidentify(_ct(), profile, secret=SECRET).dataset
    assert out.PatientIdentityRemoved == "YES"
    assert list(out.DeidentificationMethod) == list(profile.method_texts)
    codes = [(item.CodingSchemeDesignator, item.CodeValue) for item in out.DeidentificationMethodCodeSequence]
    assert codes == [("DCM", "113100"), ("DCM", "113108"), ("DCM", "113105")]


def test_file_meta_is_rebuilt_and_input_untouched() -> None:
    ds = _ct()
    before = copy.deepcopy(ds)
    result = deidentify(ds, Profile(), secret=SECRET)
    assert ds == before and ds.file_meta == before.file_meta
    meta = result.dataset.file_meta
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.MediaStorageSOPInstanceUID == result.dataset.SOPInstanceUID != ds.SOPInstanceUID
    assert meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    buffer = io.BytesIO()
    result.dataset.save_as(buffer, enforce_file_format=True)
    assert buffer.getvalue()[:128] == b"\x00" * 128
    assert pydicom.dcmread(io.BytesIO(buffer.getvalue())).PatientIdentityRemoved == "YES"


def test_dicomdir_is_refused() -> None:
    with pytest.raises(ValueError, match="DICOMDIR"):
        deidentify(read(corpus.file("pydicom", "dicomdirtests/DICOMDIR")), Profile(), secret=SECRET)


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        deidentify(_ct(), Profile(), secret=b"")
