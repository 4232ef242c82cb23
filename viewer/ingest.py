"""The one ingest path: web upload, STOW-RS and ``manage.py import_dicom`` all call :func:`ingest_many`
(one file: :func:`ingest_bytes`).

For each instance: parse and validate (:mod:`viewer.dicomfile`) once, store the file content-addressed
with an atomic write, then index Study/Series/Instance rows in one transaction per batch of files. Re-sending the same
bytes is a success that stores nothing new; the same SOP Instance UID with other bytes is a
conflict and the stored instance is untouched. A refused file leaves no row and no file behind.

Crash safety: the object is written first, then its rows and its audit event commit together, so a
process killed at any point leaves either nothing visible or a complete instance. What it can leave
is invisible: a temporary file (killed while writing) or an object no row references (killed before
the commit); :func:`clean_storage` (``manage.py clean_storage``, run at start) removes both.
"""

from __future__ import annotations

import enum
import io
import logging
import time
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Collate

from audit.models import Action
from audit.services import record
from crossread.conf import option
from viewer import deid, dicomfile
from viewer.dicomfile import InvalidDicom
from viewer.models import Instance, Project, PseudonymLink, Series, Study
from viewer.storage import ObjectStore, object_store

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    STORED = "stored"
    ALREADY_STORED = "already_stored"
    FAILED = "failed"


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    name: str = ""
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    reason: str = ""
    failure_code: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome != Outcome.FAILED

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"name": self.name, "outcome": str(self.outcome)}
        if self.sop_instance_uid:
            data.update(
                study_instance_uid=self.study_instance_uid,
                series_instance_uid=self.series_instance_uid,
                sop_instance_uid=self.sop_instance_uid,
                sop_class_uid=self.sop_class_uid,
            )
        if self.reason:
            data["reason"] = self.reason
        return data


def failed(name: str, reason: str, code: int = dicomfile.FAILURE_CANNOT_UNDERSTAND, **uids: str) -> IngestResult:
    return IngestResult(
        Outcome.FAILED,
        name=name,
        reason=reason,
        failure_code=code,
        sop_class_uid=uids.get("SOPClassUID", ""),
        sop_instance_uid=uids.get("SOPInstanceUID", ""),
        study_instance_uid=uids.get("StudyInstanceUID", ""),
        series_instance_uid=uids.get("SeriesInstanceUID", ""),
    )


def ingest_bytes(
    project: Project, data: bytes, *, name: str = "", expected_study_uid: str | None = None, derived: bool = False
) -> IngestResult:
    """Validate, store and index one DICOM file. Never raises for bad input: the result says why.

    ``derived`` marks an object this server made from instances already in the project (a
    measurement report): it is stored as made, because de-identifying it again would replace the
    UIDs by which it references those instances.
    """
    return ingest_many(project, [(name, data)], expected_study_uid=expected_study_uid, derived=derived)[0]


#: How many instances of one request are indexed in one transaction.
INDEX_BATCH = 200
#: A batch is indexed as soon as its files hold this many bytes, even if it has fewer than
#: :data:`INDEX_BATCH` files: a request of large instances holds about this much at a time.
INDEX_BATCH_BYTES = 64 * 1024 * 1024


def ingest_many(
    project: Project,
    files: Iterable[tuple[str, bytes | IngestResult]],
    *,
    expected_study_uid: str | None = None,
    derived: bool = False,
) -> list[IngestResult]:
    """:func:`ingest_bytes` for many files, each succeeding or failing on its own, in input order.

    Each file is parsed once; the index rows of up to :data:`INDEX_BATCH` files (and at most about
    :data:`INDEX_BATCH_BYTES` of them) are written in one transaction (a few queries for the batch,
    not a few per file). ``files`` is read lazily, one file at a time, so a caller that makes each
    file's bytes only when asked holds one batch at most. A file a reader refused already comes as
    its failed result. Each prepared file is hashed and written to the object store in a writer thread
    (:meth:`~viewer.storage.ObjectStore.put_soon`) while the next ones are parsed; a batch's rows are
    written once all its objects are.
    """
    store = object_store()
    results: list[IngestResult] = []
    batch: list[_Prepared] = []
    positions: list[int] = []
    batch_bytes = 0
    try:
        for name, data in files:
            prepared = (
                data if isinstance(data, IngestResult)
                else _prepare(project, store, data, name, expected_study_uid, derived)
            )
            del data  # the prepared file holds the bytes to store (de-identified ones may differ)
            results.append(prepared if isinstance(prepared, IngestResult) else IngestResult(Outcome.FAILED))
            if isinstance(prepared, _Prepared):
                batch.append(prepared)
                positions.append(len(results) - 1)
                batch_bytes += len(prepared.data)
                if len(batch) >= INDEX_BATCH or batch_bytes >= INDEX_BATCH_BYTES:
                    full, at = batch, positions
                    batch, positions, batch_bytes = [], [], 0
                    _place(results, at, _index(project, full))
                    del full, at  # not held while the next batch fills
        if batch:
            full, at, batch = batch, positions, []
            _place(results, at, _index(project, full))
    except BaseException:
        _abandon(project, batch)  # the files of a batch never indexed: their objects go
        raise
    return results


