"""DIMSE's pure rules: AE titles, who may associate, C-STORE statuses, and the conversions between
C-FIND/C-GET/C-MOVE identifiers and the archive's queries. No Django.

The handlers of :mod:`viewer.dimse.server` stay thin: they ask these rules, the gate
(:func:`viewer.access.access_node`) and the services every other entry point uses.
"""

from __future__ import annotations

import io
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

from viewer.dicomfile import SERIES_LEVEL_TAGS, STUDY_LEVEL_TAGS

AE_TITLE_MAX = 16
#: A node whose AE title is this matches any calling AE title (from its addresses).
ANY_AE_TITLE = "*"

# --------------------------------------------------------------------------------- AE titles


def valid_ae_title(value: str) -> bool:
    """PS3.5 6.2 AE: 1 to 16 characters of the default repertoire, no backslash or control
    characters, not only spaces (leading and trailing spaces are not significant)."""
    text = value.strip(" ")
    return (
        0 < len(value) <= AE_TITLE_MAX
        and bool(text)
        and all(0x20 <= ord(c) < 0x7F and c != "\\" for c in value)
    )


def default_ae_title(slug: str) -> str:
    """A project's AE title when none is set: its slug in capitals, cut to 16 characters."""
    return slug.upper()[:AE_TITLE_MAX]


def project_ae_title(slug: str, configured: str) -> str:
    """The AE title that reaches a project: the one configured, else :func:`default_ae_title`."""
    return configured.strip() or default_ae_title(slug)


def same_ae_title(a: str, b: str) -> bool:
    """AE titles compare without their leading and trailing spaces (PS3.5 6.2), case-sensitively."""
    return a.strip() == b.strip()


def valid_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def address_allowed(address: str, networks: Iterable[str]) -> bool:
    """Is ``address`` (an IP address) one of ``networks`` (addresses or CIDR networks)?"""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in networks:
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


@dataclass(frozen=True)
class NodeFacts:
    """A configured remote node as the rules need it."""

    project_ae_title: str
    ae_title: str
    addresses: tuple[str, ...]
    kind: str


def node_matches(node: NodeFacts, calling: str, address: str) -> bool:
    """Does a caller with AE title ``calling`` from ``address`` match ``node``?"""
    return (node.ae_title == ANY_AE_TITLE or same_ae_title(node.ae_title, calling)) and address_allowed(
        address, node.addresses
    )


#: A-ASSOCIATE-RJ diagnostics (PS3.8 9.3.4, source "DICOM UL service-user").
CALLING_AE_NOT_RECOGNISED = 0x03
CALLED_AE_NOT_RECOGNISED = 0x07


def association_refusal(*, called_known: bool, caller_known_anywhere: bool, allowed_here: bool) -> int | None:
    """Why an association request is rejected, as its diagnostic, or ``None`` to accept it.

    A caller no project knows (AE title and address) learns nothing: "calling AE title not
    recognised", whatever it called. A known node calling an unknown AE title hears that the called
    AE title is not recognised; calling a project it is not configured for, that it is not recognised.
    """
    if not caller_known_anywhere:
        return CALLING_AE_NOT_RECOGNISED
    if not called_known:
        return CALLED_AE_NOT_RECOGNISED
    if not allowed_here:
        return CALLING_AE_NOT_RECOGNISED
    return None


# --------------------------------------------------------------------------------- C-STORE

SUCCESS = 0x0000
PENDING = 0xFF00
CANCELLED = 0xFE00
#: C-STORE (PS3.4 B.2.3): refused, out of resources; error, data set does not match SOP class;
#: error, cannot understand; warning, coercion of data elements.
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000
COERCION_OF_DATA_ELEMENTS = 0xB000
#: General statuses (PS3.7 C): processing failure, duplicate SOP instance, not authorised.
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NOT_AUTHORISED = 0x0124
#: C-FIND/C-GET/C-MOVE (PS3.4 C.4): identifier does not match SOP class; unable to process; out of
#: resources (unable to calculate the number of matches / to perform sub-operations); unknown move
#: destination; sub-operations complete with failures.
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_PROCESS = 0xC000
QR_OUT_OF_RESOURCES = 0xA700
RETRIEVE_OUT_OF_RESOURCES_MATCHES = 0xA701
MOVE_DESTINATION_UNKNOWN = 0xA801
SUB_OPERATIONS_WITH_FAILURES = 0xB000

