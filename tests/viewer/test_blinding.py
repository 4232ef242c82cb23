"""Blinded trial readers: the archive hides the trial's studies from them and masks those they read.

A reader of a blinded trial must learn neither whose images they read nor when they were taken
(viewer.blinding, trials.blinding). Every way to the archive is tried as that reader would: QIDO-RS
at each level, WADO-RS metadata, files and bulk data, rendered frames (with the lookup cache warmed by
an organizer), the viewer page and the worklist's count.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import create_user, token_for
from trials.models import Read, Subject, Trial, TrialTimepoint
from viewer import blinding
from viewer.access import access_project
from viewer.ingest import ingest_bytes
from viewer.models import Membership, Role, Study

PHI = ("Doe^Jane", "Doe", "PID-7731", "20240115", "2024-01-15", "follow-up 8 weeks", "baseline scan", "St Elsewhere",
       "Smith^Referring", "ACC-99", "20230301", "Jane's chest")


def _phi_dataset(study_uid: str, description: str, day: str, **more: Any) -> Dataset:
    ds = ct_dataset(StudyInstanceUID=study_uid, PatientName="Doe^Jane", PatientID="PID-7731", StudyDate=day,
                    SeriesDate=day, StudyTime="101500", StudyDescription=description, InstitutionName="St Elsewhere",
                    ReferringPhysicianName="Smith^Referring", AccessionNumber="ACC-99", PatientBirthDate="19700101",
                    FrameOfReferenceUID="1.2.3.4.5", SeriesDescription="Jane's chest", **more)
    ds.add_new(0x00110010, "LO", "PRIVATE CREATOR")
    ds.add_new(0x00111001, "LO", "Doe private note")
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.add_new(0x00080021, "DA", "20230301")
    ds.ReferencedImageSequence = Sequence([item])
    return ds


@pytest.fixture
def blinded(team: dict[str, Any]) -> dict[str, Any]:
    """Subject S-01 (baseline, follow-up) read by the team's reader; S-02 read by another reader; a study
    of the same patient outside the trial; the trial's adjudicator."""
    project = team["project"]
    studies = {}
    for name, description, day in (("baseline", "baseline scan", "20240115"), ("followup", "follow-up 8 weeks", "20240312"),
                                   ("other", "unrelated", "20240401"), ("outside", "outside the trial", "20230301")):
        ds = _phi_dataset(f"1.2.826.0.1.3680043.10.{len(studies) + 1}", description, day)
        if name == "other":
            ds.PatientName, ds.PatientID = "Roe^Richard", "PID-0002"
        assert ingest_bytes(project, to_bytes(ds)).ok
        studies[name] = (Study.objects.get(study_instance_uid=ds.StudyInstanceUID), ds)
    trial = Trial.objects.create(project=project, name="Blind")
    s1 = Subject.objects.create(trial=trial, label="S-01", patient_id="PID-7731")
    s2 = Subject.objects.create(trial=trial, label="S-02", patient_id="PID-0002")
    for subject, name, label, order in ((s1, "baseline", "baseline", 0), (s1, "followup", "follow-up 1", 1),
                                        (s2, "other", "baseline", 0)):
        TrialTimepoint.objects.create(subject=subject, study=studies[name][0], label=label, order=order,
                                      date=date(2024, 1, 15), modality="CT")
    other_reader, adjudicator = create_user("reader-b"), create_user("adjudicator")
    for user in (other_reader, adjudicator):
        Membership.objects.create(project=project, user=user, role=Role.READER)
    trial.adjudicators.add(adjudicator)
    Read.objects.create(trial=trial, subject=s1, reader=team["reader"], order_key=1)
    Read.objects.create(trial=trial, subject=s2, reader=other_reader, order_key=2)
    return {**team, "trial": trial, "studies": studies, "adjudicator": adjudicator}


def _get(client, user, path: str, **headers: str):
    return client.get(path, HTTP_AUTHORIZATION=f"Token {token_for(user)}", **headers)


def _listed(client, user, path: str = "/projects/trial/dicomweb/studies") -> set[str]:
    response = _get(client, user, path)
    assert response.status_code == 200, response.content
    return {item["0020000D"]["Value"][0] for item in response.json()} if response.content else set()


def _uid(blinded, name: str) -> str:
    return blinded["studies"][name][1].StudyInstanceUID


def _assert_no_phi(text: str) -> None:
    for secret in PHI:
        assert secret not in text, secret


# ------------------------------------------------------------------------------------------------ the pure rules


