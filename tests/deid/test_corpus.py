"""De-identification of every corpus file pydicom reads (basic profile and all options).

For each file: no original value of a protected attribute is left in the
written bytes, Pixel Data is byte-identical, every value written is valid for
its VR, and UIDs are replaced consistently across files.
"""

from __future__ import annotations

import io
import warnings
from collections import defaultdict
from pathlib import Path

import pydicom
import pytest
from pydicom.charset import convert_encodings
from pydicom.config import RAISE
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import validate_value

from tests.deid.conftest import CORPUS_FILES, SECRET, case, corpus_id, read, walk
from demo import corpus
from viewer.deid import Option, Profile, new_uid
from viewer.deid.table import load_table
from viewer.deid.uids import is_well_known
from viewer.deid.values import DUMMY_BY_VR

ALL_OPTIONS = frozenset(o.value for o in Option)
PROFILES = {"basic": frozenset(), "all-options": ALL_OPTIONS}
MIN_LENGTH = 4
MIN_NUMBER_LENGTH = 6
_DUMMIES = {str(v) for v in DUMMY_BY_VR.values()}
_TEXT_VRS = {
    "AE",
    "AS",
    "CS",
    "DA",
    "DS",
    "DT",
    "IS",
    "LO",
    "LT",
    "PN",
    "SH",
    "ST",
    "TM",
    "UC",
    "UI",
    "UR",
    "UT",
}


def _strings(value: object) -> list[str]:
    values = value if isinstance(value, (list, MultiValue)) else [value]
    return [str(v).strip("\x00 ") for v in values if v is not None and not isinstance(v, bytes)]


def _protected(ds: Dataset, options: frozenset[str]) -> tuple[set[str], set[str]]:
    """(protected values, retained values) of the original, at every depth.

    Protected: a Table E.1-1 attribute whose action under the profile is
    neither K nor C (C on dates is checked too: shifted dates differ), or a
    private attribute not on the safe list.  Retained: everything else.
    """
    table = load_table()
    columns = Profile(options).columns
    protected: set[str] = set()
    retained: set[str] = set()
    for elem in walk(ds):
        if elem.VR not in _TEXT_VRS and not elem.tag.is_private:
            continue
        row = table.row_for(elem.tag)
        codes = [row.actions[c] for c in columns if c in row.actions] if row else []
        action = ("K" if "K" in codes else codes[0]) if codes else (row.actions["basic"] if row else "K")
        is_date = elem.VR in ("DA", "DT")
        if elem.tag.is_private and Option.RETAIN_SAFE_PRIVATE.value in options:
            target = retained  # safe private values are kept; others removed (checked below)
        elif action == "K" or (action == "C" and not is_date):
            target = retained
        else:
            target = protected
        target.update(_strings(elem.value))
    return protected, retained


def _encodings(value: str, ds: Dataset) -> set[bytes]:
    charsets = ds.get("SpecificCharacterSet") or "ISO_IR 6"
    names = {"ascii", "latin_1", "utf_8", *convert_encodings(_strings(charsets) or ["ISO_IR 6"])}
    encoded = set()
    for name in names:
        try:
            encoded.add(value.encode(name))
        except (UnicodeEncodeError, LookupError):
            continue
    return encoded


def _pixel_bytes(ds: Dataset) -> bytes:
    return ds["PixelData"].value if "PixelData" in ds else b""


def _leaks(original: Dataset, written: bytes, new_uids: list[str], options: frozenset[str]) -> list[str]:
    """Protected original values (>= 4 characters) found in ``written``, in any encoding."""
    protected, retained = _protected(original, options)
    meta = getattr(original, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta:
        protected.add(str(meta.MediaStorageSOPInstanceUID))
    # Pixel Data is unchanged by design; new UIDs (long decimals) and dummy values
    # ("ANONYMIZED") may contain a short original ("0010", "ANON") by chance.
    haystack = written.replace(_pixel_bytes(original), b"") if _pixel_bytes(original) else written
    for written_by_us in sorted(
        [*new_uids, *(d for d in _DUMMIES if len(d) >= MIN_LENGTH)], key=len, reverse=True
    ):
        haystack = haystack.replace(written_by_us.encode("ascii"), b"")
    leaks = []
    for value in protected:
        if len(value) < MIN_LENGTH or value in _DUMMIES or is_well_known(value):
            continue
        if value.isdigit() and len(value) < MIN_NUMBER_LENGTH:
            continue  # short numbers occur by chance in dummy dates, numbers and binary values
        if any(value in kept for kept in retained):
            continue  # the same text is also in an attribute the profile keeps
        if any(encoded in haystack for encoded in _encodings(value, original)):
            leaks.append(value)
    return sorted(leaks)


@pytest.mark.parametrize("profile", PROFILES, ids=list(PROFILES))
@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_id)
def test_no_protected_value_left_in_written_bytes(path: Path, profile: str) -> None:
    c = case(path, PROFILES[profile])
    leaks = _leaks(c.original, c.written, list(c.result.uid_map.values()), PROFILES[profile])
    assert not leaks, f"original values left in {corpus_id(path)}: {leaks[:10]}"


