"""Which marks measure a lesion: the trial setting ``targets_by_length`` (a non-nodal target, or new lesion,
measured with a length, its long axis; a node always with the bidirectional), the rule that decides
(``trials.rules.measuring_kinds`` and ``mark_refusal``, a matrix without a database), and the reading
services, the RECIST table, signing and the exports with a length."""

from __future__ import annotations

import csv
import io
from typing import Any

import highdicom as hd
import pytest
from pydicom.sr.codedict import codes

from annotations.models import Annotation
from audit.models import AuditEvent
from trials import rules, services
from trials.models import Assessment, ReadMark
from viewer.models import Instance
from viewer.storage import object_store

API = "/api/trials/trial/"

# --------------------------------------------------------------------------------- the rule, as a matrix

B, L, P = rules.BIDIRECTIONAL, rules.LENGTH, rules.POINT

#: (role, nodal, targets_by_length) -> the kinds that measure the lesion
MEASURING = {
    ("target", False, False): (B,), ("target", False, True): (B, L),
    ("target", True, False): (B,), ("target", True, True): (B,),
    ("new", False, False): (B,), ("new", False, True): (B, L),
    ("new", True, False): (B,), ("new", True, True): (B,),
    ("non_target", False, False): (), ("non_target", False, True): (),
    ("non_target", True, False): (), ("non_target", True, True): (),
}


@pytest.mark.parametrize(("role", "nodal", "by_length"), list(MEASURING))
def test_which_kinds_measure_a_lesion(role: str, nodal: bool, by_length: bool) -> None:
    assert rules.measuring_kinds(role, nodal=nodal, targets_by_length=by_length) == MEASURING[role, nodal, by_length]


#: A target at a follow-up: (nodal, targets_by_length, kind) -> refused (a words' fragment) or None
TARGET_MARKS = {
    (False, False, B): None, (False, False, L): "not with a length", (False, False, P): "bidirectional tool",
    (False, True, B): None, (False, True, L): None, (False, True, P): "bidirectional or the length",
    (True, False, B): None, (True, False, L): "short axis", (True, False, P): "short axis",
    (True, True, B): None, (True, True, L): "short axis", (True, True, P): "short axis",
}


@pytest.mark.parametrize(("nodal", "by_length", "kind"), list(TARGET_MARKS))
@pytest.mark.parametrize("baseline", [True, False])
def test_which_marks_a_target_takes(nodal: bool, by_length: bool, kind: str, baseline: bool) -> None:
    refusal = rules.mark_refusal("target", nodal=nodal, targets_by_length=by_length, kind=kind, baseline=baseline)
    expected = TARGET_MARKS[nodal, by_length, kind]
    assert (refusal is None) == (expected is None)
    assert expected is None or expected in refusal  # type: ignore[operator]


@pytest.mark.parametrize("kind", rules.MARK_KINDS)
@pytest.mark.parametrize("nodal", [True, False])
@pytest.mark.parametrize("by_length", [True, False])
def test_new_lesions_and_non_targets_take_any_mark_new_ones_not_at_baseline(kind: str, nodal: bool, by_length: bool) -> None:
    for role in ("new", "non_target"):
        assert rules.mark_refusal(role, nodal=nodal, targets_by_length=by_length, kind=kind, baseline=False) is None
    assert rules.mark_refusal("non_target", nodal=nodal, targets_by_length=by_length, kind=kind, baseline=True) is None
    assert "follow-ups only" in rules.mark_refusal("new", nodal=nodal, targets_by_length=by_length, kind=kind,  # type: ignore[operator]
                                                   baseline=True)


# --------------------------------------------------------------------------------- the setting


def _url(read: Any, tail: str = "") -> str:
    return f"{API}reads/{read.pk}/{tail}"


def _length(trial: Any, user: Any, read: Any, timepoint: str, lesion_id: str, **extra: Any) -> Any:
    """A length along the lesion's declared long axis on its centre slice, as the read's viewer sends it."""
    truth = trial.lesion_truth(timepoint, lesion_id)
    body = {"instance": truth["sop_instance_uid"], "kind": "length", "points": truth["long_axis_endpoints_px"]} | extra
    return trial.client(user).post(_url(read, "marks/"), body, format="json")


@pytest.mark.django_db(transaction=True)  # the audit entry is written when the act commits
def test_the_setting_is_set_when_the_trial_is_created_shown_and_audited(client: Any, team: dict[str, Any]) -> None:
    client.force_login(team["organizer"])
    refused = client.post(API, {"name": "Phase II", "targets_by_length": "yes"}, content_type="application/json")
    assert refused.status_code == 400 and "targets_by_length must be true or false" in refused.json()["detail"]
    created = client.post(API, {"name": "Phase II", "targets_by_length": True}, content_type="application/json")
    assert created.status_code == 201 and created.json()["targets_by_length"] is True
    assert client.get(API).json()["targets_by_length"] is True
    (event,) = AuditEvent.objects.filter(action="trial.created")
    assert event.detail["targets_by_length"] is True
    page = client.get("/projects/trial/trial/").content.decode()
    assert "non-nodal targets may be measured by their length" in page


