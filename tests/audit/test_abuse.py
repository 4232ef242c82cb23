"""The audit trail against abuse (issue 13): formulas in the CSV export, viewing reports of series that
do not exist, oversized or in a flood."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.cache import cache

from audit.models import AuditEvent
from crossread import csvsafe
from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import create_user, token_for
from tests.viewer.dicomweb_helpers import stow
from viewer.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)


# --------------------------------------------------------------------------------- CSV injection


def test_csvsafe_prefixes_formula_text_and_keeps_numbers() -> None:
    out = io.StringIO()
    csvsafe.writer(out).writerows([
        ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "plain", "a=b", "", -27.7, 3, None],
    ])
    out.seek(0)
    assert next(csv.reader(out)) == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "plain", "a=b", "", "-27.7", "3", ""]
    out = io.StringIO()
    writer = csvsafe.DictWriter(out, fieldnames=["a", "b"])
    writer.writeheader()
    writer.writerows([{"a": "=cmd|' /C calc'!A0", "b": -1.5}])
    out.seek(0)
    assert list(csv.DictReader(out)) == [{"a": "'=cmd|' /C calc'!A0", "b": "-1.5"}]


def test_the_audit_csv_neutralises_user_text(client: Any, team: dict[str, Any]) -> None:
    # Django's username rules allow + - @: a member called "-2+3@x" is a formula to a spreadsheet
    member = create_user("-2+3@x")
    client.force_login(team["organizer"])
    added = client.post("/api/projects/trial/members/", {"username": "-2+3@x", "role": "organizer"},
                        content_type="application/json")
    assert added.status_code == 201, added.content
    client.force_login(member)
    response = client.get("/api/projects/trial/audit/", {"export": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    changed = next(r for r in rows if r["action"] == "membership.changed")
    assert changed["object_id"] == "'-2+3@x" and changed["actor_name"] == "org"
    exported = next(r for r in rows if r["action"] == "audit.exported")
    assert exported["actor_name"] == "'-2+3@x"
    assert all(r["id"].isdigit() for r in rows)
    assert AuditEvent.objects.filter(actor_name="-2+3@x").exists()  # stored as typed; only the CSV changes it


# --------------------------------------------------------------------------------- viewing reports

VIEWS = "/api/projects/trial/audit/views/"


@pytest.fixture
def studies(client: Any, team: dict[str, Any]) -> dict[str, Any]:
    """A study in the project, and one in another project the reader is not a member of."""
    cache.clear()  # the viewing budget lives in the cache
    ours, theirs = ct_dataset(), ct_dataset()
    assert stow(client, "trial", [to_bytes(ours)], token_for(team["reader"])).status_code == 200
    assert stow(client, "other", [to_bytes(theirs)], token_for(team["outsider"])).status_code == 200
    client.force_login(team["reader"])
    return {"ours": ours, "theirs": theirs}


def _viewed() -> int:
    return AuditEvent.objects.filter(action__in=["series.viewed", "study.opened"]).count()


def _view(ds: Any, **extra: Any) -> dict[str, Any]:
    return {"study": ds.StudyInstanceUID, "series": ds.SeriesInstanceUID, "seconds": 1.5, **extra}


def _post(client: Any, views: list[dict[str, Any]]) -> Any:
    return client.post(VIEWS, {"views": views}, content_type="application/json")


def test_a_report_of_series_the_user_cannot_see_is_refused_whole(client: Any, team: dict[str, Any],
                                                                 studies: dict[str, Any]) -> None:
    ours, theirs = studies["ours"], studies["theirs"]
    fakes = [
        {"study": ours.StudyInstanceUID, "series": "1.2.3.4.5.6.7.8.9"},  # a made-up series of a real study
        {"study": "1.2.3.4.5.6.7.8.9", "opened": True},  # a made-up study
        _view(theirs),  # a real series of a project the reader is not in
        {"study": ours.StudyInstanceUID, "series": theirs.SeriesInstanceUID},  # a real series, wrong study
        {"study": ours.StudyInstanceUID, "series": "=HYPERLINK(\"http://evil\")"},
    ]
    for fake in fakes:
        response = _post(client, [_view(ours), fake])
        assert response.status_code == 404, (fake, response.content)
        assert response.json()["code"] == "not_found"
    assert _viewed() == 0
    assert AuditEvent.objects.filter(action="access.denied", actor_name="reader").count() == len(fakes)
    assert _post(client, [_view(ours), {"study": ours.StudyInstanceUID, "opened": True}]).status_code == 201
    assert _viewed() == 2


def test_quarantined_series_are_seen_by_organizers_only(client: Any, team: dict[str, Any],
                                                        studies: dict[str, Any]) -> None:
    Instance.objects.filter(series__series_instance_uid=studies["ours"].SeriesInstanceUID).update(quarantined=True)
    assert _post(client, [_view(studies["ours"])]).status_code == 404
    client.force_login(team["organizer"])
    assert _post(client, [_view(studies["ours"])]).status_code == 201
    assert _viewed() == 1


def test_reports_are_bounded_in_size_and_shape(client: Any, studies: dict[str, Any]) -> None:
    ours = studies["ours"]
    response = _post(client, [_view(ours)] * 101)
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    response = _post(client, [_view(ours, first_slice=9, last_slice=2)])
    assert response.status_code == 400
    assert _viewed() == 0


def test_a_flood_of_viewing_reports_is_rate_limited(client: Any, team: dict[str, Any],
                                                    studies: dict[str, Any]) -> None:
    ours, statuses = studies["ours"], []
    for _ in range(5):
        statuses.append(_post(client, [_view(ours)] * 100).status_code)
    assert statuses == [201, 201, 429, 429, 429]
    refused = _post(client, [_view(ours)])
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    assert refused.json()["code"] == "rate_limited" and refused.json()["detail"]
    assert _viewed() == 200  # the budget, not one more
    client.force_login(team["viewer"])  # the budget is per user
    assert _post(client, [_view(ours)]).status_code == 201