def _place(results: list[IngestResult], positions: list[int], outcomes: list[IngestResult]) -> None:
    for position, outcome in zip(positions, outcomes, strict=True):
        results[position] = outcome


@dataclass
class _Prepared:
    """A file parsed, validated and (in a de-identifying project) de-identified, its object being
    written (``written``: its digest and path once written)."""

    name: str
    data: bytes
    written: Future[tuple[str, Path]]
    attrs: dicomfile.IndexAttributes
    uids: dict[str, str]
    metadata: dict[str, Any]
    protection: _Protected | None

    @property
    def digest(self) -> str:
        return self.written.result()[0]


def _wait_written(project: Project, batch: list[_Prepared]) -> None:
    """Wait until the batch's objects are written; if one write failed, remove the others and raise."""
    wait([p.written for p in batch])
    failure = next((p.written.exception() for p in batch if p.written.exception() is not None), None)
    if failure is not None:
        for prepared in batch:
            if prepared.written.exception() is None:
                discard_unreferenced(project, prepared.digest)
        raise failure


def _abandon(project: Project, batch: list[_Prepared]) -> None:
    """The objects of files that will not be indexed (an exception stopped the ingest) are removed."""
    if not batch:
        return
    wait([p.written for p in batch])
    try:
        for prepared in batch:
            if prepared.written.exception() is None:
                discard_unreferenced(project, prepared.digest)
    except Exception:  # the exception being raised matters more; clean_storage removes what is left
        log.exception("ingest: the objects of an interrupted batch could not be removed")


def _uids_of(attrs: dicomfile.IndexAttributes) -> dict[str, str]:
    return {
        "SOPClassUID": attrs.instance["sop_class_uid"],
        "SOPInstanceUID": attrs.instance["sop_instance_uid"],
        "StudyInstanceUID": attrs.study["study_instance_uid"],
        "SeriesInstanceUID": attrs.series["series_instance_uid"],
    }


def _prepare(
    project: Project,
    store: ObjectStore,
    data: bytes,
    name: str,
    expected_study_uid: str | None,
    derived: bool,
) -> _Prepared | IngestResult:
    if len(data) > option("MAX_INSTANCE_BYTES"):
        return too_large(name)
    if not (project.deidentification and not derived):  # the data set is not needed past its description
        return _described(project, store, data, name, expected_study_uid, dicomfile.describe(data))
    try:
        part = dicomfile.read_dicom(data)
    except InvalidDicom as exc:
        return failed(name, exc.reason, exc.failure_code, **exc.uids)
    # A file without preamble or file meta is kept as the PS3.10 file it should have been.
    ds, data = part.dataset, part.data
    if len(data) > option("MAX_INSTANCE_BYTES"):
        return too_large(name)

    attrs = dicomfile.index_attributes(ds)
    uids = _uids_of(attrs)
    if expected_study_uid is not None and attrs.study["study_instance_uid"] != expected_study_uid:
        return failed(
            name, "The instance belongs to another study than the one in the URL.", dicomfile.FAILURE_STUDY_MISMATCH, **uids
        )

    protection = None
    if project.deidentification and not derived:
        try:
            protection = _deidentify(project, ds)
        except ValueError as exc:
            return failed(name, f"The file cannot be de-identified ({exc}).", dicomfile.FAILURE_PROCESSING)
        ds, data = protection.result.dataset, protection.data
        attrs = dicomfile.index_attributes(ds)
        uids = _uids_of(attrs)
    try:
        metadata = dicomfile.dicom_json(ds)
    except Exception as exc:  # pydicom cannot express some damaged values as JSON
        return failed(name, f"The file cannot be described as DICOM JSON ({type(exc).__name__}).", **uids)
    return _Prepared(name, data, store.put_soon(project.pk, data), attrs, uids, metadata, protection)


