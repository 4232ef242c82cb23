"""The ingest path against hostile or damaged input: zip bombs, crashes, symlinks, DICOMDIR records.

Real files and real code paths: zips are built with :mod:`zipfile` and then made to lie, the crash is
a real process killed with SIGKILL, symlinks and DICOMDIR media are real files in a temporary folder.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pydicom.uid
import pytest
from django.core.management import call_command
from pydicom.data import get_testdata_file

from audit.models import Action, AuditEvent
from tests.factories.dicom import ct_bytes
from tests.live import REPO, LiveSite
from viewer import importing, ingest
from viewer.ingest import Outcome, ingest_files
from viewer.models import Instance
from viewer.storage import object_store, sha256_hex

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


# --------------------------------------------------------------------------- zip bombs


def lying_zip(real: bytes, declared: int, compression: int, *, before: dict[str, bytes] | None = None) -> bytes:
    """A zip whose last member holds ``real`` but whose headers (local and central) declare ``declared`` bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in (before or {}).items():
            archive.writestr(name, data)
        archive.writestr("bomb.dcm", real, compress_type=compression)
        info = archive.getinfo("bomb.dcm")
        info.file_size = declared  # the central directory, written at close, lies
    data = bytearray(buffer.getvalue())
    local = info.header_offset
    assert data[local:local + 4] == b"PK\x03\x04"
    assert struct.unpack_from("<I", data, local + 22)[0] == len(real)
    struct.pack_into("<I", data, local + 22, declared)  # and so does the local header
    return bytes(data)


def peak_memory_of(function, *args):
    tracemalloc.start()
    try:
        result = function(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "compression, reason",
    [
        (zipfile.ZIP_DEFLATED, "The zip member is damaged or does not match its header."),
        (zipfile.ZIP_BZIP2, "The zip member is compressed with a method this archive does not read."),
    ],
    ids=["deflate", "bzip2"],
)
def test_zip_member_that_lies_about_its_size_is_refused_without_inflating_it(
    make_project, settings, compression, reason
):
    settings.CROSSREAD = {"MAX_INSTANCE_BYTES": 4 * MiB, "MAX_ZIP_BYTES": 8 * MiB}
    project = make_project()
    good = ct_bytes()
    bomb = lying_zip(bytes(64 * MiB), declared=1000, compression=compression, before={"good.dcm": good})
    assert len(bomb) < MiB and zipfile.ZipFile(io.BytesIO(bomb)).getinfo("bomb.dcm").file_size == 1000

    report, peak = peak_memory_of(ingest_files, project, [("upload.zip", bomb)])

    assert peak < 2 * 4 * MiB, f"inflating the member took {peak / MiB:.1f} MiB"
    outcomes = {r.name: r.outcome for r in report.results}
    assert outcomes == {"upload.zip/good.dcm": Outcome.STORED, "upload.zip/bomb.dcm": Outcome.FAILED}
    assert report.failed[0].reason == reason
    assert Instance.objects.count() == 1
    assert len(object_store().iter_keys(project.pk)) == 1


def test_zip_with_too_many_members_is_refused_before_its_directory_is_read(make_project, monkeypatch):
    monkeypatch.setattr(ingest, "ZIP_MAX_MEMBERS", 10_000, raising=False)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for number in range(10_001):
            archive.writestr(f"{number:05d}.dcm", b"")
    many = buffer.getvalue()

    report, peak = peak_memory_of(ingest_files, make_project(), [("many.zip", many)])

    assert [(r.name, r.outcome) for r in report.results] == [("many.zip", Outcome.FAILED)]
    assert "more than 10,000 files" in report.results[0].reason
    assert peak < MiB, f"reading the archive took {peak / MiB:.1f} MiB"
    assert Instance.objects.count() == 0


def test_zip_with_too_many_members_on_disk_is_refused_before_its_directory_is_read(make_project, monkeypatch, tmp_path):
    """The same count from an archive given as a file (an upload spooled to disk), read a chunk at a
    time: the count stops at the bound, and a signature split across two chunks is counted once."""
    monkeypatch.setattr(ingest, "ZIP_MAX_MEMBERS", 1_000, raising=False)
    monkeypatch.setattr(ingest, "ZIP_CHUNK_BYTES", 1001, raising=False)  # signatures fall across chunks
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for number in range(1_001):
            archive.writestr(f"{number:05d}.dcm", b"")
    with path.open("rb") as many:
        assert ingest._count_signature(many, b"PK\x01\x02", 10_000) == 1_001
        report = ingest_files(make_project(), [("many.zip", many)])
    assert [(r.name, r.outcome) for r in report.results] == [("many.zip", Outcome.FAILED)]
    assert "more than 1,000 files" in report.results[0].reason


