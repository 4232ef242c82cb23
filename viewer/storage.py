"""Content-addressed object store for DICOM files on the local file system.

An object's key is the SHA-256 of its bytes, kept under the project's own folder so that a
project's pixels can live in their own place (data locality) and be removed together:
``<DATA_DIR>/objects/<project id>/<sha[:2]>/<sha>``. Writes are atomic: a temporary file in
the same folder, fsync, then ``os.replace``, so a reader never sees half a file and a crash
leaves at most a ``.tmp`` file that :meth:`ObjectStore.sweep_temporary` removes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, project_id: int, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("object keys are lowercase SHA-256 hex digests")
        return self.root / str(int(project_id)) / sha256[:2] / sha256

    def put(self, project_id: int, data: bytes, sha256: str) -> Path:
        """Store ``data`` under its digest; a no-op when the object already exists."""
        target = self.path(project_id, sha256)
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

    def read(self, project_id: int, sha256: str) -> bytes:
        return self.path(project_id, sha256).read_bytes()

    def delete(self, project_id: int, sha256: str) -> None:
        self.path(project_id, sha256).unlink(missing_ok=True)

    def iter_keys(self, project_id: int) -> list[str]:
        folder = self.root / str(int(project_id))
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.glob("??/*") if not p.name.startswith("."))

    def sweep_temporary(self) -> int:
        removed = 0
        for tmp in self.root.glob("*/??/.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed


def object_store() -> ObjectStore:
    return ObjectStore(Path(settings.DATA_DIR) / "objects")