def test_masked_metadata_keeps_what_reading_needs_and_nothing_that_identifies():
    ds = _phi_dataset("1.2.3", "follow-up 8 weeks", "20240115", WindowCenter=40, WindowWidth=400,
                      ImagePositionPatient=[0, 0, -10], PixelSpacing=[0.7, 0.7])
    metadata = ds.to_json_dict()
    masked = blinding.mask_metadata(metadata, blinding.Mask("S-01", "follow-up 1"))
    _assert_no_phi(json.dumps(masked))
    assert masked["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "S-01"}]}
    assert masked["00100020"]["Value"] == ["S-01"] and masked["00081030"]["Value"] == ["follow-up 1"]
    for kept in ("00281050", "00281051", "00200032", "00280030", "00200052", "00080060", "7FE00010"):
        assert kept in masked or kept not in metadata, kept
    assert "00111001" not in masked and "00110010" not in masked  # private
    assert "00080021" not in masked["00081140"]["Value"][0]  # a date inside a sequence
    assert masked["00081140"]["Value"][0]["00081155"]["Value"] == ["1.2.3"]  # the rest of the item stays


@pytest.mark.parametrize(("hidden", "masked"), [(False, False), (True, False), (True, True)])
def test_a_blinding_lists_reaches_and_serves_files(hidden, masked):
    rule = blinding.Blinding(frozenset({1} if hidden else ()), {1: blinding.Mask("S", "baseline")} if masked else {})
    assert rule.lists(1) is (not hidden)
    assert rule.reaches(1) is (not hidden or masked)
    assert blinding.serves_files(rule, 1) is (not masked)
    assert blinding.serves_files(None, 1)
    assert rule.lists(2) and rule.reaches(2)


# ------------------------------------------------------------------------------------------------ through the gate


def test_a_blinded_reader_lists_none_of_the_trials_studies(client, blinded):
    assert _listed(client, blinded["reader"]) == {_uid(blinded, "outside")}
    for level in ("series", "instances"):  # the project-wide searches too
        response = _get(client, blinded["reader"], f"/projects/trial/dicomweb/{level}")
        assert {item["0020000D"]["Value"][0] for item in response.json()} == {_uid(blinded, "outside")}
    everything = {_uid(blinded, name) for name in blinded["studies"]}
    assert _listed(client, blinded["organizer"]) == everything
    assert _listed(client, blinded["adjudicator"]) == everything
    assert _listed(client, blinded["viewer"]) == everything  # reads nothing: not blinded

    blinded["trial"].blinded = False
    blinded["trial"].save()
    assert _listed(client, blinded["reader"]) == everything  # an unblinded trial is listed


def test_the_studies_a_blinded_reader_reads_are_reached_masked(client, blinded):
    reader = blinded["reader"]
    base = f"/projects/trial/dicomweb/studies/{_uid(blinded, 'followup')}"
    series = _get(client, reader, f"{base}/series")
    assert series.status_code == 200 and len(series.json()) == 1
    _assert_no_phi(series.content.decode())
    metadata = _get(client, reader, f"{base}/metadata")
    assert metadata.status_code == 200
    _assert_no_phi(metadata.content.decode())
    (item,) = metadata.json()
    assert item["00100010"]["Value"][0]["Alphabetic"] == "S-01"
    assert item["00081030"]["Value"] == ["follow-up 1"]
    instances = _get(client, reader, f"{base}/instances?includefield=all")
    _assert_no_phi(instances.content.decode())
    # The organizer reads the truth.
    assert "Doe^Jane" in _get(client, blinded["organizer"], f"{base}/metadata").content.decode()


def test_the_tag_browser_masks_as_wado_metadata_does(client, blinded):
    """The tag browser (viewer.tag_views) shows a blinded reader exactly the elements WADO-RS metadata
    does: no names, dates or private elements; the organizer sees them, private names included."""
    reader = blinded["reader"]
    ds = blinded["studies"]["followup"][1]
    tags_url = f"/projects/trial/instances/{ds.SOPInstanceUID}/tags"
    answer = _get(client, reader, tags_url)
    assert answer.status_code == 200
    _assert_no_phi(answer.content.decode())
    body = answer.json()
    shown = {row["tag"].strip("()").replace(",", "") for row in body["elements"]}
    metadata = _get(client, reader, f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/"
                                    f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/metadata").json()[0]
    assert shown == set(metadata)
    assert not any(int(tag[:4], 16) % 2 for tag in shown)  # no private element
    patient = next(row for row in body["elements"] if row["tag"] == "(0010,0010)")
    assert patient["value"] == "S-01"
    sequence = next(row for row in body["elements"] if row["tag"] == "(0008,1140)")
    assert "20230301" not in str(sequence["items"])
    truth = _get(client, blinded["organizer"], tags_url).content.decode()
    assert "Doe^Jane" in truth and "Doe private note" in truth and "20230301" in truth
    other = blinded["studies"]["other"][1]  # S-02, read by somebody else: not found
    assert _get(client, reader, f"/projects/trial/instances/{other.SOPInstanceUID}/tags").status_code == 404


def test_a_blinded_readers_exports_of_marks_are_masked_and_not_stored(client, blinded):
    """The viewer's exports (annotations.exports): the SR's patient and study come from the masked
    headers, the CSV holds no patient data, and the report is not stored back into a blinded study."""
    from annotations import services as annotation_services

    reader = blinded["reader"]
    ds = blinded["studies"]["followup"][1]
    annotation_services.create_annotation(reader, blinded["project"], instance_uid=ds.SOPInstanceUID, kind="length",
                                          points=[[1, 1], [8, 8]])
    base = f"/api/projects/trial/annotations/export/?study={ds.StudyInstanceUID}"
    table = _get(client, reader, base + "&as=csv")
    assert table.status_code == 200 and "length" in table.content.decode()
    _assert_no_phi(table.content.decode())
    report = _get(client, reader, base + "&as=sr")
    assert report.status_code == 200
    _assert_no_phi(report.content.decode("latin-1"))
    assert b"S-01" in report.content
    stored = client.post("/api/projects/trial/annotations/export/", {"study": ds.StudyInstanceUID},
                         content_type="application/json", HTTP_AUTHORIZATION=f"Token {token_for(reader)}")
    assert stored.status_code == 403


def test_a_blinded_reader_gets_no_files_and_no_study_of_another_reader(client, blinded):
    reader = blinded["reader"]
    ds = blinded["studies"]["followup"][1]
    instance = f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    refused = _get(client, reader, instance, HTTP_ACCEPT='multipart/related; type="application/dicom"')
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert _get(client, reader, f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}").status_code == 403
    assert _get(client, reader, f"{instance}/bulkdata/00111001", HTTP_ACCEPT="multipart/related; type=\"application/octet-stream\"").status_code == 404
    frames = _get(client, reader, f"{instance}/frames/1", HTTP_ACCEPT='multipart/related; type="application/octet-stream"')
    assert frames.status_code == 200
    assert _get(client, blinded["organizer"], instance, HTTP_ACCEPT='multipart/related; type="application/dicom"').status_code == 200

    other = blinded["studies"]["other"][1]  # S-02, read by somebody else
    for path in (f"/projects/trial/dicomweb/studies/{other.StudyInstanceUID}/metadata",
                 f"/projects/trial/dicomweb/studies/{other.StudyInstanceUID}/series"):
        response = _get(client, reader, path)
        assert response.status_code == 404 or response.json() == [], path


def test_rendered_images_of_a_hidden_study_stay_hidden_when_an_organizer_warmed_the_cache(client, blinded):
    from viewer.rendering import LOOKUP_CACHE

    LOOKUP_CACHE.clear()
    other = blinded["studies"]["other"][1]
    path = (f"/projects/trial/dicomweb/studies/{other.StudyInstanceUID}/series/{other.SeriesInstanceUID}"
            f"/instances/{other.SOPInstanceUID}/frames/1/rendered")
    assert _get(client, blinded["organizer"], path).status_code == 200
    assert _get(client, blinded["reader"], path).status_code == 404
    mine = blinded["studies"]["baseline"][1]
    assert _get(client, blinded["reader"], path.replace(other.StudyInstanceUID, mine.StudyInstanceUID)
                .replace(other.SeriesInstanceUID, mine.SeriesInstanceUID)
                .replace(other.SOPInstanceUID, mine.SOPInstanceUID)).status_code == 200


def test_the_viewer_page_of_a_masked_study_shows_no_patient_data_and_no_listed_study_beside_it(client, blinded):
    client.force_login(blinded["reader"])
    page = client.get(f"/projects/trial/studies/{_uid(blinded, 'followup')}/")
    assert page.status_code == 200, page.status_code
    text = page.content.decode()
    _assert_no_phi(text)
    assert "S-01" in text and "follow-up 1" in text
    assert _uid(blinded, "baseline") in text  # the earlier time point is beside it
    assert _uid(blinded, "outside") not in text  # the same patient's listed study is not
    beside_the_truth = client.get(f"/projects/trial/studies/{_uid(blinded, 'outside')}/").content.decode()
    assert "Doe^Jane" in beside_the_truth and "S-01" not in beside_the_truth  # nor the other way round
    assert _uid(blinded, "baseline") not in beside_the_truth
    client.force_login(blinded["organizer"])
    assert "Doe" in client.get(f"/projects/trial/studies/{_uid(blinded, 'followup')}/").content.decode()


def test_a_new_read_blinds_at_once(client, blinded):
    viewer = blinded["viewer"]
    access = access_project(viewer, "trial")
    assert access.blinding is None
    everything = {_uid(blinded, name) for name in blinded["studies"]}
    assert _listed(client, viewer) == everything
    Membership.objects.filter(user=viewer).update(role=Role.READER)
    Read.objects.create(trial=blinded["trial"], subject=Subject.objects.get(label="S-02"), reader=viewer, order_key=3)
    assert _listed(client, viewer) == {_uid(blinded, "outside")}
    assert access_project(viewer, "trial").blinding.masks.keys() == {blinded["studies"]["other"][0].pk}


def test_reformatted_planes_of_a_hidden_series_stay_hidden_when_an_organizer_warmed_the_memory(client, blinded):
    """MPR stacks are kept in memory for everyone who reaches a series alike (viewer.rendering.mpr): a
    blinded reader's request answered from that memory must still be refused."""
    from viewer.rendering import mpr

    mpr.STACKS.clear()
    other = blinded["studies"]["other"][1]
    series_uid = "1.2.826.0.1.3680043.10.99"
    for z in range(3):
        ds = ct_dataset(StudyInstanceUID=other.StudyInstanceUID, SeriesInstanceUID=series_uid,
                        PatientName="Roe^Richard", PatientID="PID-0002", ImagePositionPatient=[0, 0, float(z)],
                        ImageOrientationPatient=[1, 0, 0, 0, 1, 0], PixelSpacing=[1, 1], InstanceNumber=z + 1)
        assert ingest_bytes(blinded["project"], to_bytes(ds)).ok
    plane = f"/projects/trial/series/{series_uid}/mpr/sagittal/3"
    assert _get(client, blinded["organizer"], plane).status_code == 200
    mine = blinded["studies"]["baseline"][1]  # the reader's decision is remembered (viewer.grants) ...
    own = (f"/projects/trial/dicomweb/studies/{mine.StudyInstanceUID}/series/{mine.SeriesInstanceUID}"
           f"/instances/{mine.SOPInstanceUID}/frames/1/rendered")
    assert _get(client, blinded["reader"], own).status_code == 200
    assert _get(client, blinded["reader"], plane).status_code == 404  # ... and the stack is in memory


def test_the_home_page_counts_and_the_worklist_lists_only_what_a_blinded_reader_may_list(client, blinded):
    """The worklist page draws its rows from QIDO-RS /studies (static/viewer/worklist.js, tested above);
    the home page counts each project's studies on the server."""
    client.force_login(blinded["reader"])
    assert client.get("/").context["projects"][0].study_count == 1  # the study outside the trial
    page = client.get("/projects/trial/")
    assert page.status_code == 200
    _assert_no_phi(page.content.decode())
    client.force_login(blinded["organizer"])
    assert client.get("/").context["projects"][0].study_count == 4
    blinded["trial"].blinded = False
    blinded["trial"].save()
    client.force_login(blinded["reader"])
    assert client.get("/").context["projects"][0].study_count == 4


def test_a_reading_session_labels_its_cases_as_the_blinded_reader_may_see_them(client, blinded) -> None:
    """A session whose cases are a study the reader reads masked, a trial study hidden from them and a
    study outside the trial: the session's REST detail, list and lobby, and its websocket snapshot, name
    the masked case by its time point, the hidden one not at all, and only the outside one as it is. A
    change broadcast to every participant carries no labels."""
    from collab.access import access_session
    from collab.models import Participant, ReadingSession, SessionCase, Status
    from collab.services import session_payload, snapshot

    session = ReadingSession.objects.create(project=blinded["project"], title="Board", organizer=blinded["organizer"],
                                            status=Status.ACTIVE)
    for position, name in enumerate(("baseline", "other", "outside")):
        SessionCase.objects.create(session=session, study=blinded["studies"][name][0], position=position)
    Participant.objects.create(session=session, user=blinded["reader"], role="reader", colour="#ff0000")
    reader = blinded["reader"]

    def labels(cases: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(case["description"], case["date"]) for case in cases]

    detail = _get(client, reader, f"/api/sessions/{session.pk}/").json()
    listed = _get(client, reader, "/api/sessions/").json()["sessions"]
    state = snapshot(access_session(reader, session.pk))
    for cases in (detail["cases"], listed[0]["cases"], state["session"]["cases"]):
        assert labels(cases) == [("baseline", ""), ("", ""), ("outside the trial", "20230301")]
    client.force_login(reader)
    lobby = client.get(f"/sessions/{session.pk}/").content.decode()
    for secret in ("baseline scan", "unrelated", "20240115", "20240401"):
        assert secret not in lobby and secret not in json.dumps([detail, listed, state])
    assert labels(session_payload(session)["cases"]) == [("", "")] * 3
    organizer_view = _get(client, blinded["organizer"], f"/api/sessions/{session.pk}/").json()
    assert labels(organizer_view["cases"])[0] == ("baseline scan", "20240115")