def noise_zip(target) -> str:
    """24 CT images of about 1 MB of noise (the zip is as large as its members) in a zip written to
    ``target``; their series' UID."""
    rng = np.random.default_rng(17)
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(24):
            archive.writestr(f"ct/{number:02d}.dcm", ct_bytes(
                StudyInstanceUID=study, SeriesInstanceUID=series, InstanceNumber=number + 1,
                Rows=724, Columns=724, PixelData=rng.bytes(724 * 724 * 2)))
    return series


def test_import_dicom_reads_a_zip_from_its_file_a_member_at_a_time(make_project, monkeypatch, tmp_path):
    monkeypatch.setattr(ingest, "INDEX_BATCH_BYTES", 4 * MiB)
    path = tmp_path / "ct.zip"
    series = noise_zip(path)
    project = make_project()
    ingest_files(project, [("warm.dcm", ct_bytes())])

    report, peak = peak_memory_of(ingest_files, project, importing.iter_named_files([path]))

    assert len(report.stored) == 24 and Instance.objects.filter(series__series_instance_uid=series).count() == 24
    assert peak < path.stat().st_size / 3, f"{peak / MiB:.1f} MiB for a zip of {path.stat().st_size / MiB:.1f} MiB"


def test_a_zip_upload_larger_than_memory_is_read_from_its_spool_a_member_at_a_time(team, settings, monkeypatch):
    """A 24 MB zip upload: Django spools it to disk (beyond FILE_UPLOAD_MAX_MEMORY_SIZE) and the ingest
    reads it from there, one member at a time; neither the archive nor all its members are held."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import RequestFactory
    from django.test.client import ClientHandler

    from tests.factories.models import token_for

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = MiB
    monkeypatch.setattr(ingest, "INDEX_BATCH_BYTES", 4 * MiB)  # an ingest batch holds at most about this
    buffer = io.BytesIO()
    series = noise_zip(buffer)
    data = buffer.getvalue()
    assert len(data) > 24 * MiB
    token = token_for(team["reader"])
    environ = RequestFactory().post(
        "/api/projects/trial/upload/", {"files": [SimpleUploadedFile("ct.zip", data, content_type="application/zip")]},
        HTTP_AUTHORIZATION=f"Token {token}").environ
    del buffer
    ClientHandler()(RequestFactory().get("/api/presets/", HTTP_AUTHORIZATION=f"Token {token}").environ)  # warm up

    tracemalloc.start()
    try:
        response = ClientHandler()(environ)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert response.status_code == 200, response.content
    assert json.loads(response.content)["counts"]["stored"] == 24
    assert Instance.objects.filter(series__series_instance_uid=series).count() == 24
    assert peak < len(data) / 3, f"{peak / MiB:.1f} MiB for a zip of {len(data) / MiB:.1f} MiB"


# --------------------------------------------------------------------------- import_dicom: links, the data folder


def test_import_dicom_follows_no_link_and_reads_nothing_in_the_data_folder(team, tmp_path, capsys, settings):
    other = team["outsider"].memberships.get().project
    assert ingest_files(other, [("theirs.dcm", ct_bytes())]).stored
    theirs = Instance.objects.get(project=other)
    stored = object_store().path(other.pk, theirs.sha256)
    source = tmp_path / "source"
    source.mkdir()
    (source / "mine.dcm").write_bytes(ct_bytes())
    (source / "file-link.dcm").symlink_to(stored)
    (source / "folder-link").symlink_to(stored.parent.parent)
    (tmp_path / "link-argument.dcm").symlink_to(stored)

    call_command("import_dicom", str(source), str(tmp_path / "link-argument.dcm"), "--project", "trial")
    call_command("import_dicom", str(stored.parent), "--project", "trial")  # a folder of the object store
    call_command("import_dicom", str(object_store().root), "--project", "trial")  # the object store itself

    out = capsys.readouterr()
    assert "1 stored, 0 already stored, 3 refused" in out.out
    assert out.out.count("0 stored, 0 already stored, 1 refused") == 2
    for name in ("file-link.dcm", "folder-link", "link-argument.dcm"):
        assert f"{name}: A symbolic link" in out.err
    assert out.err.count("Inside Crossread's object store") == 2
    assert Instance.objects.filter(project=team["project"]).count() == 1
    assert not Instance.objects.filter(project=team["project"], sop_instance_uid=theirs.sop_instance_uid).exists()


def test_reading_a_file_through_a_folder_swapped_for_a_link_is_refused(team, tmp_path):
    """What a walk would meet if a folder it listed became a link into the data folder before the read:
    O_NOFOLLOW guards only the last part of a path, so the opened file itself is checked."""
    assert ingest_files(team["project"], [("a.dcm", ct_bytes())]).stored
    stored = object_store().path(team["project"].pk, Instance.objects.get().sha256)
    (tmp_path / "swapped").symlink_to(stored.parent)
    refused = importing.read_file(tmp_path / "swapped" / stored.name, importing.protected_folders())
    assert refused == importing.Refusal(str(tmp_path / "swapped" / stored.name), importing.PROTECTED)


def test_a_walk_prunes_the_object_store_inside_it(team, tmp_path, capsys, settings):
    """Importing a folder that holds the data folder (a checkout, say) skips the object store, and
    reads the rest of the data folder (where load_demo writes the phantom it imports)."""
    settings.DATA_DIR = tmp_path / "checkout" / "data"
    assert ingest_files(team["project"], [("stored.dcm", ct_bytes())]).stored
    (tmp_path / "checkout" / "new.dcm").write_bytes(ct_bytes())
    (settings.DATA_DIR / "phantom").mkdir()
    (settings.DATA_DIR / "phantom" / "written-here.dcm").write_bytes(ct_bytes())
    call_command("import_dicom", str(tmp_path / "checkout"), "--project", "trial")
    out = capsys.readouterr()
    assert "2 stored, 0 already stored, 1 refused" in out.out
    assert "objects: Inside Crossread's object store" in out.err
    assert Instance.objects.count() == 3


# --------------------------------------------------------------------------- DICOMDIR records


def test_dicomdir_records_outside_the_media_or_missing_are_refused_one_by_one(team, tmp_path, capsys):
    media = tmp_path / "media"
    shutil.copytree(Path(get_testdata_file("DICOMDIR")).parent, media)
    outside = ct_bytes()
    (tmp_path / "OUTSIDE").mkdir()
    (tmp_path / "OUTSIDE" / "SECRET").write_bytes(outside)
    dicomdir = media / "DICOMDIR"
    raw = dicomdir.read_bytes()
    # Same lengths, so the records' offsets stay right: one record leaves the media, one names no file.
    for old, new in [(rb"77654033\CR1\6154", rb"..\OUTSIDE\SECRET"), (rb"77654033\CR2\6247", rb"77654033\CR2\9999")]:
        assert raw.count(old) == 1
        raw = raw.replace(old, new)
    dicomdir.write_bytes(raw)

    call_command("import_dicom", str(dicomdir), "--project", "trial")

    out = capsys.readouterr()
    refused = [line for line in out.err.splitlines() if line.startswith("refused")]
    outside_media = "The DICOMDIR record points outside its media ('..' or an absolute path)."
    assert refused == [
        f"refused {dicomdir} → ../OUTSIDE/SECRET: {outside_media}",
        f"refused {dicomdir} → 77654033/CR2/9999: The DICOMDIR record references a file that does not exist.",
    ]
    assert "Traceback" not in out.err
    stored = Instance.objects.filter(project=team["project"])
    assert stored.count() > 20  # the other records' files
    assert not stored.filter(sop_instance_uid=pydicom.dcmread(io.BytesIO(outside)).SOPInstanceUID).exists()


# --------------------------------------------------------------------------- crashes


def test_an_import_killed_between_its_object_and_its_rows_leaves_nothing_visible(tmp_path):
    """A real ``manage.py import_dicom`` process, SIGKILLed after writing the object, before its commit.

    The test holds the database's write lock, so the process writes the object and then waits to
    commit its rows; it is killed while it waits.
    """
    site = LiveSite.create(tmp_path)
    site.manage("shell", "-c", "from viewer.models import Project; Project.objects.create(slug='p', name='P')")
    source = tmp_path / "big.dcm"
    source.write_bytes(ct_bytes(Rows=512, Columns=512, PixelData=bytes(512 * 512 * 2)))
    objects = tmp_path / "data" / "objects"
    lock = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "import_dicom", str(source), "--project", "p"],
        env=site.env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not [p for p in objects.glob("*/??/*") if not p.name.startswith(".")]:
            assert process.poll() is None, "the import ended before it was killed"
            assert time.monotonic() < deadline, "no object was written"
            time.sleep(0.01)
        time.sleep(0.2)  # it is waiting for the lock now
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        lock.execute("ROLLBACK")
        lock.close()
    (orphan,) = [p for p in objects.glob("*/??/*") if not p.name.startswith(".")]
    # And what a process killed while writing an object leaves: a temporary file, old and new.
    stale, fresh = orphan.parent / ".stale.tmp", orphan.parent / ".fresh.tmp"
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))

    assert rows(tmp_path / "db.sqlite3") == (0, 0, 0, 0)
    assert "0 unreferenced objects (0 bytes), 1 temporary files (11 bytes); 2 recent" in site.manage("clean_storage")
    assert orphan.exists() and fresh.exists() and not stale.exists()
    out = site.manage("clean_storage", "--minutes", "0")
    assert f"removed 1 unreferenced objects ({source.stat().st_size:,} bytes), 1 temporary files (13 bytes)" in out
    assert [p for p in objects.rglob("*") if p.is_file()] == []


def rows(database: Path) -> tuple[int, ...]:
    """Study, Series, Instance rows and audit events, read from the site's database file."""
    with sqlite3.connect(database) as connection:
        return tuple(
            connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("viewer_study", "viewer_series", "viewer_instance", "audit_auditevent")
        )


