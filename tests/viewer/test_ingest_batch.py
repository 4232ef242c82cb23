"""Indexing a request's files in batches (viewer.ingest.ingest_many): a few queries per batch, and each
file still succeeds or fails on its own, in input order, as when they came one by one."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.factories.dicom import ct_bytes
from viewer import ingest
from viewer.ingest import Outcome, ingest_many
from viewer.models import Instance, Series, Study
from viewer.storage import object_store, sha256_hex

STUDY, SERIES = "1.2.826.0.1.3680043.8.498.77.1", "1.2.826.0.1.3680043.8.498.77.2"


def _files(count: int, **overrides: Any) -> list[tuple[str, bytes]]:
    return [(f"f{n}", ct_bytes(StudyInstanceUID=STUDY, SeriesInstanceUID=SERIES, InstanceNumber=n + 1, **overrides))
            for n in range(count)]


def test_a_series_is_indexed_in_a_few_queries_whatever_its_length(team, django_assert_max_num_queries) -> None:
    files = _files(60)
    with django_assert_max_num_queries(12):  # one file at a time took 6 or more queries per file
        results = ingest_many(team["project"], files)
    assert [r.outcome for r in results] == [Outcome.STORED] * 60
    assert Instance.objects.filter(series__series_instance_uid=SERIES).count() == 60
    assert Study.objects.count() == 1 and Series.objects.count() == 1
    stored = Instance.objects.order_by("instance_number").first()
    assert object_store().read(team["project"].pk, stored.sha256) == files[0][1]


def test_each_file_of_a_batch_gets_its_own_outcome_in_input_order(team, monkeypatch) -> None:
    """The same instance twice (once the same bytes, once other bytes), a broken file, an instance whose
    series is stored under another study, and good files around them, in batches smaller than the request."""
    monkeypatch.setattr(ingest, "INDEX_BATCH", 3)
    good = _files(4)
    changed = ct_bytes(StudyInstanceUID=STUDY, SeriesInstanceUID=SERIES, InstanceNumber=99,
                       SOPInstanceUID=_sop(good[0][1]))
    wrong_study = ct_bytes(StudyInstanceUID="1.2.826.0.1.3680043.8.498.77.9", SeriesInstanceUID=SERIES)
    files = [good[0], good[0], ("broken", b"DICM" * 40), good[1], ("changed", changed), ("wrong", wrong_study),
             good[2], good[3]]
    results = ingest_many(team["project"], files)
    assert [r.outcome for r in results] == [Outcome.STORED, Outcome.ALREADY_STORED, Outcome.FAILED, Outcome.STORED,
                                            Outcome.FAILED, Outcome.FAILED, Outcome.STORED, Outcome.STORED]
    assert [r.name for r in results] == [name for name, _ in files]
    assert "different content" in results[4].reason and "another study" in results[5].reason
    assert Instance.objects.count() == 4
    # Nothing of the refused files is left in the object store.
    keys = set(object_store().iter_keys(team["project"].pk))
    assert keys == {sha256_hex(data) for _, data in good}
    assert sha256_hex(changed) not in keys and sha256_hex(wrong_study) not in keys


def test_a_batch_that_meets_a_concurrent_insert_says_which_file_was_already_there(team, monkeypatch) -> None:
    """Another request stores one of the batch's instances between the batch's check and its insert:
    the batch is indexed again file by file, and only that file is reported as stored before."""
    files = _files(3)
    raced = []
    wait_written = ingest._wait_written

    def racing(project, batch):
        """Waits for the batch's objects as the real one does (after the batch's check); meanwhile the
        other request commits."""
        if not raced:
            raced.append(True)
            assert ingest.ingest_bytes(team["project"], files[1][1], name="other").outcome == Outcome.STORED
        return wait_written(project, batch)

    monkeypatch.setattr(ingest, "_wait_written", racing)
    results = ingest_many(team["project"], files)
    assert [r.outcome for r in results] == [Outcome.STORED, Outcome.ALREADY_STORED, Outcome.STORED]
    assert Instance.objects.count() == 3


def _sop(data: bytes) -> str:
    import io

    import pydicom

    return str(pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID)


def test_an_ingest_stopped_by_an_exception_removes_the_objects_of_its_unindexed_batch(team) -> None:
    """The objects are written while the next files are parsed: when reading the files fails midway,
    those of the batch not yet indexed are removed (nothing half-stored stays behind)."""

    def files():
        yield "a", ct_bytes()
        yield "b", ct_bytes()
        raise OSError("the upload went away")

    with pytest.raises(OSError):
        ingest_many(team["project"], files())
    store = object_store()
    deadline = time.monotonic() + 10  # were a write still under way, it would show as a temporary file
    while store.temporary_files() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not Instance.objects.exists()
    assert store.iter_keys(team["project"].pk) == [] and store.temporary_files() == []
