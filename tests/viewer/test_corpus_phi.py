"""The whole real corpus through the archive into de-identifying projects (issue 8, acceptance).

Every PS3.10 file of the corpus, and every bare data set (no preamble, no file meta) it holds, (pydicom's test files, pydicom-data's ``data_store``, deid-data; see
:mod:`demo.corpus`) is ingested with :func:`viewer.ingest.ingest_bytes` into projects with the basic
profile. Then no original value of a protected attribute appears in the stored files' bytes, in DICOMweb
metadata, in QIDO results or in the pages; study, series and frame-of-reference grouping and the
references between instances are kept; Pixel Data is byte-identical.

Several corpus files share a SOP Instance UID (one image in many encodings); an archive stores a SOP
instance once, so each file goes into the first project where its SOP Instance UID is still free.

Which original values count (the rule of tests/deid/test_corpus.py, reused here): the values, at every
depth, of Table E.1-1 attributes whose basic-profile action is not K (names, IDs, birth date, addresses,
institution, physicians, accession number, UIDs, dates...) and of private attributes; minus values that
would match by chance: shorter than 4 characters, numbers shorter than 6 digits, the profile's dummy
values, well-known UIDs (SOP classes, transfer syntaxes), and texts that also occur in an attribute the
profile keeps. UIDs written by the archive ("2.25." + a keyed hash) are not searched for short originals.

All of it is computed once per module (about 15 s), inside a transaction rolled back at its end.
"""

from __future__ import annotations

import html
import io
import json
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client, override_settings
from pydicom.dataset import Dataset

from tests.deid.conftest import corpus_id, walk
from tests.deid.test_corpus import _DUMMIES, MIN_LENGTH, MIN_NUMBER_LENGTH, _encodings, _leaks, _protected, _strings
from demo import corpus
from viewer.deid.uids import is_well_known
from viewer.ingest import ingest_bytes
from viewer.models import Instance, Membership, Project, Role
from viewer.storage import object_store

CORPUS = [*corpus.iter_part10_files(), *corpus.iter_bare_files()]
#: Refused by design: not an image the archive can index (DICOMDIR, no UIDs), or a damaged file.
REFUSALS = ("Missing required attribute", "truncated", "cannot be described as DICOM JSON")
#: What the archive writes in place of originals: new UIDs, pseudonyms and the profile's dummy values.
#: A short original could match inside one by chance, so they are taken out of the searched text.
WRITTEN_BY_US = re.compile("|".join([r"2\.25\.\d+", r"CR-[A-Z2-7]{16}",
                                     *(re.escape(d) for d in sorted(_DUMMIES, key=len, reverse=True) if len(d) >= MIN_LENGTH)]))

#: Ordinary words of the pages' own text that a file also holds as a whole protected value (pydicom's
#: rtstruct.dcm names its ROI "patient"): not searched for in the pages.
PAGE_WORDS = frozenset({"patient"})

# The module fixture reaches the database itself; each test only reads what it collected.
pytestmark = pytest.mark.django_db


@dataclass
class Ingested:
    path: Path
    original: Dataset
    project: str = ""
    refused: str = ""
    stored: bytes = b""
    dataset: Dataset | None = None


@dataclass
class Archive:
    files: dict[Path, Ingested] = field(default_factory=dict)
    #: per project: every string of the DICOMweb metadata JSON, of the QIDO answers, and the pages' text
    metadata: dict[str, list[str]] = field(default_factory=dict)
    qido: dict[str, list[str]] = field(default_factory=dict)
    pages: dict[str, list[str]] = field(default_factory=dict)


def _read(path: Path) -> Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, force=not corpus.has_dicm_prefix(path))
        except Exception:
            return None


def _json_strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _json_strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _json_strings(value)]
    return []


