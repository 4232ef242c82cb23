"""The viewer's exports of a study's marks: the measurement table as CSV and as DICOM SR TID 1500
(downloaded, or stored in the archive), with the viewer's visibility and the audit trail."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from annotations import services
from audit.models import AuditEvent
from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import token_for
from viewer.ingest import ingest_bytes
from viewer.models import Instance

pytestmark = pytest.mark.django_db

PIXELS = (np.arange(64 * 64, dtype="<i2").reshape(64, 64) % 200).tobytes()


@pytest.fixture
def study(team: dict[str, Any]) -> dict[str, Any]:
    """A study of two series (three slices, then one), marks by the reader on slice 3 of series 1 and on
    series 2, and the organizer's mark; returns the UIDs."""
    uid = generate_uid()
    first, second = generate_uid(), generate_uid()
    sops = []
    for series, number, instance in ((first, 1, 3), (first, 1, 1), (first, 1, 2), (second, 2, 1)):
        ds = ct_dataset(StudyInstanceUID=uid, SeriesInstanceUID=series, SeriesNumber=number, InstanceNumber=instance,
                        Rows=64, Columns=64, PixelData=PIXELS, PixelSpacing=[0.5, 0.5], PatientName="Doe^Jane",
                        PatientBirthDate="19700101", PatientSex="F")
        assert ingest_bytes(team["project"], to_bytes(ds)).ok
        sops.append(ds.SOPInstanceUID)
    reader, project = team["reader"], team["project"]
    length = services.create_annotation(reader, project, instance_uid=sops[0], kind="length", points=[[10, 10], [30, 10]],
                                        label="=HYPERLINK(\"x\")")
    ellipse = services.create_annotation(reader, project, instance_uid=sops[3], kind="ellipse", points=[[10, 10], [30, 20]],
                                         label="liver")
    theirs = services.create_annotation(team["organizer"], project, instance_uid=sops[1], kind="point", points=[[5, 5]])
    return {**team, "study": uid, "series": (first, second), "sops": sops, "length": length, "ellipse": ellipse,
            "theirs": theirs}


def _get(client, user, path: str):
    return client.get(path, HTTP_AUTHORIZATION=f"Token {token_for(user)}")


def _rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_the_csv_lists_every_visible_mark_with_its_place_value_and_author(client, study, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _get(client, study["viewer"], f"/api/projects/trial/annotations/export/?study={study['study']}&as=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _rows(response)
    assert [(r["kind"], r["series_number"], r["image"], r["images"]) for r in rows] == [
        ("point", "1", "1", "3"), ("length", "1", "3", "3"), ("ellipse", "2", "1", "1")]
    length = rows[1]
    assert (length["value"], length["unit"], length["author"], length["instance_number"]) == ("10.0", "mm", "reader", "3")
    assert length["label"] == "'=HYPERLINK(\"x\")"  # a formula is text (crossread.csvsafe)
    ellipse = rows[2]
    assert ellipse["unit"] == "mm²" and float(ellipse["area"]) == pytest.approx(np.pi * 5 * 2.5, abs=0.1)
    assert ellipse["mean"] != ""
    assert "Doe" not in response.content.decode()  # no patient data in the table
    event = AuditEvent.objects.filter(action="export", object_id=study["study"]).get()
    assert event.detail["format"] == "csv" and event.actor == study["viewer"]


def test_the_exports_show_what_the_viewer_shows_and_no_more(client, study):
    project = study["project"]
    project.private_annotations = True
    project.save()
    rows = _rows(_get(client, study["reader"], f"/api/projects/trial/annotations/export/?study={study['study']}&as=csv"))
    assert {r["author"] for r in rows} == {"reader"}  # private marks: one's own
    Instance.objects.filter(sop_instance_uid=study["sops"][3]).update(quarantined=True)
    rows = _rows(_get(client, study["reader"], f"/api/projects/trial/annotations/export/?study={study['study']}&as=csv"))
    assert [r["kind"] for r in rows] == ["length"]  # nothing on an image in quarantine
    assert len(_rows(_get(client, study["organizer"], f"/api/projects/trial/annotations/export/?study={study['study']}&as=csv"))) == 3
    assert _get(client, study["outsider"], f"/api/projects/trial/annotations/export/?study={study['study']}&as=csv").status_code == 404
    assert _get(client, study["reader"], "/api/projects/trial/annotations/export/?study=1.2.3&as=csv").status_code == 404
    assert _get(client, study["reader"], f"/api/projects/trial/annotations/export/?study={study['study']}&as=x").status_code == 400


def test_the_sr_is_a_tid_1500_report_of_the_marks_downloaded_or_stored(client, study, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _get(client, study["reader"], f"/api/projects/trial/annotations/export/?study={study['study']}&as=sr")
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.StudyInstanceUID == study["study"] and ds.Modality == "SR" and ds.PatientName == "Doe^Jane"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    groups = [item for item in ds.ContentSequence if item.ValueType == "CONTAINER"][0].ContentSequence
    assert len(groups) == 3
    text = str(ds)
    assert "liver" in text and "Long axis" not in text
    lengths = [item for group in groups for item in group.ContentSequence
               if item.ValueType == "NUM" and item.ConceptNameCodeSequence[0].CodeMeaning == "Length"]
    assert float(lengths[0].MeasuredValueSequence[0].NumericValue) == 10.0
    assert lengths[0].ContentSequence[0].GraphicType == "POLYLINE"
    assert "ELLIPSE" in text

    with django_capture_on_commit_callbacks(execute=True):
        stored = client.post("/api/projects/trial/annotations/export/", {"study": study["study"]},
                             content_type="application/json", HTTP_AUTHORIZATION=f"Token {token_for(study['reader'])}")
    assert stored.status_code == 201, stored.content
    body = stored.json()
    assert body["study"] == study["study"] and body["marks"] == 3
    report = Instance.objects.select_related("series").get(sop_instance_uid=body["sop"])
    assert report.series.modality == "SR" and report.series.series_instance_uid == body["series"]
    assert client.post("/api/projects/trial/annotations/export/", {"study": study["study"]}, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Token {token_for(study['viewer'])}").status_code == 403
    assert AuditEvent.objects.filter(action="export", object_id=study["study"], detail__format="DICOM SR").count() == 2


def test_no_marks_no_report(client, team):
    ds = ct_dataset()
    assert ingest_bytes(team["project"], to_bytes(ds)).ok
    response = _get(client, team["reader"], f"/api/projects/trial/annotations/export/?study={ds.StudyInstanceUID}&as=sr")
    assert response.status_code == 409 and response.json()["code"] == "conflict"