#: The ingest service's failure codes (``viewer.dicomfile.FAILURE_*``, shared with STOW-RS) as C-STORE
#: statuses: each is already a DIMSE status.
_STORE_FAILURES = {
    0xC000: CANNOT_UNDERSTAND,
    0xA700: OUT_OF_RESOURCES,
    0xA900: DOES_NOT_MATCH_SOP_CLASS,
    0x0110: PROCESSING_FAILURE,
    0x0111: DUPLICATE_SOP_INSTANCE,
}


def store_status(*, ok: bool, failure_code: int, coerced: bool) -> int:
    """The C-STORE status of an ingest result: success, or a warning when the stored object is not
    the one sent (a de-identifying project changed its elements), or the failure's status."""
    if ok:
        return COERCION_OF_DATA_ELEMENTS if coerced else SUCCESS
    return _STORE_FAILURES.get(failure_code, PROCESSING_FAILURE)


def part10_header(*, transfer_syntax: str, sop_class: str, sop_instance: str, source_ae: str) -> bytes:
    """What a C-STORE data set is preceded by in its PS3.10 file: preamble, ``DICM`` and the file meta
    information made from the request (PS3.10 7.1)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    if valid_ae_title(source_ae):
        meta.SourceApplicationEntityTitle = source_ae.strip()
    buffer = DicomBytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue()


def part10(dataset: bytes, *, transfer_syntax: str, sop_class: str, sop_instance: str, source_ae: str) -> bytes:
    """The C-STORE data set as a PS3.10 file: :func:`part10_header`, then the data set's bytes exactly
    as received."""
    return part10_header(transfer_syntax=transfer_syntax, sop_class=sop_class, sop_instance=sop_instance,
                         source_ae=source_ae) + dataset


#: Crossread's implementation identity in the file meta of files received over DIMSE.
IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.10.1392.1"
IMPLEMENTATION_VERSION_NAME = "CROSSREAD_01"


def identity_status(data: bytes, *, sop_class: str, sop_instance: str) -> int | None:
    """``None`` when the data set of the PS3.10 file ``data`` is the instance the C-STORE request
    names; else the status: cannot understand (not decodable, or no SOP Class/Instance UID, left to
    the ingest service to say why) or does not match the SOP class."""
    try:
        ds = dcmread(io.BytesIO(data), specific_tags=["SOPClassUID", "SOPInstanceUID"])
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError, TypeError, AttributeError):
        return None  # the ingest service reads it again and refuses it with its reason
    found_class = str(ds.get("SOPClassUID", "") or "")
    found_instance = str(ds.get("SOPInstanceUID", "") or "")
    if not found_class or not found_instance:
        return None
    if found_class != sop_class.strip("\0 "):
        return DOES_NOT_MATCH_SOP_CLASS
    if found_instance != sop_instance.strip("\0 "):
        return DOES_NOT_MATCH_SOP_CLASS
    return None


# --------------------------------------------------------------------------------- C-FIND

#: Query/Retrieve levels (PS3.4 C.6) and the QIDO-RS levels they search.
LEVELS = {"PATIENT": "study", "STUDY": "study", "SERIES": "series", "IMAGE": "instance"}
#: The information models (PS3.4 C.6.1, C.6.2): their levels, top down.
MODEL_LEVELS = {"patient": ("PATIENT", "STUDY", "SERIES", "IMAGE"), "study": ("STUDY", "SERIES", "IMAGE")}
#: Attributes of the patient level (PS3.4 C.6.1.1.2) answered at PATIENT level from the studies.
PATIENT_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
#: Those and the rest of the Patient module the studies' stored metadata holds (PS3.3 C.7.1.1): keys
#: of the PATIENT level, matched on the studies' stored values and returned from a patient's first study.
PATIENT_LEVEL_KEYWORDS = (*PATIENT_KEYWORDS, "IssuerOfPatientID", "TypeOfPatientID", "PatientBirthTime",
                          "OtherPatientNames", "PatientComments", "PatientSpeciesDescription",
                          "PatientBreedDescription", "ResponsiblePerson", "ResponsibleOrganization",
                          "PatientIdentityRemoved", "DeidentificationMethod", "EthnicGroup")
#: Keys the SCP adds to each answer whatever was asked (PS3.4 C.4.1.1.3.2).
ALWAYS_RETURNED = ("QueryRetrieveLevel", "SpecificCharacterSet")
#: Keys that exist only over DIMSE, answered by the listener, not matched.
LOCAL_KEYS = ("RetrieveAETitle", "InstanceAvailability", "NumberOfPatientRelatedStudies",
              "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances")


class IdentifierError(ValueError):
    """The identifier cannot be answered; ``status`` says how."""

    def __init__(self, reason: str, status: int = IDENTIFIER_DOES_NOT_MATCH) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class FindRequest:
    """A C-FIND identifier as a QIDO-RS search: ``level`` (``study``/``series``/``instance``),
    matching values by keyword (as QIDO-RS parameters), and the keywords to return."""

    dimse_level: str
    level: str
    matching: tuple[tuple[str, str], ...]
    returned: tuple[str, ...]
    character_set: tuple[str, ...] = ()
    #: Matching keys given with more than one value (a UID list; for other keys, not matched).
    multiple: frozenset[str] = frozenset()

    @property
    def patients(self) -> bool:
        return self.dimse_level == "PATIENT"


def query_level(identifier: Dataset, model: str) -> str:
    level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    if level not in MODEL_LEVELS[model]:
        raise IdentifierError(f"QueryRetrieveLevel {level[:16]!r} is not a level of the {model} root model.")
    return level


def find_request(identifier: Dataset, model: str) -> FindRequest:
    """Read a C-FIND identifier of the ``model`` ("patient" or "study") root information model.

    Elements with a value are matching keys (single values, UID lists, ``*``/``?`` wildcards, date
    ranges: the same forms QIDO-RS takes, so they go to its search as they are); empty ones are
    return keys. Sequences are neither matched nor returned.
    """
    dimse_level = query_level(identifier, model)
    matching: list[tuple[str, str]] = []
    returned: list[str] = []
    multiple: set[str] = set()
    for element in identifier:
        keyword = element.keyword or ""
        tag = element.tag
        if not keyword and _unmatchable(element):
            raise IdentifierError(f"Matching on ({tag.group:04X},{tag.element:04X}) is not supported.",
                                  UNABLE_TO_PROCESS)
        if not keyword or tag.group == 0x0002 or keyword in ALWAYS_RETURNED:
            continue
        if element.VR == "SQ":
            continue
        returned.append(keyword)
        value = query_value(element.value)
        if value and keyword not in LOCAL_KEYS:
            matching.append((keyword, value))
            if element.VM > 1:
                multiple.add(keyword)
    raw = identifier.get("SpecificCharacterSet", "")
    charsets = ((raw,) if raw else ()) if isinstance(raw, str) else tuple(str(v) for v in raw)
    return FindRequest(dimse_level, LEVELS[dimse_level], tuple(matching), tuple(returned), charsets,
                       frozenset(multiple))


def _unmatchable(element: Any) -> bool:
    """A private or unknown element with a value to match: not one the archive can match on (a private
    creator, a group length or a sequence is no matching key)."""
    tag = element.tag
    if tag.element == 0x0000 or element.VR == "SQ" or (tag.is_private and 0x0010 <= tag.element <= 0x00FF):
        return False
    return bool(query_value(element.value)) if element.VR not in ("OB", "OW", "UN") else bool(element.value)


def query_value(value: Any) -> str:
    """An element's value as a QIDO-RS matching value: multiple values (UID lists) joined by commas."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return ",".join(str(v) for v in value if str(v))
    return str(value).strip()