@pytest.mark.django_db
def test_the_setting_is_off_by_default(trial: Any) -> None:
    assert trial.client(trial.organizer).get(API).json()["targets_by_length"] is False
    assert trial.access(trial.organizer).trial.targets_by_length is False


# --------------------------------------------------------------------------------- marks of a read


@pytest.mark.django_db
def test_a_length_measures_a_non_nodal_target_in_one_gesture_when_the_trial_allows(length_trial: Any) -> None:
    trial = length_trial
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    base, follow = trial.timepoints(read)
    t1 = services.add_lesion(access, read, role="target", organ="liver")
    response = _length(trial, trial.reader1, read, "baseline", "T1", lesion=t1.pk)
    assert response.status_code == 201, response.json()
    mark = response.json()
    assert (mark["kind"], mark["label"], mark["lesion"]) == ("length", "T1", t1.pk)
    assessment = Assessment.objects.get(lesion=t1, timepoint=base)
    assert (assessment.status, assessment.annotation_id) == ("measured", mark["id"])
    body = trial.client(trial.reader1).get(_url(read)).json()
    cell = body["lesions"][0]["assessments"][0]
    assert (cell["long_axis_mm"], cell["short_axis_mm"]) == (30.0, None)
    assert body["lesions"][0]["measured_by"] == ["bidirectional", "length"]
    assert body["targets_by_length"] is True
    assert body["recist"]["evaluation"]["timepoints"][0]["sum_mm"] == 30.0  # the length is the long axis
    # the summary's chooser offers it; choosing it there works too
    offered = [m for m in body["measurements"] if m["id"] == mark["id"]]
    assert offered == [offered[0] | {"kind": "length", "long_axis_mm": 30.0, "short_axis_mm": None, "valid": True}]
    services.set_assessment(access, read, lesion=t1.pk, timepoint=base.pk, status="measured", annotation=mark["id"])
    # drawn with no lesion selected, then named a target from the panel
    drawn = _length(trial, trial.reader1, read, "followup", "T1").json()
    named = trial.client(trial.reader1).post(_url(read, "lesions/"), {"role": "target", "organ": "lung",
                                                                      "mark": drawn["id"]}, format="json")
    assert named.status_code == 201, named.json()
    assert Assessment.objects.get(lesion_id=named.json()["id"], timepoint=follow).annotation_id == drawn["id"]


@pytest.mark.django_db
def test_a_node_always_needs_the_bidirectional(length_trial: Any) -> None:
    trial = length_trial
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    node = services.add_lesion(access, read, role="target", organ="mediastinum", nodal=True)
    refused = _length(trial, trial.reader1, read, "baseline", "T3", lesion=node.pk)
    assert refused.status_code == 400
    assert refused.json()["detail"] == ("A lymph node target is measured with the bidirectional tool: its RECIST "
                                        "diameter is the short axis.")
    assert not Annotation.objects.exists() and not ReadMark.objects.exists()
    # named a node from the image: refused in the same words, the mark stays unnamed
    drawn = _length(trial, trial.reader1, read, "baseline", "T3").json()
    named = trial.client(trial.reader1).post(_url(read, "lesions/"), {"role": "target", "organ": "lymph node",
                                                                      "nodal": True, "mark": drawn["id"]}, format="json")
    assert named.status_code == 400 and "short axis" in named.json()["detail"]
    assert ReadMark.objects.get(annotation_id=drawn["id"]).lesion_id is None
    # a non-nodal target measured by a length, then made a node: the table asks for the bidirectional
    t2 = services.add_lesion(access, read, role="target", organ="liver")
    assert _length(trial, trial.reader1, read, "baseline", "T1", lesion=t2.pk).status_code == 201
    assert trial.client(trial.reader1).patch(_url(read, f"lesions/{t2.pk}/"), {"nodal": True},
                                             format="json").status_code == 200
    missing = services.recist_table(access, read)["missing"]
    assert "baseline: T2 is a lymph node: its short axis is measured with the bidirectional" in missing


@pytest.mark.django_db
def test_a_length_is_refused_for_a_target_when_the_trial_does_not_allow_it(trial: Any) -> None:
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    base = trial.timepoints(read)[0]
    t1 = services.add_lesion(access, read, role="target", organ="liver")
    refused = _length(trial, trial.reader1, read, "baseline", "T1", lesion=t1.pk)
    assert refused.status_code == 400
    assert refused.json() == {"code": "bad_request", "detail": "This trial measures targets with the bidirectional "
                                                              "tool (long and short axis), not with a length."}
    assert not Annotation.objects.exists()
    drawn = _length(trial, trial.reader1, read, "baseline", "T1").json()  # a length that names no lesion: kept
    named = trial.client(trial.reader1).post(_url(read, "lesions/"), {"role": "target", "organ": "liver",
                                                                      "mark": drawn["id"]}, format="json")
    assert named.status_code == 400 and "not with a length" in named.json()["detail"]
    chosen = trial.client(trial.reader1).put(_url(read, "assessments/"), {
        "lesion": t1.pk, "timepoint": base.pk, "status": "measured", "annotation": drawn["id"]}, format="json")
    assert chosen.status_code == 400 and "not with a length" in chosen.json()["detail"]
    body = trial.client(trial.reader1).get(_url(read)).json()
    assert body["lesions"][0]["measured_by"] == ["bidirectional"]
    assert [m["id"] for m in body["measurements"]] == []  # a length is no measurement to choose here


