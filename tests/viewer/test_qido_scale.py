"""QIDO-RS at scale: searches an index can serve, and (on PostgreSQL) the plans that show it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories.dicom import ct_bytes
from tests.factories.models import token_for
from viewer.ingest import ingest_many

pytestmark = pytest.mark.django_db

NAMES = ["Bench^Patient00041", "bench^patient00042", "Bench^Patient0005", "Other^Patient00041", "Bench%Patient0004_"]


@pytest.fixture
def indexed(team: dict[str, Any]) -> dict[str, Any]:
    files = []
    for n, name in enumerate(NAMES):
        study = f"1.2.826.0.1.3680043.8.498.88.{n}"
        for k in range(3):
            files.append((f"{n}-{k}", ct_bytes(
                PatientName=name, PatientID=f"P{n:05d}", AccessionNumber=f"A{n:06d}", StudyDate=f"202403{n + 1:02d}",
                StudyInstanceUID=study, SeriesInstanceUID=f"{study}.1", Modality="MR" if n % 2 else "CT")))
    assert all(r.ok for r in ingest_many(team["project"], files))
    return {**team, "token": token_for(team["reader"])}


def _names(client: Any, indexed: dict[str, Any], **params: str) -> list[str]:
    response = client.get("/projects/trial/dicomweb/studies", params, HTTP_AUTHORIZATION=f"Token {indexed['token']}")
    assert response.status_code == 200, response.content
    return sorted(item["00100010"]["Value"][0]["Alphabetic"] for item in json.loads(response.content))


@pytest.mark.parametrize("pattern, expected", [
    ("Bench^Patient0004*", ["Bench^Patient00041", "bench^patient00042"]),  # names ignore case
    ("BENCH^*", ["Bench^Patient00041", "Bench^Patient0005", "bench^patient00042"]),
    ("Bench%*", ["Bench%Patient0004_"]),  # % and _ are the value's own characters, not wildcards
    ("Bench_Patient*", []),
    ("*", NAMES),
])
def test_a_prefix_wildcard_matches_as_the_standard_says(client, indexed, pattern: str, expected: list[str]) -> None:
    assert _names(client, indexed, PatientName=pattern) == sorted(expected)


def test_prefix_wildcards_on_text_keys_keep_their_case(client, indexed) -> None:
    assert len(_names(client, indexed, PatientID="P0000*")) == 5
    assert _names(client, indexed, PatientID="p0000*") == []
    assert _names(client, indexed, AccessionNumber="A00000*", PatientName="bench*") == sorted(NAMES[:3] + NAMES[4:])


#: The searches of bench/ingest.py, and the column an index condition must hold for each.
SEARCHES = {
    "PatientID": ({"PatientID": "P00042"}, "patient_id"),
    "PatientName prefix": ({"PatientName": "Bench^Patient0004*"}, "upper((patient_name)::text)"),
    "PatientName exact": ({"PatientName": "bench^patient00041"}, "upper((patient_name)::text)"),
    "StudyDate range": ({"StudyDate": "20240301-20240315"}, "study_date"),
    "AccessionNumber": ({"AccessionNumber": "A000500"}, "accession_number"),
    "ModalitiesInStudy": ({"ModalitiesInStudy": "MR", "limit": "100"}, "modality"),
    "first page": ({"limit": "100"}, "project_id"),
}


@pytest.fixture(scope="module")
def crowded(django_db_setup, django_db_blocker) -> Any:
    """A project of 3,000 synthetic studies (30,000 instances), analysed, and a reader's token: the
    planner chooses among indexes as it would in a large archive, not as for a table of a few rows."""
    from demo.scale import fill_index
    from tests.factories.models import create_project, create_user

    with django_db_blocker.unblock():
        reader = create_user("crowd-reader")
        project = create_project("crowd", members={reader: "reader"})
        fill_index(project, 30_000)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        yield token_for(reader)
        project.delete()
        reader.delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN of PostgreSQL's plans (run with DATABASE_URL)")
@pytest.mark.parametrize("label", list(SEARCHES))
def test_every_search_of_studies_reads_the_archive_through_indexes(crowded, client, label: str) -> None:
    """With sequential scans priced out, PostgreSQL plans no sequential scan of an archive table for
    any query a search runs, and an index condition (not a filter over rows read) holds the searched
    column: an index matches the search."""
    params, column = SEARCHES[label]
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/projects/crowd/dicomweb/studies", params, HTTP_AUTHORIZATION=f"Token {crowded}")
    assert response.status_code == 200 and json.loads(response.content), response.content
    archive = [q["sql"] for q in queries.captured_queries
               if any(t in q["sql"] for t in ('"viewer_study"', '"viewer_series"', '"viewer_instance"'))]
    assert archive, "the search ran no query on the archive's tables"
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            for sql in archive:
                cursor.execute(f"EXPLAIN {sql}")
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
        finally:
            cursor.execute("SET enable_seqscan = on")
    for sql, plan in zip(archive, plans, strict=True):
        assert "Seq Scan on viewer_" not in plan, f"{label}: {sql}\n{plan}"
    conditions = [line for plan in plans for line in plan.splitlines() if "Index Cond" in line or "Recheck Cond" in line]
    assert any(column in line for line in conditions), f"{label}: no index condition on {column}:\n" + "\n\n".join(plans)