def _described(
    project: Project,
    store: ObjectStore,
    data: bytes,
    name: str,
    expected_study_uid: str | None,
    description: dicomfile.Described | dicomfile.Refusal,
) -> _Prepared | IngestResult:
    """:func:`_prepare` for a file described already (a project that does not de-identify)."""
    if isinstance(description, dicomfile.Refusal):
        return failed(name, description.reason, description.failure_code, **description.uids)
    if description.rewritten is not None:  # kept as the PS3.10 file it should have been
        data = description.rewritten
        if len(data) > option("MAX_INSTANCE_BYTES"):
            return too_large(name)
    attrs = description.attrs
    uids = _uids_of(attrs)
    if expected_study_uid is not None and attrs.study["study_instance_uid"] != expected_study_uid:
        return failed(
            name, "The instance belongs to another study than the one in the URL.", dicomfile.FAILURE_STUDY_MISMATCH, **uids
        )
    if description.metadata is None:
        return failed(name, f"The file cannot be described as DICOM JSON ({description.json_error}).", **uids)
    return _Prepared(name, data, store.put_soon(project.pk, data), attrs, uids, description.metadata, None)


def _index(project: Project, batch: list[_Prepared]) -> list[IngestResult]:
    """Index a batch whose objects are being written: once they are, all their rows in one transaction.
    An object whose file is refused (a conflict, a series under another study) is removed again.
    Should another request store one of these instances meanwhile, the batch is indexed again file by file."""
    outcomes: list[IngestResult | None] = [None] * len(batch)
    stored = dict(
        Instance.objects.filter(project=project, sop_instance_uid__in={p.uids["SOPInstanceUID"] for p in batch})
        .values_list("sop_instance_uid", "sha256")
    )
    _wait_written(project, batch)
    new: list[int] = []
    for position, prepared in enumerate(batch):
        sop = prepared.uids["SOPInstanceUID"]
        if sop in stored:  # stored before, or earlier in this batch
            outcomes[position] = _already(prepared, stored[sop])
        else:
            stored[sop] = prepared.digest
            new.append(position)
    # The objects first (written above), then their rows: a crash in between leaves unreferenced
    # objects, never a row without its file.
    try:
        if new:
            with transaction.atomic():
                for position, outcome in zip(new, _write_rows(project, [batch[i] for i in new]), strict=True):
                    outcomes[position] = outcome
    except IntegrityError:
        if len(new) > 1:  # another request stored one of them: each on its own, to say which
            for position in new:
                outcomes[position] = _index(project, [batch[position]])[0]
            _discard_refused(project, batch, outcomes, skip=new)
            return [o for o in outcomes if o is not None]
        prepared = batch[new[0]]
        existing = _existing(project, prepared.uids["SOPInstanceUID"], prepared.digest, prepared.name, prepared.uids)
        if existing is None:  # pragma: no cover - the row that won must be visible now
            raise
        if not existing.ok:
            discard_unreferenced(project, prepared.digest)
        return [existing]
    except BaseException:
        for prepared in batch:
            discard_unreferenced(project, prepared.digest)
        raise
    _discard_refused(project, batch, outcomes)
    store = object_store()
    for position in new:
        prepared = batch[position]
        outcome = outcomes[position]
        if outcome is not None and outcome.ok and not prepared.written.result()[1].exists():
            # clean_storage took it for an orphan before the commit
            store.put(project.pk, prepared.data, prepared.digest)
    return [o for o in outcomes if o is not None]


def _discard_refused(
    project: Project, batch: list[_Prepared], outcomes: list[IngestResult | None], skip: Iterable[int] = ()
) -> None:
    """Remove the objects of the batch's refused files (kept when a stored instance has the same bytes)."""
    skipped = set(skip)
    for position, (prepared, outcome) in enumerate(zip(batch, outcomes, strict=True)):
        if position not in skipped and outcome is not None and not outcome.ok:
            discard_unreferenced(project, prepared.digest)


