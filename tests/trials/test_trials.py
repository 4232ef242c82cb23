"""Trials over REST and the services: blinding, reading, signing, adjudication, dashboard, exports."""

from __future__ import annotations

import csv
import io
from typing import Any

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.codedict import codes

from crossread.errors import DomainError
from trials import agreement, plots, services
from trials.models import Read, ReadStatus
from viewer.models import Instance
from viewer.storage import object_store

pytestmark = pytest.mark.django_db

API = "/api/trials/trial/"


def _read_url(read: Any, tail: str = "") -> str:
    return f"{API}reads/{read.pk}/{tail}"


def _sign_both(trial: Any, *, disagree: bool = True) -> tuple[Read, Read]:
    first = trial.do_read(trial.reader1)
    second = trial.do_read(trial.reader2, new_lesion=not disagree)
    for user, read in ((trial.reader1, first), (trial.reader2, second)):
        assert trial.client(user).post(_read_url(read, "sign/")).status_code == 200
    first.refresh_from_db()
    second.refresh_from_db()
    return first, second


# --------------------------------------------------------------------------------- the RECIST table


def test_the_read_reproduces_the_phantom_recist_scenario(trial: Any) -> None:
    read = trial.do_read(trial.reader1)
    body = trial.client(trial.reader1).get(_read_url(read)).json()
    evaluation = body["recist"]["evaluation"]
    assert body["recist"]["missing"] == [] and body["recist"]["errors"] == []
    baseline, follow = evaluation["timepoints"]
    assert baseline["sum_mm"] == 65.0 and follow["sum_mm"] == 47.0
    assert follow["change_from_baseline_pct"] == -27.7
    assert (follow["target_response"], follow["non_target_response"], follow["overall_response"]) == \
        ("SD", "CR", "PD")
    assert [lesion["identifier"] for lesion in body["lesions"]] == ["T1", "T2", "T3", "NT1", "N1"]


def test_a_read_without_lesions_says_what_is_missing_not_an_error(trial: Any) -> None:
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    assert services.recist_table(access, read) == {
        "evaluation": None, "errors": [], "missing": ["baseline: no target or non-target lesion yet"]}
    response = trial.client(trial.reader1).post(_read_url(read, "sign/"))
    assert response.status_code == 400 and response.json()["errors"] == ["baseline: no target or non-target lesion yet"]


def test_the_table_reports_missing_and_broken_rules_live(trial: Any) -> None:
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    base, follow = trial.timepoints(read)
    small = services.add_lesion(access, read, role="target", organ="lung")
    services.set_assessment(access, read, lesion=small.pk, timepoint=base.pk, status="measured",
                            annotation=trial.measure(trial.reader1, "baseline", "T2", scale=0.5))  # 7.5 mm
    table = services.recist_table(access, read)
    assert "follow-up 1: T1 is not assessed" in table["missing"]
    services.set_assessment(access, read, lesion=small.pk, timepoint=follow.pk, status="too_small")
    table = services.recist_table(access, read)
    assert table["missing"] == []
    assert table["evaluation"]["baseline_problems"][0]["code"] == "not_measurable"
    response = trial.client(trial.reader1).post(_read_url(read, "sign/"))
    assert response.status_code == 400
    assert any("7.5 mm < 10" in reason for reason in response.json()["errors"])
    read.refresh_from_db()
    assert read.status == ReadStatus.DRAFT


@pytest.mark.parametrize(("body", "reason"), [
    ({"status": "present"}, "must be one of"),
    ({"status": "measured", "annotation": "x"}, "annotation must be"),
    ({"status": "measured", "timepoint": 999999}, "timepoint must be"),
])
def test_bad_assessments_are_refused_and_write_nothing(trial: Any, body: dict[str, Any], reason: str) -> None:
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    lesion = services.add_lesion(access, read, role="target", organ="liver")
    base = trial.timepoints(read)[0]
    payload = {"lesion": lesion.pk, "timepoint": base.pk} | body
    response = trial.client(trial.reader1).put(_read_url(read, "assessments/"), payload, format="json")
    assert response.status_code == 400 and reason in response.json()["detail"]
    assert not lesion.assessments.exists()


