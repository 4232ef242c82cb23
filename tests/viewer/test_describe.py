"""dicomfile.describe: a file read once into what the archive keeps of it (no database)."""

from __future__ import annotations

import io

import pydicom

from tests.factories.dicom import ct_bytes
from viewer import dicomfile


def test_a_description_holds_what_reading_the_file_gives():
    data = ct_bytes()
    described = dicomfile.describe(data)
    ds = dicomfile.read_dicom(data).dataset
    assert described == dicomfile.Described(dicomfile.index_attributes(ds), dicomfile.dicom_json(ds))


def test_a_file_without_preamble_and_meta_is_described_with_its_ps310_bytes():
    whole = ct_bytes()
    meta = pydicom.dcmread(io.BytesIO(whole), stop_before_pixels=True).file_meta
    bare = whole[132 + 12 + int(meta.FileMetaInformationGroupLength):]
    described = dicomfile.describe(bare)
    assert isinstance(described, dicomfile.Described)
    assert described.rewritten is not None and described.rewritten[128:132] == b"DICM"
    assert described.rewritten == dicomfile.read_dicom(bare).data


def test_a_refused_file_is_described_by_its_reason():
    truncated = dicomfile.describe(ct_bytes()[:-300])
    assert isinstance(truncated, dicomfile.Refusal) and "truncated" in truncated.reason
    assert truncated.failure_code == dicomfile.FAILURE_CANNOT_UNDERSTAND
    assert isinstance(dicomfile.describe(b"not DICOM at all" * 10), dicomfile.Refusal)


def test_values_are_read_without_pydicom_validating_them_and_kept_as_sent():
    """pydicom's validation only warns and took a third to a half of a file's parse: it is off."""
    assert pydicom.config.settings.reading_validation_mode == pydicom.config.IGNORE
    described = dicomfile.describe(ct_bytes(PatientSex="NOT A CODE STRING", StudyDate="2024-13-45"))
    assert isinstance(described, dicomfile.Described)
    assert described.metadata["00080020"] == {"vr": "DA", "Value": ["2024-13-45"]}
    assert described.metadata["00100040"] == {"vr": "CS", "Value": ["NOT A CODE STRING"]}


def _with_raw_uid(data: bytes, keyword: str, raw: bytes, vr: str = "UI") -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.add_new(pydicom.datadict.tag_for_keyword(keyword), vr, "placeholder")
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue().replace(b"placeholder\x00" if vr == "UI" else b"placeholder ", raw.ljust(12, b"\x00")[:12])


def test_required_uids_are_read_from_their_bytes_as_pydicom_converts_them():
    """The four UIDs every file needs are read from the element's bytes (not converted by pydicom):
    padding NULs and spaces go, as pydicom's conversion takes them off; a list, or a UID of another
    VR, goes through pydicom as before."""
    data = ct_bytes()
    cases = {
        b"1.2.3.4\x00": "1.2.3.4",
        b"1.2.3.4 \x00": "1.2.3.4",
        b" 1.2.3\x00\x00": "1.2.3",
        b"1.2\\3.4": "['1.2', '3.4']",
    }
    for raw, expected in cases.items():
        described = dicomfile.read_dicom(_with_raw_uid(data, "SeriesInstanceUID", raw), in_place=True)
        reference = pydicom.dcmread(io.BytesIO(described.data))
        assert dicomfile._uid(described.dataset, "SeriesInstanceUID", 0x0020000E) == expected
        assert expected == str(reference.SeriesInstanceUID).strip()
    assert dicomfile._uid(pydicom.dcmread(io.BytesIO(data)), "SeriesInstanceUID", 0x0020000E)
    assert dicomfile._uid(pydicom.Dataset(), "SeriesInstanceUID", 0x0020000E) == ""
