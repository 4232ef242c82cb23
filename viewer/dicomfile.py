"""Reading, validating and describing one PS3.10 DICOM file. No Django here.

Reading is tolerant of the small deviations real files have, but refuses what cannot be archived
faithfully: bytes that are not a PS3.10 file, truncated values, a missing identifying UID.
"""

from __future__ import annotations

import functools
import io
import struct
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom import config
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from viewer import dicomjson

# Values are read without pydicom's validation (its setting for the whole process). In its default mode
# it only warns, a value is kept as it is either way, and it took a third of a 512x512 CT slice's parse
# and half of a small file's (3.5 to 2.2 ms, 1.27 to 0.60 ms per file, the descriptions the same): the
# archive keeps values as they were sent and refuses what it cannot keep by its own checks, below.
config.settings.reading_validation_mode = config.IGNORE

#: PS3.4 Table B.2-1 / PS3.18 failure reasons used in STOW-RS FailedSOPSequence.
FAILURE_CANNOT_UNDERSTAND = 0xC000
FAILURE_PROCESSING = 0x0110
FAILURE_DUPLICATE_CONFLICT = 0x0111
FAILURE_STUDY_MISMATCH = 0xA900
FAILURE_OUT_OF_RESOURCES = 0xA700

#: Binary values larger than this are left out of metadata and served as bulk data: base64 of more
#: than BULK_DATA_THRESHOLD characters (PS3.18 F.2.7), values of more than BULK_DATA_BYTES bytes.
BULK_DATA_THRESHOLD = 4096
BULK_DATA_BYTES = (BULK_DATA_THRESHOLD // 4) * 3
BULK_DATA_PLACEHOLDER = "bulkdata/"

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


#: The Implementation Class UID written in the file meta of a file stored without one (PS3.10 7.1).
IMPLEMENTATION_CLASS_UID = "2.25.152336318199683759004596578087586407545"
IMPLEMENTATION_VERSION_NAME = "CROSSREAD"

#: Groups a bare data set (no preamble) may start with: file meta (0002) or, without it, the first
#: groups of a composite object (0008 Identifying, rarely 0000-less command-free 0004..0010).
_FIRST_GROUPS = frozenset({0x0002, 0x0004, 0x0008, 0x0010})


@dataclass(frozen=True)
class Part10:
    """A file as the archive keeps it: the parsed data set and its bytes as a PS3.10 file.

    ``rewritten`` is true when the bytes received were not a complete PS3.10 file (no preamble, no
    file meta, or file meta without a Transfer Syntax UID) and ``data`` is the file written again
    with a preamble and file meta.
    """

    dataset: Dataset
    data: bytes
    rewritten: bool = False


def read_part10(data: bytes) -> Dataset:
    """Parse a DICOM file and check that it is whole and identifiable (see :func:`read_dicom`)."""
    return read_dicom(data).dataset


def read_dicom(data: bytes, *, in_place: bool = False) -> Part10:
    """Parse a DICOM file, check that it is whole and identifiable, and give it as a PS3.10 file.

    A file without the 128-byte preamble, or without file meta (PS3.10 7.1), or whose file meta has
    no Transfer Syntax UID, is read as other archives read it (pydicom ``dcmread(force=True)``: the
    transfer syntax from the meta when present, else guessed from the first element, which defaults
    to Implicit VR Little Endian) and written again with a preamble and complete file meta.
    Raises :class:`InvalidDicom` with a reason a person can act on.

    ``in_place``: for a description of the file only (:func:`describe`). The binary values too long
    to be inline in DICOM JSON (Pixel Data) are left in ``data``, checked for their length but not
    copied out. Only a complete PS3.10 file in explicit VR little endian (the uncompressed and all
    the compressed syntaxes) is read so; others are read whole.
    """
    complete = len(data) >= 132 and data[128:132] == b"DICM"
    if not complete and not _looks_like_a_data_set(data):
        raise InvalidDicom(
            "Not DICOM: neither a PS3.10 file (128-byte preamble and 'DICM' prefix) nor a data set "
            "starting with a DICOM element."
        )
    in_place = in_place and complete
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=not complete, defer_size=BULK_DATA_BYTES if in_place else None)
    except (InvalidDicomError, EOFError, OSError, struct.error, ValueError, KeyError, NotImplementedError) as exc:
        raise InvalidDicom(f"Unreadable DICOM file ({type(exc).__name__}).") from None
    meta = getattr(ds, "file_meta", None)
    has_syntax = meta is not None and "TransferSyntaxUID" in meta
    if in_place and not (meta is not None and has_syntax and _read_in_place(meta.TransferSyntaxUID)
                         and ds.original_encoding == (False, True)):
        return read_dicom(data)  # (bytes in another order, inflated first, implicit VR, or a file to write again)
    if not has_syntax and not complete and len(ds) == 0:
        raise InvalidDicom("Not DICOM: no data set could be read.")
    _check_whole(ds, data if in_place else None)
    uids = {keyword: _uid(ds, keyword, tag) for keyword, tag in _REQUIRED_UID_TAGS}
    missing = [keyword for keyword, value in uids.items() if not value]
    if missing:
        raise InvalidDicom(f"Missing required attribute(s): {', '.join(missing)}.", FAILURE_CANNOT_UNDERSTAND, **uids)
    too_long = [keyword for keyword, value in uids.items() if len(value) > 64]
    if too_long:
        raise InvalidDicom(f"UID longer than 64 characters: {', '.join(too_long)}.", FAILURE_CANNOT_UNDERSTAND, **uids)
    if complete and has_syntax:
        return Part10(ds, data)
    return Part10(ds, _as_part10(ds, uids), rewritten=True)