def _already(prepared: _Prepared, stored_digest: str) -> IngestResult:
    if stored_digest == prepared.digest:
        return IngestResult(Outcome.ALREADY_STORED, name=prepared.name, **_result_uids(prepared.uids))
    return failed(
        prepared.name,
        "An instance with this SOP Instance UID is already stored with different content.",
        dicomfile.FAILURE_DUPLICATE_CONFLICT,
        **prepared.uids,
    )


def _write_rows(project: Project, batch: list[_Prepared]) -> list[IngestResult]:
    """The Study, Series and Instance rows of a batch (inside the caller's transaction): the batch's
    studies and series read in one query each, the missing ones created, the instances inserted in
    one statement, with their de-identification events. An instance whose series is stored under
    another study is refused."""
    studies = {s.study_instance_uid: s for s in Study.objects.filter(
        project=project, study_instance_uid__in={p.attrs.study["study_instance_uid"] for p in batch})}
    series_of = {s.series_instance_uid: s for s in Series.objects.filter(
        project=project, series_instance_uid__in={p.attrs.series["series_instance_uid"] for p in batch})}
    outcomes: list[IngestResult] = []
    rows: list[Instance] = []
    for prepared in batch:
        attrs, protection = prepared.attrs, prepared.protection
        study = studies.get(attrs.study["study_instance_uid"])
        if study is None:
            study = studies[attrs.study["study_instance_uid"]] = _new_study(project, attrs, prepared.metadata)
        series = series_of.get(attrs.series["series_instance_uid"])
        if series is None:
            series = series_of[attrs.series["series_instance_uid"]] = _new_series(project, study, attrs, prepared.metadata)
        if series.study_id != study.pk:
            outcomes.append(failed(prepared.name, "The Series Instance UID is already stored under another study.",
                                   dicomfile.FAILURE_PROCESSING, **prepared.uids))
            continue
        rows.append(Instance(
            project=project,
            series=series,
            sha256=prepared.digest,
            size=len(prepared.data),
            metadata=prepared.metadata,
            quarantined=bool(protection and protection.result.burned_in_text_risk),
            quarantine_reasons=list(protection.result.burned_in_text_reasons) if protection else [],
            **attrs.instance,
        ))
        if protection and protection.link and project.keep_pseudonym_links:
            PseudonymLink.objects.get_or_create(
                project=project, original_patient_id=protection.link[0], defaults={"pseudonym": protection.link[1]}
            )
        if protection:
            record(  # with the rows, not after the commit: no crash can keep one without the other
                Action.DEIDENTIFIED, project=project, object_type="instance",
                object_id=attrs.instance["sop_instance_uid"], profile=project.deidentification,
                quarantined=protection.result.burned_in_text_risk, in_transaction=True,
            )
        outcomes.append(IngestResult(Outcome.STORED, name=prepared.name, **_result_uids(prepared.uids)))
    Instance.objects.bulk_create(rows)
    return outcomes


def _result_uids(uids: dict[str, str]) -> dict[str, str]:
    return {
        "sop_class_uid": uids["SOPClassUID"],
        "sop_instance_uid": uids["SOPInstanceUID"],
        "study_instance_uid": uids["StudyInstanceUID"],
        "series_instance_uid": uids["SeriesInstanceUID"],
    }


def _existing(project: Project, sop_uid: str, digest: str, name: str, uids: dict[str, str]) -> IngestResult | None:
    stored = Instance.objects.filter(project=project, sop_instance_uid=sop_uid).values_list("sha256", flat=True).first()
    if stored is None:
        return None
    if stored == digest:
        return IngestResult(Outcome.ALREADY_STORED, name=name, **_result_uids(uids))
    return failed(
        name,
        "An instance with this SOP Instance UID is already stored with different content.",
        dicomfile.FAILURE_DUPLICATE_CONFLICT,
        **uids,
    )


def discard_unreferenced(project: Project, digest: str) -> None:
    """Remove a file written for a refused instance, unless a stored instance has the same bytes.

    Objects are per project and the bytes hold the SOP Instance UID, so only a request for the same
    instance could reference the same digest, and that one is refused for the same reason.
    """
    if not Instance.objects.filter(project=project, sha256=digest).exists():
        object_store().delete(project.pk, digest)


# --------------------------------------------------------------------------- what a crash leaves


