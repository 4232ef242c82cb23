"""Trials against abuse (issue 13): hostile labels in the dashboard's SVG, formulas in the CSV export,
and an audit entry for every legally meaningful act of a trial."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from audit.models import AuditEvent
from trials import plots, services
from trials.models import Subject

pytestmark = pytest.mark.django_db

API = "/api/trials/trial/"
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = ['x" onmouseover="alert(1)', "<script>alert(1)</script>", "a'b&c>\x01"]


def _sign_both(trial: Any, *, disagree: bool) -> tuple[Any, Any]:
    first = trial.do_read(trial.reader1)
    second = trial.do_read(trial.reader2, new_lesion=not disagree)
    for user, read in ((trial.reader1, first), (trial.reader2, second)):
        assert trial.client(user).post(f"{API}reads/{read.pk}/sign/").status_code == 200
    first.refresh_from_db()
    second.refresh_from_db()
    return first, second


# --------------------------------------------------------------------------------- SVG injection


def _labels_only_as_text(svg: str, label: str) -> None:
    """The SVG parses as XML; the label is an attribute value or text, never markup or an attribute name."""
    root = ET.fromstring(svg)
    elements = list(root.iter())
    assert {e.tag.removeprefix(SVG) for e in elements} <= {"svg", "line", "text", "rect", "title", "polyline", "circle"}
    allowed = {"xmlns", "class", "viewBox", "role", "aria-label", "data-subject", "x", "y", "x1", "x2", "y1", "y2",
               "width", "height", "fill", "stroke", "stroke-width", "stroke-dasharray", "font-size", "text-anchor",
               "points", "cx", "cy", "r"}
    assert {name for e in elements for name in e.attrib} <= allowed
    shown = label.replace("\x01", "\ufffd")
    assert {e.get("data-subject") for e in elements if e.get("data-subject")} == {shown}
    assert any(shown in (e.text or "") for e in elements if e.tag == SVG + "title")


def test_plots_keep_hostile_labels_as_text() -> None:
    for label in HOSTILE:
        _labels_only_as_text(plots.waterfall_svg([plots.WaterfallBar(label, -27.7, "PD")]), label)
        _labels_only_as_text(plots.spider_svg([plots.SpiderLine(label, [(0, 0.0), (56, -27.7)], "PD")]), label)


def test_the_dashboard_page_draws_a_hostile_label_as_text(trial: Any) -> None:
    label = HOSTILE[0]
    Subject.objects.filter(trial__project=trial.project).update(label=label)
    _sign_both(trial, disagree=False)
    client = trial.client(trial.organizer)
    client.force_login(trial.organizer)
    page = client.get("/projects/trial/trial/dashboard/")
    assert page.status_code == 200
    svgs = re.findall(r"<svg .*?</svg>", page.content.decode(), flags=re.DOTALL)
    assert len(svgs) == 2
    for svg in svgs:
        _labels_only_as_text(svg, label)


def test_names_with_control_or_format_characters_are_refused(trial: Any, team: dict[str, Any]) -> None:
    organizer, reader = trial.client(trial.organizer), trial.client(trial.reader1)
    read = trial.read_of(trial.reader1)
    for label in ("S\x01", "S002\u202egnp.exe", "S\u200b002", "S\n002"):
        response = organizer.post(f"{API}subjects/", {"label": label, "patient_id": "PHANTOM-001"}, format="json")
        assert response.status_code == 400 and "printable" in response.json()["detail"], label
    response = reader.post(f"{API}reads/{read.pk}/lesions/", {"role": "target", "organ": "liv\x00er"}, format="json")
    assert response.status_code == 400
    assert reader.post(f"{API}reads/{read.pk}/lesions/", {"role": "target", "organ": "left\tlung"},
                       format="json").status_code == 201  # whitespace is still folded to one space
    assert read.lesions.get().organ == "left lung"


# --------------------------------------------------------------------------------- CSV injection


def test_the_csv_export_neutralises_formulas_in_text_and_keeps_numbers(trial: Any) -> None:
    first, _ = _sign_both(trial, disagree=True)
    trial_row = services.access_trial(trial.organizer, "trial").trial
    type(trial_row).objects.filter(pk=trial_row.pk).update(name="=HYPERLINK(\"http://evil\",\"x\")")
    Subject.objects.filter(trial=trial_row).update(label="@SUM(A1:A9)")
    first.lesions.filter(identifier="T1").update(organ="+cmd|' /C calc'!A0")
    services.adjudicate(trial.access(trial.adjudicator), first.subject, read=first.pk, reason="-2+3\tnew lesion")
    response = trial.client(trial.organizer).get(f"{API}export.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    t1 = next(r for r in rows if r["reader"] == "reader" and r["lesion"] == "T1" and r["timepoint"] == "follow-up 1")
    assert t1["trial"] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert t1["subject"] == "'@SUM(A1:A9)"
    assert t1["organ"] == "'+cmd|' /C calc'!A0"
    assert t1["adjudication_reason"] == "'-2+3\tnew lesion"
    # numbers the server computed stay numbers, negative ones too
    assert (t1["long_axis_mm"], t1["sum_mm"], t1["change_from_baseline_pct"], t1["day"]) == ("21.0", "47.0", "-27.7", "56")
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), (column, value)
            assert not value.startswith("-") or re.fullmatch(r"-\d+(\.\d+)?", value), (column, value)


# --------------------------------------------------------------------------------- the trial's acts, audited


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


@pytest.mark.django_db(transaction=True)  # audit entries are written when the act's transaction commits
def test_every_act_of_a_trial_leaves_exactly_one_audit_entry(trial: Any) -> None:
    trial_row = trial.access(trial.organizer).trial
    subject = Subject.objects.get(trial=trial_row)
    # the fixture created the trial, added the subject and assigned the readers as the organizer
    (created,) = _events("trial.created")
    assert (created.actor_name, created.project, created.object_type, created.object_id) == \
        ("org", "trial", "trial", str(trial_row.pk))
    assert created.detail["adjudicators"] == ["adjudicator"] and created.detail["double_read"] is True
    (added,) = _events("trial.subject_added")
    assert (added.actor_name, added.project, added.object_type, added.object_id) == \
        ("org", "trial", "subject", str(subject.pk))
    assert added.detail == {"label": "S001", "timepoints": 2}  # the label, never the PatientID
    (assigned,) = _events("trial.readers_assigned")
    assert (assigned.actor_name, assigned.project, assigned.object_id) == ("org", "trial", str(trial_row.pk))
    assert assigned.detail["readers"] == ["reader", "reader2"] and len(assigned.detail["reads"]) == 2

    first, second = _sign_both(trial, disagree=True)
    signed = _events("trial.read_signed")
    assert [(e.actor_name, e.project, e.object_type, e.object_id) for e in signed] == [
        ("reader", "trial", "read", str(first.pk)), ("reader2", "trial", "read", str(second.pk))]
    assert [e.detail["locked"] for e in signed] == [False, False]  # they disagree: not final yet
    assert all(e.source_ip == "127.0.0.1" for e in signed)
    assert trial.client(trial.reader1).post(f"{API}reads/{first.pk}/sign/").status_code == 409  # refused: no entry
    assert len(_events("trial.read_signed")) == 2

    adjudicator = trial.client(trial.adjudicator)
    url = f"{API}subjects/{subject.pk}/adjudication/"
    assert adjudicator.post(url, {"read": first.pk, "reason": "N1 is a new lesion"}, format="json").status_code == 201
    assert adjudicator.post(url, {"read": second.pk, "reason": "again"}, format="json").status_code == 409
    (decided,) = _events("trial.adjudicated")
    assert (decided.actor_name, decided.project, decided.object_type, decided.object_id) == \
        ("adjudicator", "trial", "subject", str(subject.pk))
    assert decided.detail["chosen_read"] == first.pk and decided.detail["reason"] == "N1 is a new lesion"
    assert sorted(decided.detail["reads"]) == sorted([first.pk, second.pk])


@pytest.mark.django_db(transaction=True)
def test_creating_a_trial_over_rest_is_audited_once(client: Any, team: dict[str, Any]) -> None:
    client.force_login(team["organizer"])
    body = {"name": "Phase II", "double_read": False, "adjudicators": []}
    assert client.post("/api/trials/trial/", body, content_type="application/json").status_code == 201
    assert client.post("/api/trials/trial/", body, content_type="application/json").status_code == 409
    client.force_login(team["reader"])
    assert client.post("/api/trials/trial/", body, content_type="application/json").status_code == 403
    (created,) = _events("trial.created")
    assert (created.actor_name, created.project, created.detail["name"], created.detail["double_read"]) == \
        ("org", "trial", "Phase II", False)


# --------------------------------------------------------------------------------- the pages' words


def _page_text(client: Any, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_trial_pages_show_states_in_words_and_no_placeholder_units(trial: Any) -> None:
    first, _ = _sign_both(trial, disagree=True)
    client = trial.client(trial.organizer)
    client.force_login(trial.organizer)
    worklist = _page_text(client, "/projects/trial/trial/")
    dashboard = _page_text(client, "/projects/trial/trial/dashboard/")
    adjudication = _page_text(client, f"/projects/trial/trial/subjects/{first.subject_id}/adjudicate/")
    for text in (worklist, dashboard, adjudication):
        assert "needs adjudication" in text
        assert "needsadjudication" not in text and "needs_adjudication" not in text
        assert not re.search(r"\b(None|null)\b", text)
    assert "– %" not in adjudication and "– mm" not in adjudication  # the baseline has no change from nadir


def test_a_new_member_is_offered_the_lowest_role_first(client: Any, team: dict[str, Any]) -> None:
    client.force_login(team["organizer"])
    page = client.get("/projects/trial/members/").content.decode()
    new_role = re.search(r'<select id="new-role".*?</select>', page, flags=re.DOTALL).group(0)
    assert re.findall(r'<option value="(\w+)"[^>]*selected', new_role) == ["viewer"]