_REQUIRED_UID_TAGS = tuple((keyword, pydicom.datadict.tag_for_keyword(keyword)) for keyword in REQUIRED_UIDS)


def _uid(ds: Dataset, keyword: str, tag: int | None) -> str:
    """The UID ``keyword`` of ``ds`` as text, "" if absent. Read from the element's bytes as pydicom
    would convert them (Latin-1, trailing NULs and spaces off, stripped), without converting the element:
    pydicom's conversion of the four UIDs cost a tenth of describing a small file."""
    elem = ds.get_item(tag, keep_deferred=True) if tag is not None else None
    raw = elem.value if isinstance(elem, RawDataElement) and elem.VR in (None, "UI") else None
    if isinstance(raw, bytes) and b"\\" not in raw:
        return raw.decode("latin_1").rstrip("\0 ").strip()
    return str(ds.get(keyword, "") or "").strip()


def _looks_like_a_data_set(data: bytes) -> bool:
    """The first tag of a bare data set, little or big endian, is in a group such files start with."""
    if len(data) >= 4 and data[:4] == b"DICM":  # the prefix without its preamble
        return True
    if len(data) < 8:
        return False
    little, big = struct.unpack("<H", data[:2])[0], struct.unpack(">H", data[:2])[0]
    return little in _FIRST_GROUPS or big in _FIRST_GROUPS