@dataclass
class CleanReport:
    """What :func:`clean_storage` removed (or would remove) and what it kept for being too recent."""

    orphans: int = 0
    orphan_bytes: int = 0
    temporary: int = 0
    temporary_bytes: int = 0
    recent: int = 0

    def __str__(self) -> str:
        return (
            f"{self.orphans} unreferenced objects ({self.orphan_bytes:,} bytes), "
            f"{self.temporary} temporary files ({self.temporary_bytes:,} bytes); "
            f"{self.recent} recent files left for now"
        )


def clean_storage(min_age_seconds: float = 15 * 60, *, dry_run: bool = False) -> CleanReport:
    """Remove what interrupted ingests left: temporary files (of the object store, and uploads Django
    spooled to ``FILE_UPLOAD_TEMP_DIR``), and objects that no Instance row references (the process
    died after writing the object, before its rows committed).

    Only files untouched for ``min_age_seconds`` go: another process may be writing a temporary file
    or about to commit the rows of an object now (an ingest refreshes the time of an object it finds
    already written, before its commit). With every server stopped, 0 is safe. Should a file still go
    just before its rows commit, the ingest writes it again after the commit.

    Each project's stored digests are read once, in key order, alongside its sorted files.
    """
    store = object_store()
    report = CleanReport()
    for tmp in [*store.temporary_files(), *_upload_spool_files()]:
        _clean(tmp, min_age_seconds, dry_run, report, orphan=False)
    for project_id, objects in store.iter_projects():
        referenced = (
            Instance.objects.filter(project_id=project_id).order_by(_in_byte_order("sha256"))
            .values_list("sha256", flat=True).iterator(chunk_size=2000)
        )
        digest = next(referenced, None)
        for path in objects:
            while digest is not None and digest < path.name:
                digest = _next_in_order(referenced, digest)
            if digest != path.name:
                _clean(path, min_age_seconds, dry_run, report, orphan=True)
    return report


def _upload_spool_files() -> list[Path]:
    """Files Django spooled large uploads to (``tmpXXXXXXXX.upload.dcm``), when they go to a folder of
    their own (``FILE_UPLOAD_TEMP_DIR``; the system's temporary folder is not swept)."""
    folder = getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
    if not folder:
        return []
    return sorted(p for p in Path(folder).glob("tmp*.upload*") if p.is_file() and not p.is_symlink())


def _in_byte_order(field: str) -> Any:
    """Order by ``field`` as Python compares strings: SQLite's default; PostgreSQL's "C" collation (a
    database's own collation may sort otherwise)."""
    return Collate(F(field), "C") if connection.vendor == "postgresql" else F(field).asc()


def _next_in_order(digests: Iterator[str], previous: str) -> str | None:
    """The next digest, checked to follow ``previous`` in Python's order (a database collation that
    sorted otherwise would make referenced objects look unreferenced)."""
    digest = next(digests, None)
    if digest is not None and digest < previous:
        raise RuntimeError("The database sorts digests in another order than Python; nothing more removed.")
    return digest


def _clean(path: Path, min_age_seconds: float, dry_run: bool, report: CleanReport, *, orphan: bool) -> None:
    try:
        info = path.stat(follow_symlinks=False)
    except FileNotFoundError:
        return
    if time.time() - info.st_mtime < min_age_seconds:
        report.recent += 1
        return
    if orphan:
        report.orphans += 1
        report.orphan_bytes += info.st_size
    else:
        report.temporary += 1
        report.temporary_bytes += info.st_size
    if not dry_run:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Protected:
    result: deid.DeidResult
    data: bytes
    link: tuple[str, str] | None  # (original PatientID, pseudonym)


def _deidentify(project: Project, ds: dicomfile.Dataset) -> _Protected:
    """Apply the project's PS3.15 profile; the same input always gives the same bytes."""
    secret = bytes.fromhex(project.secret)
    seen: list[tuple[str, str]] = []

    def pseudonym(original: str) -> str:
        value = deid.default_pseudonym(original, secret)
        seen.append((original, value))
        return value

    result = deid.deidentify(ds, deid.Profile.from_json(project.deidentification), secret=secret, pseudonym=pseudonym)
    buffer = io.BytesIO()
    result.dataset.save_as(buffer, enforce_file_format=True)
    return _Protected(result, buffer.getvalue(), seen[0] if seen else None)


def _new_study(project: Project, attrs: dicomfile.IndexAttributes, metadata: dict) -> Study:
    return Study.objects.create(
        project=project,
        **attrs.study,
        metadata=dicomfile.level_subset(metadata, dicomfile.STUDY_LEVEL_TAGS),
    )


