"""DICOM JSON written from the raw bytes (viewer.dicomjson) is pydicom's, on every file of the corpus.

:func:`viewer.dicomfile.describe` reads a file in place (its long binary values left in the bytes)
and writes the plain elements' JSON itself; the reference here is what the archive did before:
the whole file read by pydicom, every element converted, ``Dataset.to_json_dict``. Descriptions and
refusals must be the same, file for file (no database).
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from demo import corpus
from tests.deid.conftest import corpus_id
from tests.factories.dicom import ct_bytes, ct_dataset, to_bytes
from viewer import dicomfile, dicomjson

CORPUS = [*corpus.iter_part10_files(), *corpus.iter_bare_files()]


def reference(data: bytes) -> dicomfile.Described | dicomfile.Refusal:
    """The description as pydicom alone makes it (the archive's before :mod:`viewer.dicomjson`)."""
    try:
        part = dicomfile.read_dicom(data)  # read whole, every element converted by its check
    except dicomfile.InvalidDicom as exc:
        return dicomfile.Refusal(exc.reason, exc.failure_code, dict(exc.uids))
    attrs = dicomfile.index_attributes(part.dataset)
    return dicomfile.Described(attrs, *_pydicom_json(part.dataset), part.data if part.rewritten else None)


def _pydicom_json(ds: Dataset) -> tuple[dict[str, Any] | None, str]:
    def bulk_uri(elem: pydicom.DataElement) -> str:
        return f"{dicomfile.BULK_DATA_PLACEHOLDER}{elem.tag:08X}"

    try:
        metadata = ds.to_json_dict(bulk_data_threshold=dicomfile.BULK_DATA_THRESHOLD, bulk_data_element_handler=bulk_uri)
    except Exception as exc:
        return None, type(exc).__name__
    for tag in dicomfile.PIXEL_DATA_TAGS:
        if tag in ds:
            metadata[f"{tag:08X}"] = {"vr": ds[tag].VR, "BulkDataURI": f"{dicomfile.BULK_DATA_PLACEHOLDER}{tag:08X}"}
    return metadata, ""


def test_every_corpus_file_is_described_as_pydicom_describes_it():
    assert len(CORPUS) > 100
    different, described = [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in CORPUS:
            data = path.read_bytes()
            ours, theirs = dicomfile.describe(data), reference(data)
            described += isinstance(ours, dicomfile.Described)
            if ours != theirs:
                different.append((corpus_id(path), _difference(ours, theirs)))
    assert not different, different[:5]
    assert described > 100


def _difference(ours: Any, theirs: Any) -> str:
    if type(ours) is not type(theirs) or isinstance(ours, dicomfile.Refusal):
        return f"{ours!r} != {theirs!r}"[:400]
    if ours.metadata and theirs.metadata:
        keys = [k for k in {*ours.metadata, *theirs.metadata} if ours.metadata.get(k) != theirs.metadata.get(k)]
        return "; ".join(f"{k}: {ours.metadata.get(k)!r} != {theirs.metadata.get(k)!r}"[:200] for k in keys[:3])
    return f"{ours!r}"[:200] + " != " + f"{theirs!r}"[:200]


@pytest.mark.parametrize(
    ("vr", "value", "expected"),
    [
        ("CS", b"ORIGINAL\\PRIMARY\\AXIAL ", ["ORIGINAL", "PRIMARY", "AXIAL"]),
        ("DS", b" 0.5\\-1.25e2 ", [0.5, -125.0]),
        ("IS", b"+12 ", [12]),
        ("PN", b"Doe^Jane ", [{"Alphabetic": "Doe^Jane"}]),
        ("LO", b"first\\second ", ["first", "second"]),
        ("LT", b"one\\value ", ["one\\value"]),
        ("AE", b" STORESCU  ", ["STORESCU"]),
        ("US", b"\x01\x00\x02\x00", [1, 2]),
        ("FD", b"\x00\x00\x00\x00\x00\x00\xf0\x3f", [1.0]),
    ],
)
def test_plain_values_are_written_from_their_bytes(vr, value, expected):
    assert dicomjson.element_json(vr, value, len(value), "latin_1", 3072, lambda: "bulk") == {"vr": vr, "Value": expected}


@pytest.mark.parametrize(
    ("vr", "value"),
    [
        ("DS", b"1,5"),  # not a decimal string: pydicom decides (and may refuse the file)
        ("IS", b"1.5"),
        ("DS", b"NaN "),  # not a number JSON can hold
        ("FL", b"\x00\x00\xc0\x7f"),
        ("US", b"\x01\x00\x02"),  # not a whole number of values
        ("PN", b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B"),  # code extensions, ideographic group
        ("SQ", b""),
        ("UN", b"\x00\x01"),
    ],
)
def test_other_values_are_left_to_pydicom(vr, value):
    assert dicomjson.element_json(vr, value, len(value), "latin_1", 3072, lambda: "bulk") is None


def test_text_in_another_character_set_is_left_to_pydicom():
    assert dicomjson.character_set(b"ISO_IR 100") == "latin_1"
    assert dicomjson.character_set(b"ISO_IR 192") == "utf_8"
    assert dicomjson.character_set(b"ISO 2022 IR 87") is None
    assert dicomjson.element_json("LO", b"x", 1, None, 3072, lambda: "bulk") is None
    # and a file in one is described as pydicom describes it
    data = to_bytes(ct_dataset(SpecificCharacterSet="ISO_IR 144", PatientName="Люкceмбypг"))
    assert dicomfile.describe(data) == reference(data)


def test_a_file_is_read_in_place_its_pixel_data_not_copied():
    data = ct_bytes(Rows=64, Columns=64, PixelData=bytes(64 * 64 * 2))
    part = dicomfile.read_dicom(data, in_place=True)
    pixels = part.dataset.get_item(0x7FE00010, keep_deferred=True)
    assert pixels.value is None and pixels.value_tell + pixels.length == len(data)
    described = dicomfile.describe(data)
    assert described == reference(data)
    assert described.metadata["7FE00010"] == {"vr": "OW", "BulkDataURI": "bulkdata/7FE00010"}


def test_a_value_cut_short_in_a_file_read_in_place_is_refused():
    cut = ct_bytes(Rows=64, Columns=64, PixelData=bytes(64 * 64 * 2))[:-300]
    refused = dicomfile.describe(cut)
    assert isinstance(refused, dicomfile.Refusal) and "truncated" in refused.reason
    assert refused == reference(cut)
