"""Content-addressed object store for DICOM files on the local file system.

An object's key is the SHA-256 of its bytes, kept under the project's own folder so that a
project's pixels can live in their own place (data locality) and be removed together:
``<DATA_DIR>/objects/<project id>/<sha[:2]>/<sha>``. Writes are atomic: a temporary file in
the same folder, fsync, then ``os.replace``, so a reader never sees half a file.

A process killed while ingesting leaves at most a ``.tmp`` file (killed while writing) or an object
no Instance row references (killed before its rows committed). ``manage.py clean_storage`` removes
both once they are older than a few minutes (:func:`viewer.ingest.clean_storage`); :meth:`ObjectStore.put`
refreshes the time of an object it finds already written, so an object about to be referenced again
is never old enough to be removed.

:meth:`ObjectStore.put_soon` hashes and writes an object in a small pool of threads (the same atomic
write): an ingest goes on parsing the next file meanwhile, and the files of a batch are written and
synced together (their fsyncs share the file system's journal commits instead of waiting in turn).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from django.conf import settings


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, project_id: int, sha256: str) -> Path:
        if not is_key(sha256):
            raise ValueError("object keys are lowercase SHA-256 hex digests")
        return self.root / str(int(project_id)) / sha256[:2] / sha256

    def put(self, project_id: int, data: bytes, sha256: str) -> Path:
        """Store ``data`` under its digest; when the object already exists, only refresh its time."""
        target = self.path(project_id, sha256)
        try:
            os.utime(target)
            return target
        except FileNotFoundError:
            pass
        except OSError:  # not ours to touch (a read-only mount, another user's file): there all the same
            if target.exists():
                return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return target

    def put_soon(self, project_id: int, data: bytes) -> Future[tuple[str, Path]]:
        """Hash ``data`` and :meth:`put` it under its digest in a writer thread; the future's result is
        ``(digest, path)`` (or the exception the write raised). The caller holds ``data`` until then."""
        return _writers().submit(self._hash_and_put, project_id, data)

    def _hash_and_put(self, project_id: int, data: bytes) -> tuple[str, Path]:
        digest = sha256_hex(data)
        return digest, self.put(project_id, data, digest)

    def read(self, project_id: int, sha256: str) -> bytes:
        return self.path(project_id, sha256).read_bytes()

    def delete(self, project_id: int, sha256: str) -> None:
        self.path(project_id, sha256).unlink(missing_ok=True)

    def iter_keys(self, project_id: int) -> list[str]:
        folder = self.root / str(int(project_id))
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.glob("??/*") if not p.name.startswith("."))

    def iter_projects(self) -> Iterator[tuple[int, Iterator[Path]]]:
        """``(project id, its objects)`` for each project folder; objects come sorted by key."""
        if not self.root.is_dir():
            return
        for project in sorted(self.root.iterdir()):
            if project.name.isdigit() and project.is_dir() and not project.is_symlink():
                yield int(project.name), _objects(project)

    def temporary_files(self) -> list[Path]:
        """Files an interrupted :meth:`put` left (or one that is writing now)."""
        return sorted(self.root.glob("*/??/.*.tmp"))


def _objects(project: Path) -> Iterator[Path]:
    for folder in sorted(project.glob("??")):
        if folder.is_dir() and not folder.is_symlink():
            for path in sorted(folder.iterdir()):
                if is_key(path.name) and not path.is_symlink() and path.is_file():
                    yield path


def is_key(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


#: Writer threads of a process (:meth:`ObjectStore.put_soon`): each mostly waits for its fsync. Measured
#: on the project's machine, 120 files of 0.5 MB took 182 ms one after another, 101 ms with 4 threads
#: and 88 ms with 8; 200 files of 1 KB 108 ms, 66 ms and 64 ms.
WRITER_THREADS = 8
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _writers() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WRITER_THREADS, thread_name_prefix="object-writer")
        return _pool


def object_store() -> ObjectStore:
    return ObjectStore(Path(settings.DATA_DIR) / "objects")