def test_a_measured_status_waits_for_its_measurement(trial: Any) -> None:
    """Choosing "measured" before drawing is no error: the table says the lesion waits for its mark."""
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    lesion = services.add_lesion(access, read, role="target", organ="liver")
    base = trial.timepoints(read)[0]
    response = trial.client(trial.reader1).put(_read_url(read, "assessments/"),
                                               {"lesion": lesion.pk, "timepoint": base.pk, "status": "measured"}, format="json")
    assert response.status_code == 200
    assert "baseline: T1 waits for its measurement (draw the bidirectional)" in response.json()["recist"]["missing"]


def test_a_reader_cannot_use_someone_elses_or_another_studys_measurement(trial: Any) -> None:
    access, read = trial.access(trial.reader1), trial.read_of(trial.reader1)
    base, follow = trial.timepoints(read)
    lesion = services.add_lesion(access, read, role="target", organ="liver")
    theirs = trial.measure(trial.reader2, "baseline", "T1")
    with pytest.raises(DomainError, match="your own"):
        services.set_assessment(access, read, lesion=lesion.pk, timepoint=base.pk, status="measured",
                                annotation=theirs)
    mine_at_followup = trial.measure(trial.reader1, "followup", "T1")
    with pytest.raises(DomainError, match="baseline study"):
        services.set_assessment(access, read, lesion=lesion.pk, timepoint=base.pk, status="measured",
                                annotation=mine_at_followup)


# --------------------------------------------------------------------------------- blinding


def test_readers_see_only_their_own_reads_without_dates(trial: Any) -> None:
    first, second = trial.read_of(trial.reader1), trial.read_of(trial.reader2)
    client = trial.client(trial.reader1)
    listed = client.get(f"{API}reads/").json()["reads"]
    assert [r["id"] for r in listed] == [first.pk]
    assert "subject_id" not in listed[0]
    assert client.get(_read_url(second)).status_code == 404
    body = client.get(_read_url(first)).json()
    assert [tp["day"] for tp in body["timepoints"]] == [0, 56]
    assert all("date" not in tp for tp in body["timepoints"])
    assert client.get(f"{API}dashboard/").status_code == 403
    assert client.get(f"{API}export.csv").status_code == 403
    assert client.get(f"{API}subjects/{first.subject_id}/adjudication/").status_code == 404


def test_measurement_choices_are_the_reads_own_marks(trial: Any) -> None:
    """Only marks drawn for this read are offered: not the reader's other annotations of the project,
    not the other reader's."""
    read = trial.read_of(trial.reader1)
    trial.measure(trial.reader2, "baseline", "T1")
    trial.measure(trial.reader1, "baseline", "T1")  # drawn outside the read
    lesion = truth = trial.lesion_truth("baseline", "T1")
    response = trial.client(trial.reader1).post(_read_url(read, "marks/"), {
        "instance": truth["sop_instance_uid"], "kind": "bidirectional",
        "points": [*lesion["long_axis_endpoints_px"], *lesion["short_axis_endpoints_px"]]}, format="json")
    assert response.status_code == 201, response.json()
    body = trial.client(trial.reader1).get(_read_url(read)).json()
    assert [m["id"] for m in body["measurements"]] == [response.json()["id"]]


def test_adjudicators_see_signed_reads_only_and_outsiders_nothing(trial: Any) -> None:
    first = trial.do_read(trial.reader1)
    client = trial.client(trial.adjudicator)
    assert client.get(f"{API}reads/").json()["reads"] == []
    assert trial.client(trial.reader1).post(_read_url(first, "sign/")).status_code == 200
    assert [r["id"] for r in client.get(f"{API}reads/").json()["reads"]] == [first.pk]
    assert trial.client(trial.outsider).get(f"{API}reads/").status_code == 404
    assert trial.client(trial.viewer).get(f"{API}reads/").json()["reads"] == []


def test_case_order_is_random_per_reader(trial: Any) -> None:
    keys = list(Read.objects.values_list("order_key", flat=True))
    assert len(set(keys)) == len(keys) == 2  # secrets.randbits(62): independent per read
    access = trial.access(trial.reader1)
    assert [r["id"] for r in services.worklist(access)] == list(
        Read.objects.filter(reader=trial.reader1).order_by("order_key").values_list("pk", flat=True))


