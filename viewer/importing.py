"""Finding DICOM files on disk for ``manage.py import_dicom``: folders, zips and DICOMDIR media."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydicom.fileset import FileSet


def iter_paths(path: Path) -> Iterator[Path]:
    """Every file to ingest below ``path``. A DICOMDIR is followed to the files it references."""
    if path.is_file():
        if path.name.upper() == "DICOMDIR":
            yield from dicomdir_files(path)
        else:
            yield path
        return
    for child in sorted(path.rglob("*")):
        if child.is_file() and child.name.upper() != "DICOMDIR" and not child.name.startswith("."):
            yield child


def dicomdir_files(dicomdir: Path) -> Iterator[Path]:
    """The files a DICOMDIR references (PS3.10 media), in directory order."""
    fileset = FileSet(dicomdir)
    for instance in fileset:
        yield Path(instance.path)


def iter_named_files(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    for root in paths:
        for path in iter_paths(root):
            yield str(path), path.read_bytes()
