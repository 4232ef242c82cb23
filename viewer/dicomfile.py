"""Reading, validating and describing one PS3.10 DICOM file. No Django here.

Reading is tolerant of the small deviations real files have, but refuses what cannot be archived
faithfully: bytes that are not a PS3.10 file, truncated values, a missing identifying UID.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

#: PS3.4 Table B.2-1 / PS3.18 failure reasons used in STOW-RS FailedSOPSequence.
FAILURE_CANNOT_UNDERSTAND = 0xC000
FAILURE_PROCESSING = 0x0110
FAILURE_DUPLICATE_CONFLICT = 0x0111
FAILURE_STUDY_MISMATCH = 0xA900
FAILURE_OUT_OF_RESOURCES = 0xA700

REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


class InvalidDicom(Exception):
    """The bytes cannot be archived. ``reason`` is safe to show: it never quotes element values."""

    def __init__(self, reason: str, failure_code: int = FAILURE_CANNOT_UNDERSTAND, **uids: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.failure_code = failure_code
        self.uids = uids


def read_part10(data: bytes) -> Dataset:
    """Parse a PS3.10 file and check that it is whole and identifiable.

    Raises :class:`InvalidDicom` with a reason a person can act on.
    """
    if len(data) < 132 or data[128:132] != b"DICM":
        raise InvalidDicom("Not a DICOM PS3.10 file: the 128-byte preamble and 'DICM' prefix are missing.")
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=False)
    except (InvalidDicomError, EOFError, struct.error, ValueError, KeyError, NotImplementedError) as exc:
        raise InvalidDicom(f"Unreadable DICOM file ({type(exc).__name__}).") from None
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        raise InvalidDicom("The file meta information has no TransferSyntaxUID (0002,0010).")
    _check_whole(ds)
    uids = {keyword: str(ds.get(keyword, "") or "").strip() for keyword in REQUIRED_UIDS}
    missing = [keyword for keyword, value in uids.items() if not value]
    if missing:
        raise InvalidDicom(f"Missing required attribute(s): {', '.join(missing)}.", FAILURE_CANNOT_UNDERSTAND, **uids)
    too_long = [keyword for keyword, value in uids.items() if len(value) > 64]
    if too_long:
        raise InvalidDicom(f"UID longer than 64 characters: {', '.join(too_long)}.", FAILURE_CANNOT_UNDERSTAND, **uids)
    return ds


def _check_whole(ds: Dataset) -> None:
    for tag in list(ds.keys()):
        elem = ds.get_item(tag)
        if not isinstance(elem, RawDataElement) or elem.length == UNDEFINED_LENGTH:
            continue
        if len(elem.value or b"") != elem.length:
            raise InvalidDicom(f"The file is truncated: element {tag} is shorter than its declared length.")
    if "Rows" in ds and "Columns" in ds and not any(tag in ds for tag in PIXEL_DATA_TAGS):
        raise InvalidDicom("The file is truncated or damaged: an image without Pixel Data.")
    pixel = ds.get_item(0x7FE00010)
    if isinstance(pixel, RawDataElement) and pixel.length == UNDEFINED_LENGTH:
        _check_encapsulated(pixel.value or b"")
    try:
        ds.walk(lambda _ds, _elem: None)
    except Exception as exc:  # pydicom raises many kinds on damaged nested data
        raise InvalidDicom(f"The file is damaged: a nested element cannot be read ({type(exc).__name__}).") from None


def _check_encapsulated(value: bytes) -> None:
    """PS3.5 A.4: encapsulated Pixel Data is a sequence of items, each whole."""
    pos = 0
    while pos < len(value):
        if pos + 8 > len(value):
            raise InvalidDicom("The file is truncated inside its encapsulated Pixel Data.")
        group, element, length = struct.unpack("<HHI", value[pos : pos + 8])
        if (group, element) != (0xFFFE, 0xE000) or pos + 8 + length > len(value):
            raise InvalidDicom("The file is truncated inside its encapsulated Pixel Data.")
        pos += 8 + length


@dataclass(frozen=True)
class IndexAttributes:
    """What the archive's tables keep of one instance (PS3.18 QIDO-RS matching and return keys)."""

    study: dict[str, Any]
    series: dict[str, Any]
    instance: dict[str, Any]


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def index_attributes(ds: Dataset) -> IndexAttributes:
    return IndexAttributes(
        study={
            "study_instance_uid": str(ds.StudyInstanceUID).strip(),
            "patient_name": _text(ds, "PatientName", 324),
            "patient_id": _text(ds, "PatientID", 64),
            "patient_birth_date": _text(ds, "PatientBirthDate", 8),
            "patient_sex": _text(ds, "PatientSex", 16),
            "study_date": _text(ds, "StudyDate", 8),
            "study_time": _text(ds, "StudyTime", 16),
            "accession_number": _text(ds, "AccessionNumber", 16),
            "study_id": _text(ds, "StudyID", 16),
            "study_description": _text(ds, "StudyDescription", 64),
            "referring_physician_name": _text(ds, "ReferringPhysicianName", 324),
        },
        series={
            "series_instance_uid": str(ds.SeriesInstanceUID).strip(),
            "modality": _text(ds, "Modality", 16),
            "series_number": _int(ds, "SeriesNumber"),
            "series_description": _text(ds, "SeriesDescription", 64),
        },
        instance={
            "sop_instance_uid": str(ds.SOPInstanceUID).strip(),
            "sop_class_uid": str(ds.SOPClassUID).strip(),
            "instance_number": _int(ds, "InstanceNumber"),
            "transfer_syntax_uid": str(ds.file_meta.TransferSyntaxUID),
            "rows": _int(ds, "Rows"),
            "columns": _int(ds, "Columns"),
            "bits_allocated": _int(ds, "BitsAllocated"),
            "number_of_frames": _int(ds, "NumberOfFrames"),
        },
    )