# --------------------------------------------------------------------------------- signing and locking


def test_a_signed_read_cannot_change(trial: Any) -> None:
    read = trial.do_read(trial.reader1)
    client = trial.client(trial.reader1)
    assert client.post(_read_url(read, "sign/")).json()["status"] == "signed"
    lesion = read.lesions.first()
    base = trial.timepoints(read)[0]
    assert client.post(_read_url(read, "lesions/"), {"role": "target", "organ": "liver"},
                       format="json").status_code == 409
    assert client.patch(_read_url(read, f"lesions/{lesion.pk}/"), {"organ": "lung"},
                        format="json").status_code == 409
    assert client.delete(_read_url(read, f"lesions/{lesion.pk}/")).status_code == 409
    assert client.put(_read_url(read, "assessments/"), {"lesion": lesion.pk, "timepoint": base.pk,
                      "status": "not_evaluable"}, format="json").status_code == 409
    assert client.post(_read_url(read, "sign/")).status_code == 409


def test_signing_freezes_the_measurements(trial: Any) -> None:
    read = trial.do_read(trial.reader1)
    trial.client(trial.reader1).post(_read_url(read, "sign/"))
    t1 = read.lesions.get(identifier="T1")
    annotation = t1.assessments.get(timepoint__order=0).annotation
    from annotations import services as annotation_services
    annotation_services.update_annotation(trial.reader1, annotation, version=annotation.version,
                                          points=[[10, 10], [60, 10], [35, 0], [35, 20]])
    body = trial.client(trial.reader1).get(_read_url(read)).json()
    assert body["recist"]["evaluation"]["timepoints"][0]["sum_mm"] == 65.0
    cell = next(x for x in body["lesions"] if x["identifier"] == "T1")["assessments"][0]
    assert cell["long_axis_mm"] == 30.0


def test_only_the_reader_writes_their_read(trial: Any) -> None:
    read = trial.read_of(trial.reader1)
    response = trial.client(trial.organizer).post(_read_url(read, "lesions/"), {"role": "target", "organ": "x"},
                                                  format="json")
    assert response.status_code == 403


# --------------------------------------------------------------------------------- adjudication


def test_agreeing_reads_lock_without_adjudication(trial: Any) -> None:
    first, second = _sign_both(trial, disagree=False)
    assert first.status == second.status == ReadStatus.LOCKED
    assert services.subject_state(first.subject) == "agreed"


def test_disagreement_is_detected_and_adjudicated(trial: Any) -> None:
    first, second = _sign_both(trial)
    assert first.status == second.status == ReadStatus.SIGNED
    assert services.disagreements([first, second]) == ["follow-up 1", "best overall response"]
    url = f"{API}subjects/{first.subject_id}/adjudication/"
    view = trial.client(trial.adjudicator).get(url).json()
    assert view["state"] == "needs_adjudication" and len(view["reads"]) == 2 and view["can_adjudicate"]
    assert trial.client(trial.organizer).post(url, {"read": first.pk, "reason": "x"},
                                              format="json").status_code == 403
    bad = trial.client(trial.adjudicator).post(url, {"read": first.pk, "reason": "  "}, format="json")
    assert bad.status_code == 400
    done = trial.client(trial.adjudicator).post(
        url, {"read": first.pk, "reason": "N1 is an unequivocal new liver lesion"}, format="json")
    assert done.status_code == 201 and done.json()["adjudication"]["read"] == first.pk
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == ReadStatus.LOCKED
    assert trial.client(trial.adjudicator).post(url, {"read": second.pk, "reason": "again"},
                                                format="json").status_code == 409


def test_adjudicators_cannot_be_readers(trial: Any) -> None:
    access = trial.access(trial.organizer)
    with pytest.raises(DomainError, match="adjudicator cannot read"):
        services.assign_readers(access, readers=["reader", "adjudicator"])


# --------------------------------------------------------------------------------- agreement and plots