@pytest.fixture(scope="module")
def archive(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Archive:
    out = Archive()
    with django_db_blocker.unblock(), override_settings(DATA_DIR=tmp_path_factory.mktemp("corpus-archive")), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with transaction.atomic():
            organizer = get_user_model().objects.create_user("corpus-organizer", password="pw-corpus-123!")
            projects: list[tuple[Project, set[str]]] = []
            for path in CORPUS:
                original = _read(path)
                if original is None:
                    continue  # tests/deid covers what pydicom cannot read
                entry = out.files[path] = Ingested(path, original)
                sop = str(original.get("SOPInstanceUID", ""))
                home = next((p for p, used in projects if sop not in used), None)
                if home is None:
                    # a fixed secret: the same UIDs and pseudonyms on every run
                    home = Project.objects.create(slug=f"corpus-{len(projects) + 1}", name="Corpus",
                                                  secret=f"{len(projects) + 1:064x}",
                                                  deidentification={"profile": "basic", "options": []})
                    Membership.objects.create(project=home, user=organizer, role=Role.ORGANIZER)
                    projects.append((home, set()))
                result = ingest_bytes(home, path.read_bytes(), name=path.name)
                if not result.ok:
                    entry.refused = result.reason
                    continue
                next(used for p, used in projects if p is home).add(sop)
                row = Instance.objects.get(project=home, sop_instance_uid=result.sop_instance_uid)
                entry.project = home.slug
                entry.stored = object_store().read(home.pk, row.sha256)
                entry.dataset = pydicom.dcmread(io.BytesIO(entry.stored))
            client = Client()
            client.force_login(organizer)
            for project, _ in projects:
                slug, web = project.slug, f"/projects/{project.slug}/dicomweb"
                studies = list(project.studies.values_list("study_instance_uid", flat=True))
                out.metadata[slug] = [s for uid in studies
                                      for s in _json_strings(client.get(f"{web}/studies/{uid}/metadata").json())]
                out.qido[slug] = [s for level in ("studies", "series", "instances")
                                  for s in _json_strings(client.get(f"{web}/{level}", {"includefield": "all"}).json())]
                pages = [f"/projects/{slug}/", *(f"/projects/{slug}/studies/{uid}/" for uid in studies)]
                out.pages[slug] = []
                for url in pages:
                    response = client.get(url)
                    assert response.status_code == 200, url
                    out.pages[slug].append(html.unescape(response.content.decode()))
            transaction.set_rollback(True)
    return out


def _ingested(archive: Archive, path: Path) -> Ingested:
    entry = archive.files.get(path)
    if entry is None:
        pytest.skip("pydicom cannot read it (tests/deid covers that)")
    if entry.refused:
        assert entry.refused.startswith(REFUSALS) or any(r in entry.refused for r in REFUSALS), entry.refused
        pytest.skip(f"refused by the archive: {entry.refused}")
    assert entry.dataset is not None
    return entry


def _new_uids(entry: Ingested) -> list[str]:
    """UIDs in the stored file that the archive wrote (not an original value)."""
    assert entry.dataset is not None
    originals = {v for e in walk(entry.original) if e.VR == "UI" for v in _strings(e.value)}
    return [v for e in walk(entry.dataset) if e.VR == "UI" for v in _strings(e.value) if v not in originals]


@pytest.mark.parametrize("path", CORPUS, ids=corpus_id)
def test_no_original_value_in_the_stored_file(archive: Archive, path: Path) -> None:
    entry = _ingested(archive, path)
    leaks = _leaks(entry.original, entry.stored, _new_uids(entry), frozenset())
    assert not leaks, f"original values stored for {corpus_id(path)}: {leaks[:10]}"
    assert entry.dataset.PatientIdentityRemoved == "YES"  # type: ignore[union-attr]


@pytest.mark.parametrize("path", CORPUS, ids=corpus_id)
def test_pixel_data_is_byte_identical(archive: Archive, path: Path) -> None:
    entry = _ingested(archive, path)
    if "PixelData" not in entry.original:
        pytest.skip("no Pixel Data")
    assert entry.dataset["PixelData"].value == entry.original["PixelData"].value  # type: ignore[index]


def searched_values(archive: Archive, slug: str) -> set[str]:
    """The protected original values of a project's files that could not match by chance."""
    protected: set[str] = set()
    retained: set[str] = set()
    for entry in archive.files.values():
        if entry.project == slug:
            values, kept = _protected(entry.original, frozenset())
            protected |= values
            retained |= kept
    return {
        value for value in protected
        if len(value) >= MIN_LENGTH and value not in _DUMMIES and not is_well_known(value)
        and not (value.isdigit() and len(value) < MIN_NUMBER_LENGTH)
        and not any(value in kept for kept in retained)
    }


def found_in(strings: list[str], values: set[str]) -> list[str]:
    """Values found in ``strings``: whole values by equality, and as a substring of the text left when
    what the archive wrote itself is taken out (WRITTEN_BY_US)."""
    exact = set(strings)
    text = "\n".join(WRITTEN_BY_US.sub(" ", s) for s in strings)
    return sorted(v for v in values if v in exact or v in text)


@pytest.mark.parametrize("where", ["metadata", "qido", "pages"])
def test_no_original_value_in_dicomweb_or_pages(archive: Archive, where: str) -> None:
    leaks = {}
    for slug, strings in getattr(archive, where).items():
        searched = searched_values(archive, slug) - (PAGE_WORDS if where == "pages" else frozenset())
        found = found_in(strings, searched)
        if found:
            leaks[slug] = found[:10]
    assert not leaks


def test_the_search_finds_original_values_where_they_are() -> None:
    """Not vacuous: on an original file's own values and text, the search finds name, ID, UIDs."""
    original = _read(corpus.file("deid-data", "humans/ctbrain1.dcm"))
    assert original is not None
    values, _ = _protected(original, frozenset())
    strings = [str(original.PatientID), f"name: {original.PatientName}!", str(original.StudyInstanceUID)]
    assert set(found_in(strings, values)) >= {str(original.PatientID), str(original.PatientName), str(original.StudyInstanceUID)}
    assert _encodings(str(original.PatientID), original)


GROUPING = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")


@pytest.mark.parametrize("keyword", GROUPING)
def test_grouping_is_kept(archive: Archive, keyword: str) -> None:
    """Within a project, files that shared an original UID share one new UID, and no two original UIDs
    became one."""
    new_by_original: dict[tuple[str, str], set[str]] = defaultdict(set)
    original_by_new: dict[tuple[str, str], set[str]] = defaultdict(set)
    files_by_new: dict[tuple[str, str], int] = defaultdict(int)
    for entry in archive.files.values():
        if entry.dataset is None or keyword not in entry.original:
            continue
        old, new = str(entry.original[keyword].value), str(entry.dataset.get(keyword, ""))
        assert new and new != old, (corpus_id(entry.path), keyword)
        new_by_original[entry.project, old].add(new)
        original_by_new[entry.project, new].add(old)
        files_by_new[entry.project, new] += 1
    assert new_by_original, keyword
    assert all(len(news) == 1 for news in new_by_original.values())
    assert all(len(olds) == 1 for olds in original_by_new.values())
    assert max(files_by_new.values()) > 1  # not vacuous: some groups hold several files


REFERENCES = re.compile(r"Referenced\w*(SOPInstance|FrameOfReference|StudyInstance|SeriesInstance)UID|StudyInstanceUID|SeriesInstanceUID")


def test_references_between_instances_resolve(archive: Archive) -> None:
    """A reference (at any depth) to another ingested instance of the project names that instance's new
    UID. MR2_J2KI references MR2_UNCR, for one."""
    new_uid: dict[tuple[str, str], str] = {}
    for entry in archive.files.values():
        if entry.dataset is not None:
            for keyword in ("SOPInstanceUID", *GROUPING):
                if keyword in entry.original and keyword in entry.dataset:
                    new_uid[entry.project, str(entry.original[keyword].value)] = str(entry.dataset[keyword].value)
    checked = 0
    for entry in archive.files.values():
        if entry.dataset is None:
            continue
        written = {v for e in walk(entry.dataset) if e.VR == "UI" for v in _strings(e.value)}
        nested = (e for top in entry.original if top.VR == "SQ" for item in top.value or () for e in walk(item))
        for elem in nested:  # top-level UIDs are the grouping test's
            if elem.VR != "UI" or not REFERENCES.fullmatch(elem.keyword or ""):
                continue
            for value in _strings(elem.value):
                target = new_uid.get((entry.project, value))
                if target is not None:
                    assert target in written, (corpus_id(entry.path), elem.keyword, value)
                    checked += 1
    assert checked >= 1


def test_refused_files_are_few_and_refused_by_design(archive: Archive) -> None:
    refused = {corpus_id(e.path): e.refused for e in archive.files.values() if e.refused}
    assert all(any(r in reason for r in REFUSALS) for reason in refused.values()), refused
    stored = [e for e in archive.files.values() if e.dataset is not None]
    assert len(stored) >= 0.85 * len(archive.files), refused