def test_large_uploads_are_spooled_inside_the_data_folder():
    """Not in the system's temporary folder, where a killed process's spooled upload would stay."""
    from crossread import settings as configured

    assert Path(configured.FILE_UPLOAD_TEMP_DIR).is_relative_to(configured.DATA_DIR)
    assert Path(configured.FILE_UPLOAD_TEMP_DIR).is_dir()


def test_the_deidentification_event_commits_with_the_instance_rows(make_project):
    """Inside the test's transaction nothing has committed yet: the event must already be written,
    as part of the same transaction as the rows (not in a hook that runs after the commit)."""
    project = make_project(deidentification={"profile": "basic", "options": []})
    assert ingest_files(project, [("a.dcm", ct_bytes())]).stored
    instance = Instance.objects.get(project=project)
    assert AuditEvent.objects.filter(action=Action.DEIDENTIFIED, object_id=instance.sop_instance_uid).count() == 1


def test_clean_storage_removes_a_dimse_spool_file_a_killed_listener_left(settings, tmp_path, capsys):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    from viewer.dimse import receive

    left = tmp_path / "spool" / f"{receive.SPOOL_PREFIX}k2j4_x9{receive.SPOOL_SUFFIX}"
    left.write_bytes(b"part of a data set")
    old = time.time() - 3600
    os.utime(left, (old, old))
    call_command("clean_storage")
    assert not left.exists()


