"""The RECIST 1.1 evaluate endpoint: answers as specified, refuses bad input with reasons."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/recist/evaluate"


def timepoint(label, date, targets, non_target="present", new_lesions=False):
    tp = {"label": label, "date": date, "modality": "CT", "slice_thickness_mm": 5, "targets": targets, "non_target": non_target}
    if label != "baseline":
        tp["new_lesions"] = new_lesions
    return tp


def lesion(name, organ, mm, nodal=False, status="measured"):
    item = {"lesion": name, "organ": organ, "nodal": nodal, "status": status}
    if mm is not None:
        item["diameter_mm"] = mm
    return item


@pytest.fixture
def api(client, make_user):
    client.force_login(make_user())
    return client


def test_phantom_scenario_is_evaluated(api):
    body = {
        "timepoints": [
            timepoint("baseline", "2024-01-08", [lesion("T1", "liver", 30.0), lesion("T2", "lung", 15.0), lesion("T3", "lymph node", 20.0, nodal=True)]),
            timepoint("follow-up 1", "2024-03-04", [lesion("T1", "liver", 21.0), lesion("T2", "lung", 12.0), lesion("T3", "lymph node", 14.0, nodal=True)], non_target="CR", new_lesions=True),
        ]
    }
    response = api.post(URL, body, content_type="application/json")
    assert response.status_code == 200, response.content
    baseline, follow_up = response.json()["timepoints"]
    assert baseline["sum_mm"] == 65.0 and baseline["target_response"] is None
    assert follow_up["sum_mm"] == 47.0
    assert follow_up["change_from_baseline_pct"] == -27.7
    assert follow_up["target_response"] == "SD"
    assert follow_up["overall_response"] == "PD"  # a new lesion
    assert response.json()["best_overall_response"] == "PD"


def test_exactly_thirty_percent_is_pr(api):
    body = {"timepoints": [
        timepoint("baseline", "2024-01-01", [lesion("T1", "liver", 50.0)], non_target="absent"),
        timepoint("fu1", "2024-02-01", [lesion("T1", "liver", 35.0)], non_target="absent"),
    ]}
    result = api.post(URL, body, content_type="application/json").json()["timepoints"][1]
    assert result["change_from_baseline_pct"] == -30.0 and result["target_response"] == "PR"


def test_bad_baseline_gets_one_reason_per_lesion(api):
    targets = [lesion(f"T{i}", "liver" if i < 3 else f"organ{i}", 20.0) for i in range(6)] + [lesion("N1", "lymph node", 12.0, nodal=True)]
    response = api.post(URL, {"timepoints": [timepoint("baseline", "2024-01-01", targets)]}, content_type="application/json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {e["lesion"] for e in errors} >= {"N1"}
    assert len(errors) >= 3  # too many targets, too many in the liver, a node under 15 mm


@pytest.mark.parametrize(
    "body",
    [
        {"timepoints": []},
        {"timepoints": [timepoint("baseline", "2024-01-01", [lesion("T1", "liver", -3.0)])]},
        {"timepoints": [timepoint("baseline", "2024-01-01", [lesion("T1", "liver", "big")])]},
        {"timepoints": [timepoint("baseline", "2024-01-01", [lesion("T1", "liver", 20.0, status="vanished")])]},
        {"nothing": True},
    ],
    ids=["no-baseline", "negative", "non-numeric", "unknown-status", "wrong-shape"],
)
def test_bad_input_is_400_with_reasons(api, body):
    response = api.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"]


def test_needs_authentication(client):
    assert client.post(URL, {}, content_type="application/json").status_code in (401, 403)