def transfer_syntax_of(ds: Dataset) -> str:
    """The Transfer Syntax UID a data set read without one was encoded in (PS3.5 10.1, A.1-A.3).

    Derived from the encoding pydicom found (implicit or explicit VR, byte order); a data set whose
    Pixel Data is encapsulated cannot be placed (its compression is unknown) and is refused.
    """
    pixel = ds.get_item(0x7FE00010) if 0x7FE00010 in ds else None
    if pixel is not None and (getattr(pixel, "is_undefined_length", False) or getattr(pixel, "length", None) == UNDEFINED_LENGTH):
        raise InvalidDicom("Compressed Pixel Data without a Transfer Syntax UID: the compression cannot be known.")
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        return str(ImplicitVRLittleEndian)
    if implicit:
        return str(ImplicitVRLittleEndian)
    return str(ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _as_part10(ds: Dataset, uids: dict[str, str]) -> bytes:
    """The data set written again as a PS3.10 file: preamble, 'DICM', complete file meta."""
    old = getattr(ds, "file_meta", None)
    syntax = str(old.TransferSyntaxUID) if old is not None and "TransferSyntaxUID" in old else transfer_syntax_of(ds)
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(uids["SOPClassUID"])
    meta.MediaStorageSOPInstanceUID = UID(uids["SOPInstanceUID"])
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    buffer = io.BytesIO()
    try:
        ds.save_as(buffer, enforce_file_format=True)
    except Exception as exc:  # pydicom raises many kinds on values it cannot encode again
        raise InvalidDicom(f"The file cannot be written as a PS3.10 file ({type(exc).__name__}).") from None
    return buffer.getvalue()


def _read_in_place(syntax: UID) -> bool:
    """Whether a file of this transfer syntax is read in place: explicit VR little endian, as stored."""
    try:
        return syntax.is_little_endian and not syntax.is_implicit_VR and not syntax.is_deflated
    except ValueError:  # not a transfer syntax pydicom knows
        return False


def _check_whole(ds: Dataset, source: bytes | None = None) -> None:
    """Refuse a truncated or damaged data set. ``source``: the file a data set read in place
    (:func:`read_dicom`) left its long values in; of those, the ones that are not binary are read now."""
    for tag in list(ds.keys()):
        elem = ds.get_item(tag, keep_deferred=True)
        if not isinstance(elem, RawDataElement) or elem.length == UNDEFINED_LENGTH:
            continue
        if source is not None and elem.value is None and elem.length:  # left in the file
            if elem.value_tell + elem.length > len(source):
                raise InvalidDicom(f"The file is truncated: element {tag} is shorter than its declared length.")
            if elem.VR not in dicomjson.BINARY_VRS:
                ds[tag] = elem._replace(value=source[elem.value_tell : elem.value_tell + elem.length])
            continue
        if len(elem.value or b"") != elem.length:
            raise InvalidDicom(f"The file is truncated: element {tag} is shorter than its declared length.")
    if "Rows" in ds and "Columns" in ds and not any(tag in ds for tag in PIXEL_DATA_TAGS):
        raise InvalidDicom("The file is truncated or damaged: an image without Pixel Data.")
    pixel = ds.get_item(0x7FE00010, keep_deferred=True)
    if isinstance(pixel, RawDataElement) and pixel.length == UNDEFINED_LENGTH:
        _check_encapsulated(pixel.value or b"")
    try:
        if source is None:
            ds.walk(lambda _ds, _elem: None)
        else:  # the sequences (their other elements are read by dicom_json, which refuses them alike)
            for tag in list(ds.keys()):
                if ds.get_item(tag, keep_deferred=True).VR == "SQ":
                    for item in ds[tag].value:
                        item.walk(lambda _ds, _elem: None)
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


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, pydicom.multival.MultiValue)):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit]


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def index_attributes(ds: Dataset, metadata: dict[str, Any] | None = None) -> IndexAttributes:
    """The index columns of a data set; ``metadata``, its DICOM JSON (:func:`dicom_json`), is read
    instead of the data set when given (its elements are not converted again)."""
    get = _json_values(metadata) if metadata is not None else ds.get
    return IndexAttributes(
        study={
            "study_instance_uid": str(get("StudyInstanceUID")).strip(),
            "patient_name": _text(get("PatientName"), 324),
            "patient_id": _text(get("PatientID"), 64),
            "patient_birth_date": _text(get("PatientBirthDate"), 8),
            "patient_sex": _text(get("PatientSex"), 16),
            "study_date": _text(get("StudyDate"), 8),
            "study_time": _text(get("StudyTime"), 16),
            "accession_number": _text(get("AccessionNumber"), 16),
            "study_id": _text(get("StudyID"), 16),
            "study_description": _text(get("StudyDescription"), 64),
            "referring_physician_name": _text(get("ReferringPhysicianName"), 324),
        },
        series={
            "series_instance_uid": str(get("SeriesInstanceUID")).strip(),
            "modality": _text(get("Modality"), 16),
            "series_number": _int(get("SeriesNumber")),
            "series_description": _text(get("SeriesDescription"), 64),
        },
        instance={
            "sop_instance_uid": str(get("SOPInstanceUID")).strip(),
            "sop_class_uid": str(get("SOPClassUID")).strip(),
            "instance_number": _int(get("InstanceNumber")),
            "transfer_syntax_uid": str(ds.file_meta.TransferSyntaxUID),
            "rows": _int(get("Rows")),
            "columns": _int(get("Columns")),
            "bits_allocated": _int(get("BitsAllocated")),
            "number_of_frames": _int(get("NumberOfFrames")),
        },
    )


def _json_values(metadata: dict[str, Any]) -> Any:
    """``get(keyword)`` over DICOM JSON, giving what ``Dataset.get`` gives for the index's attributes:
    the one value or a list of them (a person name as its text), None when there is none."""

    def get(keyword: str) -> Any:
        element = metadata.get(_tag_hex(keyword))
        values = element.get("Value") if element else None
        if not values:
            return None
        values = [_person_name(v) if isinstance(v, dict) else v for v in values]
        return values[0] if len(values) == 1 else values

    return get


def _person_name(value: dict[str, str]) -> str:
    """A PN value's text (``Alphabetic=Ideographic=Phonetic``, as pydicom's ``str``)."""
    groups = [value.get("Alphabetic", ""), value.get("Ideographic"), value.get("Phonetic")]
    while groups and groups[-1] is None:
        groups.pop()
    return "=".join(g or "" for g in groups)


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


