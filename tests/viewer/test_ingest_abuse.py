"""The ingest path against hostile or damaged input: zip bombs, crashes, symlinks, DICOMDIR records.

Real files and real code paths: zips are built with :mod:`zipfile` and then made to lie, the crash is
a real process killed with SIGKILL, symlinks and DICOMDIR media are real files in a temporary folder.
"""

from __future__ import annotations

import io
import shutil
import struct
import tracemalloc
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.core.management import call_command
from pydicom.data import get_testdata_file

from tests.factories.dicom import ct_bytes
from viewer.ingest import Outcome, ingest_files
from viewer.models import Instance, Series, Study
from viewer.storage import object_store

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


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2], ids=["deflate", "bzip2"])
def test_zip_member_that_lies_about_its_size_is_refused_without_inflating_it(make_project, settings, compression):
    settings.CROSSREAD = {"MAX_INSTANCE_BYTES": 4 * MiB, "MAX_ZIP_BYTES": 8 * MiB}
    project = make_project()
    good = ct_bytes()
    bomb = lying_zip(bytes(64 * MiB), declared=1000, compression=compression, before={"good.dcm": good})
    assert len(bomb) < MiB and zipfile.ZipFile(io.BytesIO(bomb)).getinfo("bomb.dcm").file_size == 1000

    report, peak = peak_memory_of(ingest_files, project, [("upload.zip", bomb)])

    assert peak < 2 * 4 * MiB, f"inflating the member took {peak / MiB:.1f} MiB"
    outcomes = {r.name: r.outcome for r in report.results}
    assert outcomes == {"upload.zip/good.dcm": Outcome.STORED, "upload.zip/bomb.dcm": Outcome.FAILED}
    assert report.failed[0].reason
    assert Instance.objects.count() == 1
    assert len(object_store().iter_keys(project.pk)) == 1


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
    call_command("import_dicom", str(settings.DATA_DIR), "--project", "trial")  # the data folder itself

    out = capsys.readouterr()
    assert "1 stored, 0 already stored, 3 refused" in out.out
    assert out.out.count("0 stored, 0 already stored, 1 refused") == 2
    for name in ("file-link.dcm", "folder-link", "link-argument.dcm"):
        assert f"{name}: A symbolic link" in out.err
    assert out.err.count("Inside Crossread's data folder") == 2
    assert Instance.objects.filter(project=team["project"]).count() == 1
    assert not Instance.objects.filter(project=team["project"], sop_instance_uid=theirs.sop_instance_uid).exists()


def test_a_walk_prunes_the_data_folder_inside_it(team, tmp_path, capsys, settings):
    """Importing a folder that holds the data folder (a checkout, say) skips the data folder."""
    settings.DATA_DIR = tmp_path / "checkout" / "data"
    assert ingest_files(team["project"], [("stored.dcm", ct_bytes())]).stored
    (tmp_path / "checkout" / "new.dcm").write_bytes(ct_bytes())
    call_command("import_dicom", str(tmp_path / "checkout"), "--project", "trial")
    out = capsys.readouterr()
    assert "1 stored, 0 already stored, 1 refused" in out.out
    assert "data: Inside Crossread's data folder" in out.err
    assert Instance.objects.count() == 2


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
    assert refused == [
        f"refused {dicomdir} → ../OUTSIDE/SECRET: The DICOMDIR record points outside its media (a '..', absolute or empty path).",
        f"refused {dicomdir} → 77654033/CR2/9999: The DICOMDIR record references a file that does not exist.",
    ]
    assert "Traceback" not in out.err
    stored = Instance.objects.filter(project=team["project"])
    assert stored.count() > 20  # the other records' files
    assert not stored.filter(sop_instance_uid=pydicom.dcmread(io.BytesIO(outside)).SOPInstanceUID).exists()
