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


def _search(client: Any, indexed: dict[str, Any], **params: str) -> Any:
    response = client.get("/projects/trial/dicomweb/studies", params, HTTP_AUTHORIZATION=f"Token {indexed['token']}")
    assert response.status_code == 200, response.content
    return response


def test_beyond_a_full_page_matches_are_counted_up_to_a_bound(client, indexed, monkeypatch) -> None:
    """A broad search does not count every match of the archive for its Warning: beyond the page, at
    most ``COUNTED_BEYOND`` more, and then it says "at least"; under the bound it says how many."""
    from viewer.dicomweb import qido

    monkeypatch.setattr(qido, "COUNTED_BEYOND", 2)
    response = _search(client, indexed, limit="1")
    assert len(json.loads(response.content)) == 1
    assert "There are at least 2 additional results that can be requested." in response["Warning"]
    response = _search(client, indexed, limit="1", offset="1")
    assert "There are at least 2 additional results" in response["Warning"]
    response = _search(client, indexed, limit="2", offset="2")
    assert "There are 1 additional results" in response["Warning"]
    response = _search(client, indexed, limit="3", offset="1")
    assert "There are 1 additional results that can be requested." in response["Warning"]
    monkeypatch.setattr(qido, "COUNTED_BEYOND", 1000)
    response = _search(client, indexed, limit="2")
    assert "There are 3 additional results that can be requested." in response["Warning"]


def test_a_last_page_runs_no_count(client, indexed) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = _search(client, indexed, limit="10", includefield="StudyDescription")
    assert len(json.loads(response.content)) == 5 and not response.has_header("Warning")
    assert not [q["sql"] for q in queries.captured_queries if "COUNT(*)" in q["sql"] and '"viewer_study"' in q["sql"]]
    with CaptureQueriesContext(connection) as queries:
        response = _search(client, indexed, limit="4", offset="4")
    assert len(json.loads(response.content)) == 1 and not response.has_header("Warning")
    assert not [q["sql"] for q in queries.captured_queries if "COUNT(*)" in q["sql"] and '"viewer_study"' in q["sql"]]
    response = _search(client, indexed, limit="4", offset="9")  # beyond the end: nothing, nothing more
    assert json.loads(response.content) == [] and not response.has_header("Warning")