# Attributes of the Patient, General Study and Patient Study modules (PS3.3 C.7.1.1, C.7.2.1, C.7.2.2),
# answered at the study level of QIDO-RS.
STUDY_LEVEL_KEYWORDS = frozenset(
    """SpecificCharacterSet TimezoneOffsetFromUTC PatientName PatientID IssuerOfPatientID TypeOfPatientID
    PatientBirthDate PatientBirthTime PatientSex OtherPatientIDsSequence OtherPatientNames PatientComments
    PatientSpeciesDescription PatientBreedDescription ResponsiblePerson ResponsibleOrganization
    PatientIdentityRemoved DeidentificationMethod DeidentificationMethodCodeSequence
    StudyInstanceUID StudyDate StudyTime ReferringPhysicianName StudyID AccessionNumber
    IssuerOfAccessionNumberSequence StudyDescription PhysiciansOfRecord NameOfPhysiciansReadingStudy
    ProcedureCodeSequence ReferencedStudySequence RequestingService AdmittingDiagnosesDescription
    PatientAge PatientSize PatientWeight EthnicGroup Occupation AdditionalPatientHistory""".split()
)

# Attributes of the General Series, Frame of Reference and General Equipment modules.
SERIES_LEVEL_KEYWORDS = frozenset(
    """Modality SeriesInstanceUID SeriesNumber Laterality SeriesDate SeriesTime PerformingPhysicianName
    ProtocolName SeriesDescription OperatorsName BodyPartExamined PatientPosition
    PerformedProcedureStepStartDate PerformedProcedureStepStartTime PerformedProcedureStepID
    PerformedProcedureStepDescription RequestAttributesSequence FrameOfReferenceUID
    PositionReferenceIndicator Manufacturer InstitutionName StationName ManufacturerModelName
    SoftwareVersions""".split()
)


def _tag_hex(keyword: str) -> str:
    tag = pydicom.datadict.tag_for_keyword(keyword)
    assert tag is not None, keyword
    return f"{tag:08X}"


STUDY_LEVEL_TAGS = frozenset(_tag_hex(k) for k in STUDY_LEVEL_KEYWORDS)
SERIES_LEVEL_TAGS = frozenset(_tag_hex(k) for k in SERIES_LEVEL_KEYWORDS)

#: Binary values larger than this are left out of metadata and served as bulk data.
BULK_DATA_THRESHOLD = 4096
BULK_DATA_PLACEHOLDER = "bulkdata/"


def dicom_json(ds: Dataset) -> dict[str, Any]:
    """The dataset as DICOM JSON (PS3.18 F.2), with large binary values as relative BulkDataURIs.

    A placeholder ``bulkdata/<tag>`` is stored; the HTTP layer turns it into an absolute URI.
    """

    def bulk_uri(elem: pydicom.DataElement) -> str:
        return f"{BULK_DATA_PLACEHOLDER}{elem.tag:08X}"

    metadata = ds.to_json_dict(bulk_data_threshold=BULK_DATA_THRESHOLD, bulk_data_element_handler=bulk_uri)
    for tag in PIXEL_DATA_TAGS:  # pixel data is bulk data whatever its size, never inline
        if tag in ds:
            metadata[f"{tag:08X}"] = {"vr": ds[tag].VR, "BulkDataURI": f"{BULK_DATA_PLACEHOLDER}{tag:08X}"}
    return metadata


def level_subset(metadata: dict[str, Any], tags: frozenset[str]) -> dict[str, Any]:
    return {tag: value for tag, value in metadata.items() if tag in tags}