def _new_series(project: Project, study: Study, attrs: dicomfile.IndexAttributes, metadata: dict) -> Series:
    return Series.objects.create(
        project=project,
        study=study,
        **attrs.series,
        metadata=dicomfile.level_subset(metadata, dicomfile.SERIES_LEVEL_TAGS),
    )


# --------------------------------------------------------------------------- batches and containers


@dataclass
class BatchReport:
    results: list[IngestResult] = field(default_factory=list)

    def add(self, result: IngestResult) -> None:
        self.results.append(result)

    @property
    def stored(self) -> list[IngestResult]:
        return [r for r in self.results if r.outcome == Outcome.STORED]

    @property
    def failed(self) -> list[IngestResult]:
        return [r for r in self.results if r.outcome == Outcome.FAILED]

    def counts(self) -> dict[str, int]:
        return {outcome.value: sum(r.outcome == outcome for r in self.results) for outcome in Outcome}

    def as_dict(self) -> dict[str, object]:
        return {"counts": self.counts(), "results": [r.as_dict() for r in self.results]}


def record_upload(request: Any, project: Project, results: list[IngestResult], *, via: str) -> None:
    """One audit event per upload request: counts and the studies it touched (UIDs only)."""
    counts = {outcome.value: sum(r.outcome == outcome for r in results) for outcome in Outcome}
    studies = sorted({r.study_instance_uid for r in results if r.ok})
    record(
        Action.UPLOAD, actor=getattr(request, "user", None), request=request, project=project,
        object_type="studies", object_id=",".join(studies)[:200], via=via, **counts,
    )


def is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


#: An uploaded or imported file: its bytes, or a readable and seekable file (an upload Django spooled
#: to disk), read only as far as needed.
Source = bytes | BinaryIO


def _starts_zip(source: BinaryIO) -> bool:
    position = source.tell()
    head = source.read(4)
    source.seek(position)
    return is_zip(head)


def _size_of(source: BinaryIO) -> int:
    position = source.tell()
    size = source.seek(0, io.SEEK_END)
    source.seek(position)
    return size


def _count_signature(source: Source, signature: bytes, stop_after: int) -> int:
    """How many times ``signature`` occurs in ``source`` (a file is scanned a chunk at a time, from its
    start; the count stops once it passes ``stop_after``)."""
    if isinstance(source, bytes):
        return source.count(signature)
    source.seek(0)
    count = 0
    tail = b""
    while chunk := source.read(ZIP_CHUNK_BYTES):
        block = tail + chunk
        count += block.count(signature)
        if count > stop_after:
            break
        # A signature split between two chunks is found in the next block; one wholly inside the tail
        # (shorter than the signature) cannot be counted twice.
        tail = block[-(len(signature) - 1):]
    source.seek(0)
    return count


def safe_member_name(name: str) -> bool:
    """A zip member name that could not escape a folder if it were extracted (no ``..``, no root)."""
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return False
    return ".." not in PurePosixPath(name).parts


#: Compression methods read from zip archives. Bzip2 and LZMA members are refused: Python's zipfile
#: inflates each of their blocks whole (no output bound), so a few kilobytes could expand to gigabytes
#: before a size check runs. Deflate is inflated a bounded chunk at a time.
ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})

#: How much of a zip member is inflated at a time.
ZIP_CHUNK_BYTES = 1024 * 1024

#: At most this many members in a zip. Opening an archive reads its whole central directory into
#: objects of about 500 bytes per member: 17 MiB of empty members took 106 MiB.
ZIP_MAX_MEMBERS = 100_000
_CENTRAL_DIRECTORY_ENTRY = b"PK\x01\x02"