def test_clean_storage_removes_only_old_unreferenced_objects_and_old_temporary_files(
    make_project, capsys, settings, tmp_path
):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    stale_upload, fresh_upload = tmp_path / "spool" / "tmpab_12cd.upload.zip", tmp_path / "spool" / "tmpx.upload.dcm"
    stale_upload.write_bytes(b"part of an upload")
    fresh_upload.write_bytes(b"arriving")
    project, other = make_project(), make_project()
    assert len(ingest_files(project, [(f"{n}.dcm", ct_bytes()) for n in range(6)]).stored) == 6
    store = object_store()
    kept = [store.path(project.pk, digest) for digest in Instance.objects.values_list("sha256", flat=True)]
    orphans = [store.put(project.pk, data, sha256_hex(data)) for data in (b"orphan", b"another", b"a third")]
    of_a_removed_project = store.put(other.pk + 1000, b"gone", sha256_hex(b"gone"))
    recent = store.put(project.pk, b"recent", sha256_hex(b"recent"))
    stale_tmp = orphans[0].parent / ".x.tmp"
    stale_tmp.write_bytes(b"half")
    old = time.time() - 3600
    for path in (*kept, *orphans, of_a_removed_project, stale_tmp, stale_upload):
        os.utime(path, (old, old))

    call_command("clean_storage", "--dry-run")
    assert all(p.exists() for p in (*kept, *orphans, of_a_removed_project, recent, stale_tmp, stale_upload))
    call_command("clean_storage")
    out = capsys.readouterr().out
    assert "would remove 4 unreferenced objects (24 bytes), 2 temporary files (21 bytes); 2 recent" in out
    assert "removed 4 unreferenced objects (24 bytes), 2 temporary files (21 bytes); 2 recent" in out
    assert all(p.exists() for p in kept) and recent.exists() and fresh_upload.exists()
    assert not any(p.exists() for p in (*orphans, of_a_removed_project, stale_tmp, stale_upload))

    # Sending the orphan's bytes again refreshes the object: it is not old enough to be removed.
    store.put(project.pk, b"recent", sha256_hex(b"recent"))
    os.utime(recent, (old, old))
    store.put(project.pk, b"recent", sha256_hex(b"recent"))
    call_command("clean_storage")
    assert recent.exists()