def test_study_results_read_the_stored_metadata_only_for_attributes_beyond_the_columns(client, indexed) -> None:
    """The worklist's page (its one extra column, StudyDescription, is a column of the study) never
    loads the studies' stored DICOM JSON; an attribute only that holds (Patient Comments, here
    written into it) is still answered when asked for, and ``includefield=all`` returns it."""
    from viewer.models import Study

    study = Study.objects.get(accession_number="A000001")
    study.metadata = {**study.metadata, "00104000": {"vr": "LT", "Value": ["From the metadata"]}}
    study.save(update_fields=["metadata"])
    with CaptureQueriesContext(connection) as queries:
        response = _search(client, indexed, AccessionNumber="A000001", includefield="StudyDescription")
    (result,) = json.loads(response.content)
    assert "00104000" not in result and result["00201208"]["Value"] == [3] and result["00201206"]["Value"] == [1]
    (select,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "viewer_study"."id"')]
    assert '"viewer_study"."metadata"' not in select
    for include in ("PatientComments", "all"):
        (result,) = json.loads(_search(client, indexed, AccessionNumber="A000001", includefield=include).content)
        assert result["00104000"]["Value"] == ["From the metadata"]
        assert result["00201208"]["Value"] == [3] and result["00080061"]["Value"] == ["MR"]


def test_a_page_of_studies_costs_the_same_queries_whatever_its_length(client, indexed) -> None:
    counts = []
    for limit in ("1", "5"):
        with CaptureQueriesContext(connection) as queries:
            _search(client, indexed, limit=limit)
        counts.append(len(queries.captured_queries))
    assert counts[0] >= counts[1]  # a full page counts, the last one does not; neither reads per row


def test_the_worklist_page_offers_each_modality_of_the_project_once(client, indexed) -> None:
    client.force_login(indexed["reader"])
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/projects/trial/").content.decode()
    assert page.count("<option>CT</option>") == 1 and page.count("<option>MR</option>") == 1
    assert page.index("<option>CT</option>") < page.index("<option>MR</option>") and "<option></option>" not in page
    (modalities,) = [q["sql"] for q in queries.captured_queries if '"viewer_series"."modality"' in q["sql"]]
    assert "DISTINCT" in modalities  # the database, not Python, makes them distinct


#: The searches of bench/ingest.py, and the column an index condition must hold for each.
SEARCHES = {
    "PatientID": ({"PatientID": "P00042"}, "patient_id"),
    "PatientName prefix": ({"PatientName": "Bench^Patient0004*"}, "upper((patient_name)::text)"),
    "PatientName exact": ({"PatientName": "bench^patient00041"}, "upper((patient_name)::text)"),
    "StudyDate range": ({"StudyDate": "20240301-20240315"}, "study_date"),
    "AccessionNumber": ({"AccessionNumber": "A000500"}, "accession_number"),
    "ModalitiesInStudy": ({"ModalitiesInStudy": "MR", "limit": "100"}, "modality"),
    "first page": ({"limit": "100"}, "project_id"),
    # static/viewer/worklist.js's request on opening the worklist
    "worklist first page": ({"limit": "1000", "includefield": "StudyDescription"}, "project_id"),
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
    _assert_indexed(label, queries, column)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN of PostgreSQL's plans (run with DATABASE_URL)")
def test_the_worklist_page_reads_the_archive_through_indexes(crowded, client) -> None:
    """The worklist's page lists the project's modalities (its filter) from the (project, modality)
    index, not by reading every series of the archive; its first page of results is the search
    "worklist first page" above."""
    from rest_framework.authtoken.models import Token

    client.force_login(Token.objects.get(key=crowded).user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/projects/crowd/")
    assert response.status_code == 200 and b"<option>MR</option>" in response.content, response.content[:2000]
    _assert_indexed("worklist page", queries, "project_id")


#: Searches below a study or series of the URL (and a WADO-RS metadata retrieve, which reads the same
#: rows): the URL's UIDs are looked up through the (project, UID) unique indexes.
SCOPED = {
    "a study's series": ("studies/{study}/series", "study_instance_uid"),
    "a study's instances": ("studies/{study}/instances", "study_instance_uid"),
    "a series' instances": ("studies/{study}/series/{series}/instances", "series_instance_uid"),
    "an instance by SOPInstanceUID": ("instances?SOPInstanceUID={sop}", "sop_instance_uid"),
    "a series' metadata": ("studies/{study}/series/{series}/metadata", "series_instance_uid"),
}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN of PostgreSQL's plans (run with DATABASE_URL)")
@pytest.mark.parametrize("label", list(SCOPED))
def test_searches_within_a_study_or_series_find_it_through_its_index(crowded, client, label: str) -> None:
    auth = {"HTTP_AUTHORIZATION": f"Token {crowded}"}
    base = "/projects/crowd/dicomweb"
    (some,) = json.loads(client.get(f"{base}/instances", {"limit": "1", "offset": "15000"}, **auth).content)
    uids = {"study": some["0020000D"]["Value"][0], "series": some["0020000E"]["Value"][0],
            "sop": some["00080018"]["Value"][0]}
    path, column = SCOPED[label]
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{base}/{path.format(**uids)}", **auth)
    assert response.status_code == 200 and json.loads(response.content), response.content[:500]
    # (an Index Cond on the UID alone is a walk through the whole index: the project must lead it)
    _assert_indexed(label, queries, column, with_project=True)


def _assert_indexed(label: str, queries: CaptureQueriesContext, column: str, *, with_project: bool = False) -> None:
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
    if with_project:
        walks = [line for line in conditions if column in line and "project_id" not in line]
        walks += [line for plan in plans for line in plan.splitlines() if "Filter:" in line and column in line]
        assert not walks, f"{label}: {column} looked up without its project:\n" + "\n\n".join(plans)
