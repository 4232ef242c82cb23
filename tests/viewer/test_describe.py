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
