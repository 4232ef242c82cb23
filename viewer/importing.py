"""Finding DICOM files on disk for ``manage.py import_dicom``: folders, zips and DICOMDIR media.

The source tree may be careless or hostile, and the command runs with the rights of the server:

- Symbolic links are never followed, to files or folders, and files are opened with ``O_NOFOLLOW``:
  a link into another project's stored objects imports nothing. A link is reported as refused.
- Nothing inside Crossread's object store (``DATA_DIR/objects``) or its spool of uploads
  (``DATA_DIR/tmp``) is read: they hold every project's files. A path given inside them is refused,
  and a walk prunes them. The rest of the data folder may hold files to import (``load_demo`` writes
  the phantom and the synthetic slide there).
- A DICOMDIR is read record by record: each referenced file must lie inside the DICOMDIR's folder
  and exist; a record that points elsewhere (``..``) or to a missing file is a refusal of its own.

Refusals come out as ``(name, reason)`` :class:`Refusal` values, in order with the files, so the
batch report lists them with the rest.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pydicom
from django.conf import settings

from crossread.conf import option
from viewer.ingest import IngestResult, failed
from viewer.storage import object_store


@dataclass(frozen=True)
class Refusal:
    name: str
    reason: str


LINK = "A symbolic link; import_dicom does not follow links."
PROTECTED = "Inside Crossread's object store or upload spool, which hold the files of every project; not read."


def protected_folders() -> tuple[Path, ...]:
    """Folders no import reads from: the object store and the spool of uploads (resolved)."""
    return tuple({object_store().root.resolve(), (Path(settings.DATA_DIR) / "tmp").resolve()})


def _inside(path: Path, folders: tuple[Path, ...]) -> bool:
    return any(path == folder or path.is_relative_to(folder) for folder in folders)


def iter_paths(path: Path, protected: tuple[Path, ...] = ()) -> Iterator[Path | Refusal]:
    """Every file to ingest below ``path``, and a :class:`Refusal` for what is not read.

    A DICOMDIR given by name is followed to the files it references; inside a folder, DICOMDIR
    files and hidden files are skipped (the folder's other files are read anyway).
    """
    if path.is_symlink():
        yield Refusal(str(path), LINK)
        return
    if _inside(path.resolve(), protected):
        yield Refusal(str(path), PROTECTED)
        return
    if path.is_file():
        if path.name.upper() == "DICOMDIR":
            yield from dicomdir_files(path, protected)
        else:
            yield path
        return
    yield from _walk(path, protected)


def _walk(top: Path, protected: tuple[Path, ...]) -> Iterator[Path | Refusal]:
    """Files below ``top`` in sorted order, without following links (an explicit stack, no recursion)."""
    protected_ids = {(s.st_dev, s.st_ino) for s in (_stat(p) for p in protected) if s is not None}
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            yield Refusal(str(folder), f"The folder cannot be read ({exc.strerror or type(exc).__name__}).")
            continue
        folders = []
        for entry in entries:
            if entry.is_symlink():
                yield Refusal(entry.path, LINK)
            elif entry.is_dir(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                if (info.st_dev, info.st_ino) in protected_ids:  # also through a bind mount
                    yield Refusal(entry.path, PROTECTED)
                else:
                    folders.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False) and not _skipped(entry.name):
                yield Path(entry.path)
        stack.extend(reversed(folders))


def _skipped(name: str) -> bool:
    """Hidden files, and DICOMDIR files (a folder's files are all read anyway)."""
    return name.startswith(".") or name.upper() == "DICOMDIR"


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def dicomdir_files(dicomdir: Path, protected: tuple[Path, ...] = ()) -> Iterator[Path | Refusal]:
    """The files a DICOMDIR references (PS3.10 media), in record order; a refusal for a bad record.

    Each record's ReferencedFileID is a path relative to the DICOMDIR's folder. It must stay inside
    that folder (no ``..``, no absolute path, no link on the way) and name an existing file.
    """
    root = dicomdir.parent.resolve()
    content = read_file(dicomdir, protected)
    if isinstance(content, Refusal):
        yield content
        return
    try:
        ds = pydicom.dcmread(io.BytesIO(content), stop_before_pixels=True)
        records = list(ds.get("DirectoryRecordSequence", []))
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for a damaged file
        yield Refusal(str(dicomdir), f"The DICOMDIR cannot be read ({type(exc).__name__}).")
        return
    for record in records:
        file_id = record.get("ReferencedFileID")
        if file_id is None or file_id == "":
            continue  # patient, study and series records reference no file
        parts = [str(file_id)] if isinstance(file_id, str) else [str(part) for part in file_id]
        parts = [part.strip() for part in parts]
        name = f"{dicomdir} → {'/'.join(parts)}"
        if any(part in ("", ".", "..") or "/" in part or "\\" in part or "\0" in part or ":" in part for part in parts):
            yield Refusal(name, "The DICOMDIR record points outside its media ('..' or an absolute path).")
            continue
        path = root.joinpath(*parts)
        if path.resolve() != path:
            yield Refusal(name, "The DICOMDIR record points through a symbolic link; links are not followed.")
        elif _inside(path, protected):
            yield Refusal(name, PROTECTED)
        elif not path.is_file():
            yield Refusal(name, "The DICOMDIR record references a file that does not exist.")
        else:
            yield path


@contextmanager
def open_file(path: Path, protected: tuple[Path, ...] = ()) -> Iterator[BinaryIO | Refusal]:
    """The file, open for reading without following a link; a refusal if it cannot or must not be read.

    Where the system says which file an open descriptor is (Linux), that file is checked too: a
    folder on the way swapped for a link since the walk cannot lead into the data folder.
    """
    try:
        # O_NONBLOCK: a named pipe put in the file's place must not hang the import.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        yield Refusal(str(path), f"The file cannot be read ({exc.strerror or type(exc).__name__}).")
        return
    with os.fdopen(fd, "rb") as fh:
        if protected and _inside(_opened_path(fh.fileno()) or path.resolve(), protected):
            yield Refusal(str(path), PROTECTED)
            return
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            yield Refusal(str(path), "Not a regular file; not read.")
            return
        if info.st_size > max(option("MAX_INSTANCE_BYTES"), option("MAX_ZIP_BYTES")):
            yield Refusal(str(path), "The file is larger than this archive accepts.")
            return
        yield fh


def read_file(path: Path, protected: tuple[Path, ...] = ()) -> bytes | Refusal:
    """The file's bytes (:func:`open_file`), or why it is not read."""
    with open_file(path, protected) as opened:
        return opened if isinstance(opened, Refusal) else opened.read()


def _opened_path(fd: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def iter_named_files(paths: list[Path]) -> Iterator[tuple[str, BinaryIO | IngestResult]]:
    """``(name, open file)`` for each file to ingest below ``paths``, open until the ingest asks for the
    next one (a zip is read from it a member at a time); ``(name, failed result)`` for a refusal."""
    protected = protected_folders()
    for root in paths:
        for found in iter_paths(root, protected):
            if isinstance(found, Refusal):
                yield found.name, failed(found.name, found.reason)
                continue
            with open_file(found, protected) as opened:
                if isinstance(opened, Refusal):
                    yield opened.name, failed(opened.name, opened.reason)
                else:
                    yield str(found), opened