@pytest.mark.django_db
@pytest.mark.parametrize(("by_length", "measured"), [(True, True), (False, False)])
def test_a_new_lesions_length_is_its_measurement_when_the_trial_allows(
        team: dict[str, Any], phantom_files: dict[str, Any], by_length: bool, measured: bool) -> None:
    from tests.trials.conftest import make_trial

    trial = make_trial(team, phantom_files, targets_by_length=by_length)
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    follow = trial.timepoints(read)[1]
    new = services.add_lesion(access, read, role="new", organ="liver")
    mark = _length(trial, trial.reader1, read, "followup", "N1", lesion=new.pk).json()
    assessment = Assessment.objects.get(lesion=new, timepoint=follow)
    assert assessment.status == "present"
    assert assessment.annotation_id == (mark["id"] if measured else None)


def _read_by_length(trial: Any, user: Any) -> Any:
    """The phantom read with T1 and T2 measured by lengths, T3 (a node) by bidirectionals, as the panel
    sends them (one gesture each)."""
    access, read = trial.access(user), trial.read_of(user)
    base, follow = trial.timepoints(read)
    client = trial.client(user)
    for lid, organ, nodal in (("T1", "liver", False), ("T2", "lung", False), ("T3", "mediastinum", True)):
        lesion = services.add_lesion(access, read, role="target", organ=organ, nodal=nodal)
        for name in ("baseline", "followup"):
            truth = trial.lesion_truth(name, lid)
            points = [*truth["long_axis_endpoints_px"], *truth["short_axis_endpoints_px"]]
            kind = "bidirectional" if nodal else "length"
            body = {"instance": truth["sop_instance_uid"], "kind": kind, "lesion": lesion.pk,
                    "points": points if nodal else points[:2]}
            assert client.post(_url(read, "marks/"), body, format="json").status_code == 201
    nt = services.add_lesion(access, read, role="non_target", organ="left lung")
    services.set_assessment(access, read, lesion=nt.pk, timepoint=base.pk, status="present")
    services.set_assessment(access, read, lesion=nt.pk, timepoint=follow.pk, status="absent")
    new = services.add_lesion(access, read, role="new", organ="liver")
    assert _length(trial, user, read, "followup", "N1", lesion=new.pk).status_code == 201
    return read


@pytest.mark.django_db
def test_lengths_make_the_phantoms_table_sign_and_export(length_trial: Any) -> None:
    trial = length_trial
    read = _read_by_length(trial, trial.reader1)
    table = services.recist_table(trial.access(trial.reader1), read)
    assert table["missing"] == [] and table["errors"] == []
    follow = table["evaluation"]["timepoints"][1]
    assert (table["evaluation"]["timepoints"][0]["sum_mm"], follow["sum_mm"]) == (65.0, 47.0)
    assert (follow["target_response"], follow["overall_response"]) == ("SD", "PD")
    assert trial.client(trial.reader1).post(_url(read, "sign/")).status_code == 200
    second = trial.do_read(trial.reader2)  # bidirectionals: the same result, the reads agree and lock
    assert trial.client(trial.reader2).post(_url(second, "sign/")).status_code == 200
    read.refresh_from_db()
    assert read.status == "locked"
    frozen = Assessment.objects.get(lesion__read=read, lesion__identifier="T1", timepoint__order=1)
    assert (str(frozen.long_axis_mm), frozen.short_axis_mm, len(frozen.points)) == ("21.0", None, 2)

    organizer = trial.client(trial.organizer)
    rows = list(csv.DictReader(io.StringIO(organizer.get(f"{API}export.csv").content.decode())))
    t1 = next(r for r in rows if r["reader"] == "reader" and r["lesion"] == "T1" and r["timepoint"] == "follow-up 1")
    assert (t1["long_axis_mm"], t1["short_axis_mm"], t1["sum_mm"]) == ("21.0", "", "47.0")
    n1 = next(r for r in rows if r["reader"] == "reader" and r["lesion"] == "N1")
    assert (n1["status"], n1["long_axis_mm"], n1["short_axis_mm"]) == ("present", "12.0", "")

    response = organizer.post(_url(read, "sr/"))
    assert response.status_code == 200, response.json()
    exported = response.json()["instances"][1]
    row = Instance.objects.get(sop_instance_uid=exported["sop"])
    report = hd.sr.srread(io.BytesIO(object_store().read(trial.project.pk, row.sha256)))
    groups = {g.tracking_identifier: g for g in report.content.get_image_measurement_groups()}
    (long_axis,) = groups["T1"].get_measurements(name=codes.SCT.LongAxis)
    assert long_axis.value == pytest.approx(21.0)
    assert groups["T1"].get_measurements(name=codes.SCT.ShortAxis) == []
    assert len(groups["T3"].get_measurements(name=codes.SCT.ShortAxis)) == 1
