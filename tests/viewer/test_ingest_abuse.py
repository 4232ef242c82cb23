"""The ingest path against hostile or damaged input: zip bombs, crashes, symlinks, DICOMDIR records.

Real files and real code paths: zips are built with :mod:`zipfile` and then made to lie, the crash is
a real process killed with SIGKILL, symlinks and DICOMDIR media are real files in a temporary folder.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile

import pytest

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