def test_kappa_on_a_known_table() -> None:
    # Classic 2x2 example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> p_o 0.7, p_e 0.5, kappa 0.4.
    pairs = [("Y", "Y")] * 20 + [("Y", "N")] * 5 + [("N", "Y")] * 10 + [("N", "N")] * 15
    result = agreement.agreement(pairs)
    assert (result.pairs, result.agreeing, result.percent, result.kappa) == (50, 35, 70.0, 0.4)
    assert agreement.agreement([("PD", "PD")] * 3).kappa is None  # p_e = 1: undefined
    assert agreement.agreement([]).percent is None
    assert agreement.agreement([("PD", "SD"), ("SD", "PD")]).kappa == -1.0


def test_plots_escape_labels() -> None:
    svg = plots.waterfall_svg([plots.WaterfallBar("<S1>", -27.7, "PD")])
    assert "&lt;S1&gt;" in svg and "<S1>" not in svg
    assert 'data-subject="&lt;S1&gt;"' in plots.spider_svg([plots.SpiderLine("<S1>", [(0, 0.0), (56, -27.7)], "PD")])


def test_empty_plots_say_why_and_full_ones_do_not() -> None:
    # a subject is plotted from its final read: signed reads that wait for adjudication are not "no signed reads"
    for empty in (plots.waterfall_svg([]), plots.spider_svg([])):
        assert plots.EMPTY_TEXT in empty and "No signed reads" not in empty
    assert plots.EMPTY_TEXT not in plots.waterfall_svg([plots.WaterfallBar("S1", -27.7, "PR")])
    assert plots.EMPTY_TEXT not in plots.spider_svg([plots.SpiderLine("S1", [(0, 0.0), (56, -27.7)], "PR")])


def test_dashboard_shows_progress_agreement_and_plots(trial: Any) -> None:
    first, _ = _sign_both(trial)
    services.adjudicate(trial.access(trial.adjudicator), first.subject, read=first.pk, reason="new lesion")
    data = trial.client(trial.organizer).get(f"{API}dashboard/").json()
    assert data["progress"] == {"reader": {"assigned": 1, "signed": 1}, "reader2": {"assigned": 1, "signed": 1}}
    assert data["agreement"] == {"pairs": 1, "agreeing": 0, "percent": 0.0, "kappa": 0.0}
    assert data["subjects"][0]["state"] == "adjudicated"
    assert data["subjects"][0]["best_overall_response"] == "PD"
    assert 'data-subject="S001"' in data["waterfall_svg"] and "-27.7" in data["waterfall_svg"]
    assert "day 56" in data["spider_svg"]


# --------------------------------------------------------------------------------- exports