class _TooLarge(Exception):
    """A zip member inflated to more than it may; ``size`` bytes were inflated before stopping."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """The member's bytes, inflated a chunk at a time; :class:`_TooLarge` past ``limit`` real bytes.

    The header's declared size is not trusted: a member that declares a few bytes and inflates to
    gigabytes stops one chunk past ``limit``, so no more than about ``limit`` bytes are ever held.
    """
    buffer = io.BytesIO()
    size = 0
    with archive.open(info) as member:
        while chunk := member.read(min(ZIP_CHUNK_BYTES, limit - size + 1)):
            size += len(chunk)
            if size > limit:
                raise _TooLarge(size)
            buffer.write(chunk)
    return buffer.getvalue()


def iter_zip_members(data: Source, container: str) -> Iterator[tuple[str, bytes | IngestResult]]:
    """Yield ``(name, bytes)`` for each file of a zip, or ``(name, failed result)`` for a refused member.

    ``data`` is the archive's bytes or a seekable file of it (an upload spooled to disk): from a file,
    only the central directory and one member at a time are held in memory. Members are read into
    memory, never extracted to disk; unsafe names are refused all the same,
    because such an archive is malformed or hostile. Sizes are counted as members inflate, whatever
    their headers declare: a member larger than ``MAX_INSTANCE_BYTES`` is refused on its own, and
    the archive stops once its members have inflated to more than ``MAX_ZIP_BYTES`` in all.
    """
    # Every entry zipfile would read begins with this signature: the count is never too low (a member's
    # content may hold the four bytes too, which only makes it higher), and it costs one scan in C.
    if _count_signature(data, _CENTRAL_DIRECTORY_ENTRY, ZIP_MAX_MEMBERS) > ZIP_MAX_MEMBERS:
        yield container, failed(container, f"The zip archive holds more than {ZIP_MAX_MEMBERS:,} files; not read.",
                                dicomfile.FAILURE_OUT_OF_RESOURCES)
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        yield container, failed(container, "The zip archive is damaged.")
        return
    with archive:
        inflated = 0
        archive_limit = option("MAX_ZIP_BYTES")
        member_limit = option("MAX_INSTANCE_BYTES")
        for info in archive.infolist():
            member = f"{container}/{info.filename}" if container else info.filename
            if info.is_dir():
                continue
            if not safe_member_name(info.filename):
                yield member, failed(member, "Unsafe path in zip archive (absolute or with '..'); not read.")
                continue
            if PurePosixPath(info.filename).name.upper() == "DICOMDIR":
                continue  # the directory record itself is not an image; its files are members too
            if info.compress_type not in ZIP_METHODS:
                yield member, failed(member, "The zip member is compressed with a method this archive does not read.")
                continue
            if info.file_size > member_limit:  # honest and too large: refused without inflating it
                yield member, too_large(member)
                continue
            limit = min(member_limit, archive_limit - inflated)
            try:
                content = read_zip_member(archive, info, max(limit, 0))
            except _TooLarge as exc:
                inflated += exc.size
                if limit < member_limit:
                    yield member, failed(member, "The zip archive expands beyond the size this archive accepts.",
                                         dicomfile.FAILURE_OUT_OF_RESOURCES)
                    return
                yield member, too_large(member)
                continue
            except zipfile.BadZipFile:
                # Also a member whose header declares fewer bytes than it holds: zipfile stops at the
                # declared size, and the checksum of what it read fails.
                yield member, failed(member, "The zip member is damaged or does not match its header.")
                continue
            except (RuntimeError, OSError, EOFError, NotImplementedError, ValueError) as exc:
                yield member, failed(member, f"The zip member cannot be read ({type(exc).__name__}).")
                continue
            inflated += len(content)
            yield member, content


def too_large(name: str) -> IngestResult:
    return failed(name, "The file is larger than this archive accepts.", dicomfile.FAILURE_OUT_OF_RESOURCES)


def ingest_files(project: Project, files: Iterable[tuple[str, Source | IngestResult]]) -> BatchReport:
    """Ingest named files, opening zip archives; each file succeeds or fails on its own.

    A file comes as its bytes, or as a seekable file read only when its turn comes (a zip archive a
    member at a time); one its reader refused already (:mod:`viewer.importing`) as its failed result.
    """
    return BatchReport(ingest_many(project, _opened(files)))


def _opened(files: Iterable[tuple[str, Source | IngestResult]]) -> Iterator[tuple[str, bytes | IngestResult]]:
    """The files, each zip archive replaced by its members; a file given open is read when its turn comes
    (whole only if it is not a zip and no larger than an instance)."""
    for name, data in files:
        if isinstance(data, IngestResult):
            yield name, data
        elif isinstance(data, bytes):
            if is_zip(data):
                yield from iter_zip_members(data, name)
            else:
                yield name, data
        elif _starts_zip(data):
            yield from iter_zip_members(data, name)
        elif _size_of(data) > option("MAX_INSTANCE_BYTES"):
            yield name, too_large(name)
        else:
            yield name, data.read()
