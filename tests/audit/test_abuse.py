"""The audit trail against abuse (issue 13): formulas in the CSV export, viewing reports of series that
do not exist, oversized or in a flood."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from audit.models import AuditEvent
from crossread import csvsafe
from tests.factories.models import create_user

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
