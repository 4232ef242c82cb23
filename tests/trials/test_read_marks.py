"""A read's marks: drawn in the read's viewer, each the read's own, assigned to a lesion and time point in
one gesture or named afterwards (``trials.services.reading``: create_mark, assign_mark, add_lesion(mark=))."""

from __future__ import annotations

from typing import Any

import pytest

from annotations.models import Annotation
from trials import services
from trials.models import Assessment, ReadMark

pytestmark = pytest.mark.django_db

API = "/api/trials/trial/"


def _url(read: Any, tail: str = "") -> str:
    return f"{API}reads/{read.pk}/{tail}"


def _draw(trial: Any, user: Any, read: Any, timepoint: str, lesion_id: str, **extra: Any) -> Any:
    truth = trial.lesion_truth(timepoint, lesion_id)
    body = {"instance": truth["sop_instance_uid"], "kind": "bidirectional",
            "points": [*truth["long_axis_endpoints_px"], *truth["short_axis_endpoints_px"]]} | extra
    return trial.client(user).post(_url(read, "marks/"), body, format="json")


def test_a_mark_drawn_for_a_selected_lesion_is_its_measurement_in_one_gesture(trial: Any) -> None:
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    base, follow = trial.timepoints(read)
    lesion = services.add_lesion(access, read, role="target", organ="liver")
    response = _draw(trial, trial.reader1, read, "followup", "T1", lesion=lesion.pk, client_ref="a")
    assert response.status_code == 201, response.json()
    mark = response.json()
    assert (mark["label"], mark["lesion"], mark["timepoint"], mark["read"]) == ("T1", lesion.pk, follow.pk, read.pk)
    assessment = Assessment.objects.get(lesion=lesion, timepoint=follow)
    assert (assessment.status, assessment.annotation_id) == ("measured", mark["id"])
    # a retry with the same client_ref is the same mark
    again = _draw(trial, trial.reader1, read, "followup", "T1", lesion=lesion.pk, client_ref="a")
    assert again.status_code == 201 and again.json()["id"] == mark["id"]
    # drawn again for the same lesion and time point: the new mark replaces the old one
    second = _draw(trial, trial.reader1, read, "followup", "T1", lesion=lesion.pk, client_ref="b").json()
    assert Annotation.objects.get(pk=mark["id"]).deleted
    assert Assessment.objects.get(lesion=lesion, timepoint=follow).annotation_id == second["id"]
    listed = trial.client(trial.reader1).get(_url(read, "marks/")).json()["annotations"]
    assert [(m["id"], m["lesion"]) for m in listed] == [(second["id"], lesion.pk)]
    body = trial.client(trial.reader1).get(_url(read)).json()
    t1 = body["lesions"][0]["assessments"][1]
    assert (t1["long_axis_mm"], t1["annotation"]) == (21.0, second["id"])
    assert body["marks"] == [{"annotation": second["id"], "lesion": lesion.pk, "timepoint": follow.pk}]
    assert base