def test_leak_check_finds_the_identifiers_of_an_original_file() -> None:
    """The check above is not vacuous: on the original bytes it finds name, ID, dates, UIDs."""
    path = corpus.file("deid-data", "humans/ctbrain1.dcm")
    original = read(path)
    leaks = _leaks(original, path.read_bytes(), [], frozenset())
    assert str(original.PatientID) in leaks
    assert str(original.StudyInstanceUID) in leaks
    assert str(original.SOPInstanceUID) in leaks
    assert len(leaks) >= 10


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_id)
def test_pixel_data_byte_identical(path: Path) -> None:
    c = case(path)
    if "PixelData" not in c.original:
        pytest.skip("no Pixel Data")
    assert c.result.dataset["PixelData"].value == c.original["PixelData"].value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reread = pydicom.dcmread(io.BytesIO(c.written), force=True)
    assert reread["PixelData"].value == c.original["PixelData"].value


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_id)
def test_written_values_are_valid_for_their_vr(path: Path) -> None:
    """Every value the de-identifier wrote (differs from the original) passes pydicom's strict check."""
    c = case(path, ALL_OPTIONS)
    original = {(e.tag, str(e.value)) for e in walk(c.original) if e.VR != "SQ"}
    for elem in walk(c.result.dataset):
        if elem.VR == "SQ" or (elem.tag, str(elem.value)) in original:
            continue
        for value in elem.value if isinstance(elem.value, (list, MultiValue)) else [elem.value]:
            validate_value(elem.VR, value, RAISE)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_id)
def test_uids_replaced_by_keyed_uid_at_every_depth(path: Path) -> None:
    """A UID in the output is a well-known UID, a structural one kept as is, or new_uid(original)."""
    c = case(path)
    originals = {str(v) for e in walk(c.original) if e.VR == "UI" for v in _strings(e.value)}
    for elem in walk(c.result.dataset):
        if elem.VR != "UI":
            continue
        for value in _strings(elem.value):
            if value in originals and not is_well_known(value):
                assert "Class" in elem.keyword or elem.keyword in {"CodingSchemeUID", "ContextUID"}, (
                    f"{elem.keyword} keeps original UID {value}"
                )
    for original, new in c.result.uid_map.items():
        assert new == new_uid(original, SECRET)
    meta = c.result.dataset.file_meta
    if "SOPInstanceUID" in c.result.dataset:
        assert meta.MediaStorageSOPInstanceUID == c.result.dataset.SOPInstanceUID


def _study_files() -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in CORPUS_FILES:
        try:
            ds = read(path)
        except pytest.skip.Exception:
            continue
        if "StudyInstanceUID" in ds:
            groups[str(ds.StudyInstanceUID)].append(path)
    return groups


def test_study_series_and_frame_of_reference_grouping_preserved() -> None:
    """Across the corpus: one original UID -> one new UID, and distinct originals stay distinct."""
    forward: dict[str, set[str]] = defaultdict(set)
    for path in CORPUS_FILES:
        try:
            c = case(path)
        except pytest.skip.Exception:
            continue
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
            if keyword in c.original and keyword in c.result.dataset:
                forward[str(c.original[keyword].value)].add(str(c.result.dataset[keyword].value))
    assert forward
    assert all(len(new) == 1 for new in forward.values())
    news = [next(iter(new)) for new in forward.values()]
    assert len(set(news)) == len(news)
    multi_file_studies = [files for files in _study_files().values() if len(files) > 1]
    assert multi_file_studies, "corpus should hold studies with several files"


def test_references_between_corpus_files_follow_the_referenced_file() -> None:
    """E.g. MR2_J2KI references MR2_UNCR: the new reference is MR2_UNCR's new SOP Instance UID."""
    by_sop: dict[str, Path] = {}
    for path in CORPUS_FILES:
        try:
            ds = read(path)
        except pytest.skip.Exception:
            continue
        if "SOPInstanceUID" in ds:
            by_sop[str(ds.SOPInstanceUID)] = path
    pairs = 0
    for path in CORPUS_FILES:
        try:
            c = case(path)
        except pytest.skip.Exception:
            continue
        refs = [e for e in walk(c.result.dataset) if e.keyword == "ReferencedSOPInstanceUID"]
        originals = [e for e in walk(c.original) if e.keyword == "ReferencedSOPInstanceUID"]
        for old in originals:
            target = by_sop.get(str(old.value))
            if target is None or target == path:
                continue
            new_target_uid = str(case(target).result.dataset.SOPInstanceUID)
            assert new_target_uid in {str(r.value) for r in refs}
            pairs += 1
    assert pairs >= 5, "corpus should hold cross-file references"