@functools.cache
def _tag_hex(keyword: str) -> str:
    tag = pydicom.datadict.tag_for_keyword(keyword)
    assert tag is not None, keyword
    return f"{tag:08X}"


STUDY_LEVEL_TAGS = frozenset(_tag_hex(k) for k in STUDY_LEVEL_KEYWORDS)
SERIES_LEVEL_TAGS = frozenset(_tag_hex(k) for k in SERIES_LEVEL_KEYWORDS)

def dicom_json(ds: Dataset) -> dict[str, Any]:
    """The dataset as DICOM JSON (PS3.18 F.2), with large binary values as relative BulkDataURIs:
    pydicom's ``to_json_dict``, its plain elements written from their bytes (:mod:`viewer.dicomjson`).

    A placeholder ``bulkdata/<tag>`` is stored; the HTTP layer turns it into an absolute URI. Raises
    :class:`InvalidDicom` for an element pydicom cannot read, and what ``to_json_dict`` raises for one
    it cannot write as JSON.
    """
    codec = _character_set(ds)
    metadata: dict[str, Any] = {}
    for tag in ds.keys():
        key = f"{tag:08X}"
        elem = ds.get_item(tag, keep_deferred=True)
        if tag in PIXEL_DATA_TAGS:  # pixel data is bulk data whatever its size, never inline
            vr = elem.VR if elem.VR in dicomjson.BINARY_VRS else ds[tag].VR  # (implicit VR: pydicom's choice)
            metadata[key] = {"vr": vr, "BulkDataURI": f"{BULK_DATA_PLACEHOLDER}{key}"}
            continue
        written = None
        if isinstance(elem, RawDataElement) and elem.VR and elem.is_little_endian and elem.length != UNDEFINED_LENGTH:
            written = dicomjson.element_json(
                elem.VR, elem.value, elem.length, codec, BULK_DATA_BYTES, lambda: f"{BULK_DATA_PLACEHOLDER}{key}"
            )
        if written is None:
            try:
                element = ds[tag]
            except Exception as exc:  # pydicom raises many kinds on damaged values
                raise InvalidDicom(f"The file is damaged: an element cannot be read ({type(exc).__name__}).") from None
            written = element.to_json_dict(bulk_data_element_handler=_bulk_uri, bulk_data_threshold=BULK_DATA_THRESHOLD)
        metadata[key] = written
    return metadata


def _bulk_uri(elem: pydicom.DataElement) -> str:
    return f"{BULK_DATA_PLACEHOLDER}{elem.tag:08X}"


def _character_set(ds: Dataset) -> str | None:
    """The codec :mod:`viewer.dicomjson` reads the data set's text with, or None (pydicom reads it)."""
    elem = ds.get_item(0x00080005, keep_deferred=True)
    if elem is None:
        return dicomjson.character_set(None)
    value = elem.value
    if isinstance(value, str):
        value = value.encode("latin_1", "replace")
    return dicomjson.character_set(value) if isinstance(value, bytes) else None


@dataclass(frozen=True)
class Described:
    """What the archive keeps of a file that :func:`describe` read (the data set itself is not kept).
    ``metadata`` is None when the data set cannot be written as DICOM JSON (``json_error`` names why);
    ``rewritten`` holds the PS3.10 file when the bytes were not one."""

    attrs: IndexAttributes
    metadata: dict[str, Any] | None
    json_error: str = ""
    rewritten: bytes | None = None


@dataclass(frozen=True)
class Refusal:
    """Why :func:`describe` refused a file (:class:`InvalidDicom`'s fields)."""

    reason: str
    failure_code: int
    uids: dict[str, str]


def describe(data: bytes) -> Described | Refusal:
    """Read and validate a file (:func:`read_dicom`, in place), and give its index attributes and
    DICOM JSON."""
    try:
        part = read_dicom(data, in_place=True)
        try:
            metadata: dict[str, Any] | None = dicom_json(part.dataset)
            error = ""
        except InvalidDicom:
            raise
        except Exception as exc:  # pydicom cannot express some damaged values as JSON
            metadata, error = None, type(exc).__name__
        attrs = index_attributes(part.dataset, metadata)
    except InvalidDicom as exc:
        return Refusal(exc.reason, exc.failure_code, dict(exc.uids))
    return Described(attrs, metadata, error, part.data if part.rewritten else None)


def level_subset(metadata: dict[str, Any], tags: frozenset[str]) -> dict[str, Any]:
    return {tag: value for tag, value in metadata.items() if tag in tags}