def test_a_mark_drawn_first_is_named_as_a_new_lesion(trial: Any) -> None:
    read = trial.read_of(trial.reader1)
    follow = trial.timepoints(read)[1]
    mark = _draw(trial, trial.reader1, read, "followup", "N1").json()
    assert (mark["lesion"], mark["label"]) == (None, "")
    response = trial.client(trial.reader1).post(_url(read, "lesions/"),
                                                {"role": "new", "organ": "liver", "mark": mark["id"]}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["identifier"] == "N1"
    assessment = Assessment.objects.get(lesion_id=response.json()["id"], timepoint=follow)
    assert (assessment.status, assessment.annotation_id) == ("present", mark["id"])
    assert Annotation.objects.get(pk=mark["id"]).label == "N1"
    # a mark already named is not named twice
    twice = trial.client(trial.reader1).post(_url(read, "lesions/"),
                                             {"role": "target", "organ": "liver", "mark": mark["id"]}, format="json")
    assert twice.status_code == 400


def test_a_non_targets_mark_says_where_it_is_and_a_deleted_measurement_waits(trial: Any) -> None:
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    base = trial.timepoints(read)[0]
    mark = _draw(trial, trial.reader1, read, "baseline", "T1").json()
    nt = trial.client(trial.reader1).post(_url(read, "lesions/"),
                                          {"role": "non_target", "organ": "lung", "mark": mark["id"]}, format="json").json()
    assessment = Assessment.objects.get(lesion_id=nt["id"], timepoint=base)
    assert (assessment.status, assessment.annotation_id) == ("present", None)
    target = services.add_lesion(access, read, role="target", organ="liver")
    measured = _draw(trial, trial.reader1, read, "baseline", "T2", lesion=target.pk).json()
    assert trial.client(trial.reader1).delete(_url(read, f"marks/{measured['id']}/")).status_code == 204
    table = services.recist_table(access, read)
    assert "baseline: T1 has no usable measurement" in table["missing"]
    assert trial.client(trial.reader1).get(_url(read, "marks/")).json()["annotations"][0]["id"] == mark["id"]


@pytest.mark.parametrize(("body", "status", "reason"), [
    ({"kind": "ellipse"}, 400, "kind must be one of"),
    ({"instance": "1.2.3"}, 400, "instance must be"),
    ({"instance": "x" * 65}, 400, "instance must be"),
    ({"lesion": 999999}, 404, "No such lesion"),
    ({"points": [[0, 0]]}, 400, "points"),
])
def test_bad_marks_are_refused_and_write_nothing(trial: Any, body: dict[str, Any], status: int, reason: str) -> None:
    read = trial.read_of(trial.reader1)
    response = _draw(trial, trial.reader1, read, "baseline", "T1", **body)
    assert response.status_code == status and reason in response.json()["detail"], response.json()
    assert set(response.json()) >= {"code", "detail"}
    assert not ReadMark.objects.exists() and not Annotation.objects.exists()


def test_a_new_lesion_is_not_marked_at_baseline_nor_a_target_with_a_point(trial: Any) -> None:
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    new = services.add_lesion(access, read, role="new", organ="liver")
    assert _draw(trial, trial.reader1, read, "baseline", "N1", lesion=new.pk).status_code == 400
    target = services.add_lesion(access, read, role="target", organ="liver")
    truth = trial.lesion_truth("baseline", "T1")
    point = trial.client(trial.reader1).post(_url(read, "marks/"), {
        "instance": truth["sop_instance_uid"], "kind": "point", "points": [[10, 10]], "lesion": target.pk}, format="json")
    assert point.status_code == 400 and "bidirectional" in point.json()["detail"]
    assert not Annotation.objects.exists()


def test_marks_of_a_read_are_its_readers_and_lock_with_it(trial: Any) -> None:
    read = trial.read_of(trial.reader1)
    other = trial.read_of(trial.reader2)
    mark = _draw(trial, trial.reader1, read, "baseline", "T1").json()
    # the other reader neither sees nor reaches this read's marks; their own read has none
    assert trial.client(trial.reader2).get(_url(read, "marks/")).status_code == 404
    assert trial.client(trial.reader2).get(_url(other, "marks/")).json()["annotations"] == []
    # a mark of one read cannot be chosen in another
    with pytest.raises(Exception, match="your own"):
        services.set_assessment(trial.access(trial.reader2), other,
                                lesion=services.add_lesion(trial.access(trial.reader2), other, role="target", organ="x").pk,
                                timepoint=trial.timepoints(other)[0].pk, status="measured", annotation=mark["id"])
    # the organizer sees them but does not change them
    organizer = trial.client(trial.organizer)
    assert organizer.get(_url(read, "marks/")).json()["annotations"][0]["id"] == mark["id"]
    assert organizer.delete(_url(read, f"marks/{mark['id']}/")).status_code == 403
    trial.do_read(trial.reader1)
    services.sign_read(trial.access(trial.reader1), read)
    refused = trial.client(trial.reader1).patch(_url(read, f"marks/{mark['id']}/"), {"version": 1, "label": "x"}, format="json")
    assert refused.status_code == 409
    assert _draw(trial, trial.reader1, read, "baseline", "T2").status_code == 409


def test_a_read_has_a_bounded_number_of_marks(trial: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from trials.services import reading

    monkeypatch.setattr(reading, "MAX_MARKS_PER_READ", 1)
    read = trial.read_of(trial.reader1)
    first = _draw(trial, trial.reader1, read, "baseline", "T1").json()
    refused = _draw(trial, trial.reader1, read, "baseline", "T2")
    assert refused.status_code == 400 and "at most 1 marks" in refused.json()["detail"]
    # a deleted mark no longer counts
    assert trial.client(trial.reader1).delete(_url(read, f"marks/{first['id']}/")).status_code == 204
    assert _draw(trial, trial.reader1, read, "baseline", "T2").status_code == 201
