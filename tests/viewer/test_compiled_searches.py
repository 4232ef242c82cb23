"""Searches compiled once per shape (crossread.compiled) and run with each request's values.

A plan swaps values into SQL compiled for others, so these tests look for the ways that could go
wrong: a value Django would have changed (a LIKE pattern's ``%``), a value written into the SQL, a
plan made for one member and run for another who may see less (a blinded reader, a reader once
images are quarantined), and rows that are not what the ORM gives.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from crossread.compiled import UNPLANNED, CompiledQueries, Plan, make_plan
from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import token_for
from tests.viewer.test_blinding import blinded  # noqa: F401  (a fixture)
from viewer import grants
from viewer.access import access_project
from viewer.dicomweb import qido
from viewer.ingest import ingest_bytes
from viewer.models import Instance, Membership, Study

pytestmark = pytest.mark.django_db


@pytest.fixture
def studies(team: dict[str, Any]) -> dict[str, Any]:
    for n, (patient_id, name) in enumerate([("P-1", "A_1"), ("P-2", "AB1"), ("P-3", "A%9"), ("P-1", "A_2")]):
        ds = ct_dataset(PatientID=patient_id, PatientName=name, StudyInstanceUID=f"1.2.826.0.1.3680043.10.77.{n}")
        assert ingest_bytes(team["project"], to_bytes(ds)).ok
    return team


def _by_patient(values: Any) -> Any:
    return Study.objects.filter(patient_id=values[0]).order_by("pk").values_list("patient_name", "metadata")


def test_a_plan_runs_its_shapes_sql_with_other_values_and_gives_the_orms_rows(studies):
    compiled, built = CompiledQueries(), []

    def build(values: Any) -> Any:
        built.append(values)
        return _by_patient(values)

    for patient_id in ("P-1", "P-2", "P-9", "P-1", "x' OR 1=1 --"):
        rows = compiled.rows(("by patient",), build, [patient_id])
        assert rows == list(_by_patient([patient_id]))
    assert len(built) == 1 and built[0][0] != "P-1"  # compiled once, from a stand-in
    rows = compiled.rows(("by patient",), build, ["P-1"])
    assert [name for name, _ in rows] == ["A_1", "A_2"]
    assert all(isinstance(metadata, dict) and metadata["00100020"]["Value"] == ["P-1"] for _, metadata in rows)


def test_a_value_django_changes_on_its_way_is_never_planned(studies):
    # istartswith escapes the LIKE wildcards of the value: a plan would pass "A_" as a pattern.
    def prefix(values: Any) -> Any:
        return Study.objects.filter(patient_name__istartswith=values[0]).order_by("pk").values_list("patient_name")

    assert make_plan(prefix, ["A_"]) is UNPLANNED
    compiled = CompiledQueries()
    assert compiled.rows(("prefix",), prefix, ["A_"]) == [("A_1",), ("A_2",)]
    assert compiled.rows(("prefix",), prefix, ["A%"]) == [("A%9",)]
    # Text given to a number column becomes a number: not the value given.
    number = make_plan(lambda v: Instance.objects.filter(rows=v[0]).values_list("pk"), ["512"])
    assert number is UNPLANNED
    # Values of other types than text and integers are not planned at all.
    assert make_plan(lambda v: Study.objects.filter(pk__in=v[0]).values_list("pk"), [[1, 2]]) is UNPLANNED


def test_integers_and_lists_of_values_are_parameters_of_the_plan(studies):
    ids = list(Study.objects.order_by("pk").values_list("pk", flat=True))

    def build(values: Any) -> Any:
        return Study.objects.filter(pk__in=values).order_by("pk").values_list("pk", "patient_id")

    plan = make_plan(build, ids[:2])
    assert isinstance(plan, Plan) and plan.slots.count(None) == 0 and len(plan.slots) == 2
    for pair in itertools.combinations(ids, 2):
        assert plan.rows(list(pair)) == list(build(list(pair)))


def test_plans_are_bounded_and_the_least_recently_used_go_first(studies):
    compiled = CompiledQueries(size=2)
    for shape in ("a", "b", "a", "c"):
        compiled.rows(shape, _by_patient, ["P-1"])
    assert set(compiled._plans) == {"a", "c"}


def _base_sql(access: Any) -> list[tuple[str, tuple[Any, ...]]]:
    querysets = (access.instances(), access.series(), access.studies(), access.studies(listed=False))
    return [qs.query.sql_with_params() for qs in querysets] + [("unlisted", tuple(sorted(access.unlisted())))]


def test_accesses_with_the_same_key_build_the_same_sql(blinded):  # noqa: F811
    """Every kind of member (organizer, reader, viewer, blinded readers, an adjudicator, with and
    without quarantined images): the gate's key must tell apart any two whose rows differ."""
    project = blinded["project"]
    users = [blinded[name] for name in ("organizer", "reader", "viewer", "adjudicator")]
    users += [m.user for m in Membership.objects.filter(project=project).exclude(user__in=users)]
    seen: dict[Any, list[tuple[str, tuple[Any, ...]]]] = {}
    for quarantined in (False, True):
        Instance.objects.filter(project=project).update(quarantined=False)
        if quarantined:
            Instance.objects.filter(pk=Instance.objects.filter(project=project).first().pk).update(quarantined=True)
        for user in users:
            access = access_project(user, project.slug)
            key, sql = access.rows_key(), _base_sql(access)
            assert seen.setdefault(key, sql) == sql, (user.username, quarantined)
    assert len(seen) >= 5  # organizer; reader and reader-b blinded apart; viewer; with quarantine or not