def test_csv_columns_and_values(trial: Any) -> None:
    first, _ = _sign_both(trial)
    services.adjudicate(trial.access(trial.adjudicator), first.subject, read=first.pk, reason="new lesion")
    response = trial.client(trial.organizer).get(f"{API}export.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == services.CSV_COLUMNS
    assert len(rows) == (4 + 5) + (4 + 4)  # reader 1 marked N1 at follow-up, reader 2 did not
    t1 = next(r for r in rows if r["reader"] == "reader" and r["lesion"] == "T1" and r["timepoint"] == "follow-up 1")
    assert (t1["long_axis_mm"], t1["sum_mm"], t1["change_from_baseline_pct"]) == ("21.0", "47.0", "-27.7")
    assert (t1["target_response"], t1["non_target_response"], t1["new_lesions"], t1["overall_response"]) == \
        ("SD", "CR", "yes", "PD")
    assert (t1["adjudicated"], t1["chosen"], t1["adjudicator"], t1["day"]) == ("yes", "yes", "adjudicator", "56")
    other = next(r for r in rows if r["reader"] == "reader2" and r["timepoint"] == "follow-up 1")
    assert (other["overall_response"], other["chosen"]) == ("SD", "no")
    t3 = next(r for r in rows if r["lesion"] == "T3" and r["timepoint"] == "baseline")
    assert (t3["nodal"], t3["short_axis_mm"]) == ("yes", "20.0")


def test_sr_export_round_trip_and_storage_as_its_own_series(trial: Any) -> None:
    first, second = _sign_both(trial, disagree=False)
    client = trial.client(trial.organizer)
    assert trial.client(trial.reader1).post(_read_url(first, "sr/")).status_code == 403
    response = client.post(_read_url(first, "sr/"))
    assert response.status_code == 200, response.json()
    instances = response.json()["instances"]
    assert [i["timepoint"] for i in instances] == ["baseline", "follow-up 1"]
    assert client.post(_read_url(first, "sr/")).json()["instances"] == instances  # idempotent

    lesions = {x.identifier: x for x in first.lesions.all()}
    for exported, name in zip(instances, ("baseline", "followup"), strict=True):
        assert exported["sop_class"] == "1.2.840.10008.5.1.4.1.1.88.34"
        assert exported["study"] == trial.truth[name]["study_instance_uid"]
        assert exported["series"] != trial.truth[name]["series_instance_uid"]
        row = Instance.objects.get(sop_instance_uid=exported["sop"])
        assert row.series.modality == "SR" and row.series.instances.count() == 1
        report = hd.sr.srread(io.BytesIO(object_store().read(trial.project.pk, row.sha256)))
        groups = {g.tracking_identifier: g for g in report.content.get_image_measurement_groups()}
        assert {k: g.tracking_uid for k, g in groups.items()} == {
            k: lesions[k].tracking_uid for k in groups}
        truth = trial.lesion_truth(name, "T1")
        (long_axis,) = groups["T1"].get_measurements(name=codes.SCT.LongAxis)
        assert long_axis.value == pytest.approx(truth["long_axis_mm"])
        assert long_axis.referenced_coordinates[0].ContentSequence[0].ReferencedSOPSequence[0] \
            .ReferencedSOPInstanceUID == truth["sop_instance_uid"]
    assert set(groups) == {"T1", "T2", "T3", "NT1", "N1"}

    qido = client.get(f"/projects/trial/dicomweb/studies/{instances[1]['study']}/series", {"Modality": "SR"})
    assert qido.status_code == 200
    found = [s["0020000E"]["Value"][0] for s in qido.json()]
    assert found == [instances[1]["series"]]


def test_sr_export_needs_a_locked_read(trial: Any) -> None:
    first, _ = _sign_both(trial)
    response = trial.client(trial.organizer).post(_read_url(first, "sr/"))
    assert response.status_code == 409


def test_sr_export_in_a_de_identifying_project_keeps_its_references(trial: Any) -> None:
    first, _ = _sign_both(trial, disagree=False)
    trial.project.deidentification = {"profile": "basic", "options": []}
    trial.project.save()
    response = trial.client(trial.organizer).post(_read_url(first, "sr/"))
    assert response.status_code in (200, 201), response.content
    stored = {i.sop_instance_uid for i in Instance.objects.exclude(series__modality="SR")}
    for report in Instance.objects.filter(series__modality="SR"):
        data = object_store().read(report.project_id, report.sha256)
        referenced = {
            item.ReferencedSOPInstanceUID
            for item in pydicom.dcmread(io.BytesIO(data)).CurrentRequestedProcedureEvidenceSequence[0]
            .ReferencedSeriesSequence[0].ReferencedSOPSequence
        }
        assert referenced and referenced <= stored  # stored as made: not de-identified a second time


# --------------------------------------------------------------------------------- setup


def test_setup_endpoints(trial: Any) -> None:
    client = trial.client(trial.organizer)
    assert client.post(API, {"name": "again"}, format="json").status_code == 409
    body = client.get(API).json()
    assert body["name"] == "Phantom trial" and body["adjudicators"] == ["adjudicator"]
    assert client.post(f"{API}subjects/", {"label": "S002", "patient_id": "NOBODY"},
                       format="json").status_code == 400
    assert client.post(f"{API}subjects/", {"label": "S001", "patient_id": "PHANTOM-001"},
                       format="json").status_code == 409
    assert trial.client(trial.reader1).post(f"{API}assign/", {"readers": ["reader"]},
                                            format="json").status_code == 403
    assert client.post(f"{API}assign/", {"readers": ["reader"]}, format="json").status_code == 400
    timepoints = trial.timepoints(trial.read_of(trial.reader1))
    assert [(t.label, str(t.slice_thickness_mm), t.modality) for t in timepoints] == [
        ("baseline", "2.500", "CT"), ("follow-up 1", "2.500", "CT")]