def find_response(result: Mapping[str, Any], request: FindRequest, *, retrieve_ae_title: str) -> Dataset:
    """One C-FIND answer: the QIDO-RS result (DICOM JSON) cut to the keys asked for, each asked key
    present (empty when the archive has no value), with the query level and the character set."""
    found = Dataset.from_json(dict(result))
    answer = Dataset()
    if request.character_set:
        answer.SpecificCharacterSet = list(request.character_set)
    answer.QueryRetrieveLevel = request.dimse_level
    for keyword in request.returned:
        tag = tag_for_keyword(keyword)
        if tag is None:
            continue
        if keyword == "RetrieveAETitle":
            answer.RetrieveAETitle = retrieve_ae_title
        elif keyword == "InstanceAvailability":
            answer.InstanceAvailability = "ONLINE"
        elif tag in found:
            answer[tag] = found[tag]
        else:
            answer.add_new(tag, dictionary_VR(tag), None)
    return answer


def patient_results(studies: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """PATIENT level answers from study level results (DICOM JSON): one per Patient ID, in the order
    first found, with the number of its studies, series and instances."""
    patients: dict[str, dict[str, Any]] = {}
    for study in studies:
        patient_id = _json_text(study.get("00100020"))
        if patient_id not in patients:
            patients[patient_id] = {tag: study[tag] for tag in _PATIENT_LEVEL_TAGS if tag in study}
            patients[patient_id]["_counts"] = [0, 0, 0]
        counts = patients[patient_id]["_counts"]
        counts[0] += 1
        counts[1] += _json_int(study.get("00201206"))
        counts[2] += _json_int(study.get("00201208"))
    results = []
    for patient in patients.values():
        studies_n, series_n, instances_n = patient.pop("_counts")
        patient["00201200"] = {"vr": "IS", "Value": [studies_n]}
        patient["00201202"] = {"vr": "IS", "Value": [series_n]}
        patient["00201204"] = {"vr": "IS", "Value": [instances_n]}
        results.append(patient)
    return results


_PATIENT_LEVEL_TAGS = tuple(f"{tag_for_keyword(k):08X}" for k in PATIENT_LEVEL_KEYWORDS)


def _json_text(element: Mapping[str, Any] | None) -> str:
    values = (element or {}).get("Value") or [""]
    return str(values[0])


def _json_int(element: Mapping[str, Any] | None) -> int:
    values = (element or {}).get("Value") or [0]
    try:
        return int(values[0])
    except (TypeError, ValueError):
        return 0


def qido_include(request: FindRequest) -> list[str]:
    """The ``includefield`` values QIDO-RS needs to return every key asked for (tags as 8 hex digits),
    leaving out keys only the listener answers."""
    tags = []
    for keyword in request.returned:
        if keyword in LOCAL_KEYS:
            continue
        tag = tag_for_keyword(keyword)
        if tag is not None:
            tags.append(f"{tag:08X}")
    return tags


# --------------------------------------------------------------------------------- C-FIND on stored values

#: The depth of each QIDO-RS level.
LEVEL_DEPTH = {"study": 0, "series": 1, "instance": 2}
#: Attributes a QIDO-RS result computes (counts), by the level whose results hold them.
COMPUTED_LEVELS = {"00201206": "study", "00201208": "study", "00201209": "series"}
#: Value representations matched as text with ``*``/``?`` wildcards (PS3.4 C.2.2.2.4), case and all.
WILDCARD_VRS = frozenset({"AE", "AS", "CS", "LO", "LT", "SH", "ST", "UC", "UR", "UT", "AT"})
NUMERIC_VRS = frozenset({"IS", "DS", "US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})
#: At most this many characters in a matching value on a stored attribute (as QIDO-RS's values).
MAX_MATCH_CHARS = 256


@dataclass(frozen=True)
class StoredMatch:
    """A matching key the index has no column for, matched on each result's stored value (PS3.4
    C.2.2.2; as Orthanc does for the tags it does not index): ``tag`` as 8 hex digits."""

    keyword: str
    tag: str
    vr: str
    value: str


def attribute_level(tag: str) -> str:
    """The QIDO-RS level whose stored metadata holds the attribute ``tag`` (8 hex digits)."""
    if tag in COMPUTED_LEVELS:
        return COMPUTED_LEVELS[tag]
    if tag in STUDY_LEVEL_TAGS:
        return "study"
    if tag in SERIES_LEVEL_TAGS:
        return "series"
    return "instance"


def stored_match(keyword: str, value: str, request: FindRequest) -> StoredMatch | None:
    """The match on stored values for a key the index does not match on; ``None`` for universal
    matching (``*``). :class:`IdentifierError` when it cannot be matched rightly: an attribute below
    the query's level (``A900``, as for indexed keys); binary values, several values of a key that is
    not a UID, a number that is not one, or too long a value (``C000`` unable to process, naming the key)."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise IdentifierError(f"{keyword} is not an attribute this archive knows.", UNABLE_TO_PROCESS)
    tag_hex = f"{tag:08X}"
    if LEVEL_DEPTH[attribute_level(tag_hex)] > LEVEL_DEPTH[request.level]:
        raise IdentifierError(f"{keyword} is not a key of the {request.dimse_level} level.")
    vr = dictionary_VR(tag)
    if value.strip() == "*" or value.strip("*") == "" and vr in WILDCARD_VRS | {"PN"}:
        return None
    if vr not in WILDCARD_VRS | NUMERIC_VRS | RANGE_VRS | {"PN", "UI"}:
        raise IdentifierError(f"Matching on {keyword} ({vr}) is not supported.", UNABLE_TO_PROCESS)
    if keyword in request.multiple and vr != "UI":
        raise IdentifierError(f"Matching on several values of {keyword} is not supported.", UNABLE_TO_PROCESS)
    if len(value) > MAX_MATCH_CHARS:
        raise IdentifierError(f"The value of {keyword} is longer than {MAX_MATCH_CHARS} characters.",
                              UNABLE_TO_PROCESS)
    if vr in NUMERIC_VRS and _number(value) is None:
        raise IdentifierError(f"The value of {keyword} is not a number.", UNABLE_TO_PROCESS)
    if vr in RANGE_VRS and not _valid_range(vr, value):
        raise IdentifierError(f"The value of {keyword} is not a {vr} or a range of them.", UNABLE_TO_PROCESS)
    return StoredMatch(keyword, tag_hex, vr, value.strip())


def stored_matches(match: StoredMatch, element: Mapping[str, Any] | None) -> bool:
    """Does a result's element (DICOM JSON, or ``None`` when absent) match? Any of its values may; an
    attribute without a value matches nothing but universal matching."""
    values = (element or {}).get("Value") or []
    if match.vr == "PN":
        pattern = match.value.upper()
        names = [str(group).upper() for v in values if isinstance(v, Mapping) for group in v.values()]
        return any(wildcard_match(pattern, name.strip()) for name in names)
    texts = [str(v).strip() for v in values if v is not None and not isinstance(v, Mapping)]
    if match.vr == "UI":
        wanted = {uid.strip() for uid in re.split(r"[,\\]", match.value) if uid.strip()}
        return any(text in wanted for text in texts)
    if match.vr in NUMERIC_VRS:
        number = _number(match.value)
        return any(_number(text) == number for text in texts)
    if match.vr in RANGE_VRS:
        return any(_in_range(match.vr, match.value, text) for text in texts)
    return any(wildcard_match(match.value, text) for text in texts)


def wildcard_match(pattern: str, text: str) -> bool:
    """``*`` any run of characters, ``?`` any one, the rest exactly; greedy with one point to go back
    to, so time grows with the lengths' product at worst, never exponentially."""
    p = t = 0
    star = -1
    resume = 0
    while t < len(text):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif star >= 0:
            p = star + 1
            resume += 1
            t = resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _number(text: str) -> float | None:
    try:
        number = float(str(text).strip())
    except ValueError:
        return None
    return number if number == number else None  # not NaN


_DIGITS = re.compile(r"^\d+(\.\d{0,6})?$")


def _moment(vr: str, text: str, *, upper: bool = False) -> str | None:
    """A DA, TM or DT value in a form whose string order is time order (``None`` if it is none): TM
    colons dropped, every part padded (an upper bound's missing parts to their end: ``1000`` as an
    upper bound takes in ``100059``)."""
    text = text.strip().replace(":", "")
    if vr == "DT":
        text = re.split(r"[+-]", text, maxsplit=1)[0]  # the offset from UTC is not compared
    if not text or not _DIGITS.match(text):
        return None
    whole, _, fraction = text.partition(".")
    width = {"DA": 8, "TM": 6, "DT": 14}[vr]
    if len(whole) > width or (vr == "DA" and len(whole) != 8):
        return None
    if upper:
        end = {"DA": "", "TM": "235959", "DT": "99991231235959"}[vr]
        whole = whole + end[len(whole):]
        fraction = fraction.ljust(6, "9")
    else:
        whole = whole.ljust(width, "0")
        fraction = fraction.ljust(6, "0")
    return f"{whole}.{fraction}" if vr != "DA" else whole


def _valid_range(vr: str, value: str) -> bool:
    low, _, high = _split_range(vr, value)
    return bool(low or high) and all(_moment(vr, v) is not None for v in (low, high) if v)


def _split_range(vr: str, value: str) -> tuple[str, str, str]:
    value = value.strip()
    return _split_dt_range(value) if vr == "DT" else value.partition("-")


def _in_range(vr: str, value: str, stored: str) -> bool:
    moment = _moment(vr, stored)
    if moment is None:
        return False
    low, dash, high = _split_range(vr, value)
    if not dash:
        exact_low, exact_high = _moment(vr, low), _moment(vr, low, upper=True)
        return exact_low is not None and exact_high is not None and exact_low <= moment <= exact_high
    low_bound = _moment(vr, low) if low else None
    high_bound = _moment(vr, high, upper=True) if high else None
    return (not low or (low_bound is not None and low_bound <= moment)) and (
        not high or (high_bound is not None and moment <= high_bound))


def _split_dt_range(value: str) -> tuple[str, str, str]:
    """A DT range splits at the hyphen that is not a UTC offset's (one with 14 or fewer digits before it)."""
    for index, char in enumerate(value):
        if char == "-" and (index == 0 or re.fullmatch(r"\d{4,14}(\.\d{1,6})?(\+\d{4})?", value[:index])):
            return value[:index], "-", value[index + 1:]
    return value, "", ""


# --------------------------------------------------------------------------------- C-GET, C-MOVE


@dataclass(frozen=True)
class RetrieveRequest:
    """A C-GET/C-MOVE identifier: the unique keys down to its level (PS3.4 C.4.2.2.1, C.4.3.2.1)."""

    level: str
    patient_ids: tuple[str, ...] = ()
    study_uids: tuple[str, ...] = ()
    series_uids: tuple[str, ...] = ()
    sop_uids: tuple[str, ...] = ()


#: The unique key of each level.
UNIQUE_KEYS = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
               "IMAGE": "SOPInstanceUID"}
#: At most this many values in one unique key's list.
MAX_KEY_VALUES = 1000


def retrieve_request(identifier: Dataset, model: str) -> RetrieveRequest:
    """Read a C-GET or C-MOVE identifier: the level's unique key must have a value (a list of UIDs
    at the study, series and image levels), the keys above it may narrow it."""
    level = query_level(identifier, model)
    values: dict[str, tuple[str, ...]] = {}
    for lvl in MODEL_LEVELS[model]:
        keyword = UNIQUE_KEYS[lvl]
        raw = query_value(identifier.get(keyword, ""))
        items = tuple(v.strip() for v in raw.split(",") if v.strip()) if keyword != "PatientID" else (
            (raw,) if raw else ())
        if len(items) > MAX_KEY_VALUES:
            raise IdentifierError(f"{keyword} lists more than {MAX_KEY_VALUES} values.", QR_OUT_OF_RESOURCES)
        if any(len(item) > 64 for item in items):
            raise IdentifierError(f"{keyword} holds a value longer than 64 characters.")
        values[keyword] = items
        if lvl == level:
            break
    if not values.get(UNIQUE_KEYS[level]):
        raise IdentifierError(f"A {level} level retrieve needs {UNIQUE_KEYS[level]}.")
    return RetrieveRequest(
        level,
        patient_ids=values.get("PatientID", ()),
        study_uids=values.get("StudyInstanceUID", ()),
        series_uids=values.get("SeriesInstanceUID", ()),
        sop_uids=values.get("SOPInstanceUID", ()),
    )