def _studies(client: Any, user: Any, query: str = "") -> set[str]:
    response = client.get(f"/projects/trial/dicomweb/studies{query}", HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    assert response.status_code in (200, 204), response.content
    return {item["0020000D"]["Value"][0] for item in response.json()} if response.content else set()


def test_a_search_planned_for_an_unblinded_member_shows_a_blinded_reader_none_of_the_hidden_studies(client, blinded):  # noqa: F811
    """The viewer (no reads: not blinded) and the reader (blinded) differ only in their blinding."""
    qido.COMPILED.clear()
    every = {ds.StudyInstanceUID for _, ds in blinded["studies"].values()}
    hidden = {blinded["studies"][name][1].StudyInstanceUID for name in ("baseline", "followup", "other")}
    for query in ("", "?PatientID=PID-7731", "?limit=2", "?StudyDate=20240101-20241231"):
        for member in ("organizer", "viewer"):
            assert _studies(client, blinded[member], query) & hidden
        assert not _studies(client, blinded["reader"], query) & hidden
    assert _studies(client, blinded["viewer"]) == every
    planned = [plan for plan in qido.COMPILED._plans.values() if plan is not UNPLANNED]
    assert len(planned) >= 8  # (the searches above were planned, not built each time)


def test_a_readers_planned_search_hides_an_image_quarantined_after_it_was_planned(client, studies):
    qido.COMPILED.clear()
    reader = studies["reader"]
    everyone = _studies(client, reader, "?PatientID=P-1")
    assert len(everyone) == 2
    held = Study.objects.get(study_instance_uid=sorted(everyone)[0])
    Instance.objects.filter(series__study=held).update(quarantined=True)  # (as a raw write: no signal)
    grants.GRANTS.clear()  # (what a raw write waits for: the memory's TTL)
    assert _studies(client, reader, "?PatientID=P-1") == everyone - {held.study_instance_uid}
    assert _studies(client, studies["organizer"], "?PatientID=P-1") == everyone


@pytest.mark.parametrize(("query", "names"), [
    ("PatientName=A_*", {"A_1", "A_2"}),
    ("PatientName=a%25*", {"A%9"}),
    ("PatientName=A*", {"A_1", "A_2", "AB1", "A%9"}),
    ("PatientID=P-*", {"A_1", "A_2", "AB1", "A%9"}),
    ("PatientID=P_1*", set()),
    ("PatientID=p-1*", set()),  # (other keys than names match case and all)
    ("PatientName=a?1", {"A_1", "AB1"}),
    ("PatientName=*_*", {"A_1", "A_2"}),
    ("PatientName=?%259", {"A%9"}),
    ("PatientID=P?2", {"AB1"}),
    ("PatientID=p?2", set()),
])
def test_wildcard_searches_are_planned_and_match_like_wildcards_as_themselves(client, studies, query, names):
    qido.COMPILED.clear()
    for _ in range(2):
        response = client.get(f"/projects/trial/dicomweb/studies?{query}",
                              HTTP_AUTHORIZATION=f"Token {token_for(studies['reader'])}")
        assert response.status_code in (200, 204), response.content
        found = {item["00100010"]["Value"][0]["Alphabetic"] for item in response.json()} if response.content else set()
        assert found == names
    assert all(isinstance(plan, Plan) for plan in qido.COMPILED._plans.values())
