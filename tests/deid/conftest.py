"""Shared helpers for the de-identification tests: corpus cases, cached by file and profile."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from demo import corpus
from viewer.deid import DeidResult, Profile, deidentify

SECRET = b"crossread-test-secret"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
CORPUS_FILES: list[Path] = list(corpus.iter_part10_files())


def corpus_id(path: Path) -> str:
    """Short test id: the path below site-packages."""
    return str(path).split("site-packages/")[-1]


@dataclass(frozen=True)
class Case:
    """One corpus file, its de-identified result and the bytes written for it."""

    path: Path
    original: Dataset
    result: DeidResult
    written: bytes


def write(ds: Dataset) -> bytes:
    """PS3.10 bytes of ``ds`` (strict); datasets with no SOP Class UID cannot be
    PS3.10 files, so those (a few broken pydicom test files) are written as a bare dataset."""
    buffer = io.BytesIO()
    strict = "SOPClassUID" in ds and "SOPInstanceUID" in ds
    ds.save_as(buffer, enforce_file_format=strict)
    return buffer.getvalue()


@cache
def read(path: Path) -> Dataset:
    """The original dataset, or a skip when pydicom cannot read the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path)
        except Exception as exc:  # any reader failure means "not a test input"
            pytest.skip(f"pydicom cannot read {corpus_id(path)}: {exc}")


@cache
def case(path: Path, options: frozenset[str] = frozenset()) -> Case:
    """De-identify ``path`` under the basic profile plus ``options`` (cached)."""
    original = read(path)
    meta = getattr(original, "file_meta", None)
    if meta is not None and meta.get("MediaStorageSOPClassUID") == MEDIA_STORAGE_DIRECTORY:
        pytest.skip("a DICOMDIR is refused (test_options covers that)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = deidentify(original, Profile(options), secret=SECRET)
        written = write(result.dataset)
    return Case(path, original, result, written)


def walk(ds: Dataset) -> Iterator[DataElement]:
    """Every data element of ``ds`` at every depth of nested sequences."""
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value or ():
                yield from walk(item)
