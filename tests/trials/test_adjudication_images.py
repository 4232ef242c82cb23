"""The adjudication on the images: both signed reads' marks for a subject (``GET …/subjects/<id>/adjudication/marks/``,
``trials.services.signing.adjudication_marks``), the time points compared (``adjudication_view``), the page
(``/projects/<slug>/trial/subjects/<id>/adjudicate/images/``), and a read opened in the viewer by an adjudicator
(read-only, the read's marks). Who reaches them for every role: tests/test_permission_matrix.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from trials.models import ReadMark

pytestmark = pytest.mark.django_db

API = "/api/trials/trial/"
PAGE = "/projects/trial/trial/"


def _sign(trial: Any, user: Any, read: Any) -> None:
    assert trial.client(user).post(f"{API}reads/{read.pk}/sign/").status_code == 200


def _marks(trial: Any, user: Any, subject: int) -> Any:
    return trial.client(user).get(f"{API}subjects/{subject}/adjudication/marks/")


def _boot(html: str) -> dict[str, Any]:
    found = re.search(r'<script id="boot" type="application/json">(.*?)</script>', html, re.S)
    assert found, "no start-up data"
    return json.loads(found.group(1))


def test_both_signed_reads_marks_each_with_its_side(trial: Any) -> None:
    first = trial.do_read(trial.reader1)  # sees N1: PD at follow-up
    second = trial.do_read(trial.reader2, new_lesion=False)  # SD
    _sign(trial, trial.reader1, first)
    _sign(trial, trial.reader2, second)
    response = _marks(trial, trial.adjudicator, first.subject_id)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["reads"] == [{"id": first.pk, "side": "A"}, {"id": second.pk, "side": "B"}]
    marks = body["annotations"]
    by_side = {side: [m for m in marks if m["side"] == side] for side in ("A", "B")}
    assert {m["read"] for m in by_side["A"]} == {first.pk} and {m["read"] for m in by_side["B"]} == {second.pk}
    # three targets at two time points each, and N1 for reader A only; each named by its lesion
    assert sorted(m["label"] for m in by_side["A"]) == ["N1", "T1", "T1", "T2", "T2", "T3", "T3"]
    assert sorted(m["label"] for m in by_side["B"]) == ["T1", "T1", "T2", "T2", "T3", "T3"]
    assert all(m["lesion"] and m["timepoint"] and m["instance"] and m["points"] for m in marks)
    assert len(marks) == ReadMark.objects.filter(read__subject=first.subject).count()
    # the organizer sees the same; readers and viewers do not reach the subject
    assert _marks(trial, trial.organizer, first.subject_id).json() == body
    for user in (trial.reader1, trial.reader2, trial.viewer):
        refused = _marks(trial, user, first.subject_id)
        assert refused.status_code == 404 and refused.json()["code"] and refused.json()["detail"]
    assert _marks(trial, trial.adjudicator, 999999).status_code == 404


def test_a_draft_reads_marks_are_not_shown(trial: Any) -> None:
    first = trial.do_read(trial.reader1)
    trial.do_read(trial.reader2, new_lesion=False)  # still a draft
    _sign(trial, trial.reader1, first)
    for user in (trial.adjudicator, trial.organizer):
        body = _marks(trial, user, first.subject_id).json()
        assert body["reads"] == [{"id": first.pk, "side": "A"}]
        assert {m["read"] for m in body["annotations"]} == {first.pk}


def test_the_view_compares_the_overall_responses_per_time_point(trial: Any) -> None:
    first = trial.do_read(trial.reader1)
    second = trial.do_read(trial.reader2, new_lesion=False)
    _sign(trial, trial.reader1, first)
    view = trial.client(trial.adjudicator).get(f"{API}subjects/{first.subject_id}/adjudication/").json()
    assert [tp["agree"] for tp in view["timepoints"]] == [None, None]  # one read signed: nothing to compare yet
    _sign(trial, trial.reader2, second)
    view = trial.client(trial.adjudicator).get(f"{API}subjects/{first.subject_id}/adjudication/").json()
    baseline, follow = view["timepoints"]
    assert (baseline["label"], baseline["agree"]) == ("baseline", None)
    assert (follow["label"], follow["responses"], follow["agree"]) == ("follow-up 1", ["PD", "SD"], False)
    assert [(r["id"], r["side"]) for r in view["reads"]] == [(first.pk, "A"), (second.pk, "B")]


def test_the_page_opens_at_the_disputed_time_point_read_only(trial: Any) -> None:
    first = trial.do_read(trial.reader1)
    second = trial.do_read(trial.reader2, new_lesion=False)
    _sign(trial, trial.reader1, first)
    _sign(trial, trial.reader2, second)
    base, follow = trial.timepoints(first)
    client = Client()
    client.force_login(trial.adjudicator)
    url = f"{PAGE}subjects/{first.subject_id}/adjudicate/images/"
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    # the panel's module runs before the viewer's (it sets the annotations' transport first)
    assert html.index('src="/static/trials/adjudicate_panel.js"') < html.index('src="/static/viewer/viewer.js"')
    boot = _boot(html)
    assert boot["canWrite"] is False
    assert boot["adjudication"]["current"] == follow.pk  # where the reads differ
    assert boot["adjudication"]["marks"] == f"{API}subjects/{first.subject_id}/adjudication/marks/"
    assert boot["outline"]["timepoint"] == follow.pk and boot["outline"]["patientName"] == "Subject S001"
    assert _boot(client.get(f"{url}?timepoint={base.pk}").content.decode())["adjudication"]["current"] == base.pk
    # reached from the adjudication page, the worklist and the dashboard
    for page in ("subjects/%d/adjudicate/" % first.subject_id, "", "dashboard/"):
        assert url in client.get(PAGE + page).content.decode(), page


def test_an_adjudicator_opens_a_read_in_the_viewer_read_only_with_its_marks(trial: Any) -> None:
    first = trial.do_read(trial.reader1)
    _sign(trial, trial.reader1, first)
    client = Client()
    client.force_login(trial.adjudicator)
    boot = _boot(client.get(f"{PAGE}reads/{first.pk}/").content.decode())
    assert boot["canWrite"] is False and boot["read"]["id"] == first.pk
    marks = trial.client(trial.adjudicator).get(f"{API}reads/{first.pk}/marks/").json()["annotations"]
    assert sorted(m["label"] for m in marks) == ["N1", "T1", "T1", "T2", "T2", "T3", "T3"]
    body = trial.client(trial.adjudicator).get(f"{API}reads/{first.pk}/").json()
    assert body["editable"] is False
    # a write through the read's marks is refused
    mark = marks[0]
    patch = trial.client(trial.adjudicator).patch(f"{API}reads/{first.pk}/marks/{mark['id']}/",
                                                  {"version": mark["version"], "label": "x"}, format="json")
    assert patch.status_code == 403
