"""Ingest into a de-identifying project: PHI never stored, grouping kept, burned-in risks quarantined."""

from __future__ import annotations

import io
import json

import pydicom
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import parts, stow
from demo import corpus
from viewer.models import Instance, PseudonymLink
from viewer.storage import object_store

pytestmark = pytest.mark.django_db

FILES = [
    ("pydicom-data", "MR2_UNCR.dcm"),
    ("pydicom-data", "MR2_J2KI.dcm"),  # references MR2_UNCR
    ("pydicom", "CT_small.dcm"),
    ("pydicom", "examples_palette.dcm"),  # US: may carry burned-in text
]


@pytest.fixture
def deid_project(team):
    project = team["project"]
    project.deidentification = {"profile": "basic", "options": ["retain-longitudinal-modified-dates"]}
    project.save()
    return project


def test_no_phi_is_stored_and_grouping_is_kept(client, team, deid_project):
    originals = {name: pydicom.dcmread(corpus.file(src, name)) for src, name in FILES}
    raw = [corpus.file(src, name).read_bytes() for src, name in FILES]
    response = stow(client, "trial", raw, token_for(team["reader"]))
    assert response.status_code == 200, response.content

    stored = {i.sop_instance_uid: object_store().read(deid_project.pk, i.sha256) for i in Instance.objects.all()}
    assert len(stored) == len(FILES)
    for original in originals.values():
        phi = [str(original.PatientName), original.PatientID, original.StudyInstanceUID, original.SOPInstanceUID]
        phi += [str(original.get(k)) for k in ("InstitutionName", "ReferringPhysicianName", "AccessionNumber") if original.get(k)]
        for value in filter(lambda v: len(v) >= 4, phi):
            assert all(value.encode() not in data for data in stored.values()), value
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in stored.values()]
    assert all(ds.PatientIdentityRemoved == "YES" for ds in datasets)
    mr = [ds for ds in datasets if ds.Modality == "MR"]
    assert mr[0].StudyInstanceUID == mr[1].StudyInstanceUID  # still one study
    for ds in datasets:  # pixel data byte-identical
        source = next(o for o in originals.values() if o.SOPClassUID == ds.SOPClassUID and o.Rows == ds.Rows and o.Columns == ds.Columns and o.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID)
        assert source.PixelData == ds.PixelData
    link = PseudonymLink.objects.get(original_patient_id=originals["CT_small.dcm"].PatientID)
    assert any(ds.PatientID == link.pseudonym for ds in datasets)

    # Sending the same originals again stores nothing new: de-identification is deterministic.
    assert stow(client, "trial", raw, token_for(team["reader"])).status_code == 200
    assert Instance.objects.count() == len(FILES)
    # QIDO answers carry no original value either.
    body = client.get("/projects/trial/dicomweb/instances", {"includefield": "all"}, HTTP_AUTHORIZATION=f"Token {token_for(team['organizer'])}").content
    assert originals["CT_small.dcm"].PatientID.encode() not in body and b"CT_small" not in body
    # ... nor do the pages (worklist, viewer).
    client.force_login(team["organizer"])
    study = Instance.objects.filter(series__modality="CT").first().series.study
    for url in ("/projects/trial/", f"/projects/trial/studies/{study.study_instance_uid}/"):
        page = client.get(url).content
        for original in originals.values():
            assert str(original.PatientName).encode() not in page and original.PatientID.encode() not in page, url


def test_quarantined_images_are_shown_to_organizers_only(client, team, deid_project):
    raw = corpus.file("pydicom", "examples_palette.dcm").read_bytes()
    assert stow(client, "trial", [raw], token_for(team["reader"])).status_code == 200
    instance = Instance.objects.get()
    assert instance.quarantined and instance.quarantine_reasons
    series = instance.series
    base = f"/projects/trial/dicomweb/studies/{series.study.study_instance_uid}/series/{series.series_instance_uid}/instances/{instance.sop_instance_uid}"
    as_reader = {"HTTP_AUTHORIZATION": f"Token {token_for(team['reader'])}"}
    as_organizer = {"HTTP_AUTHORIZATION": f"Token {token_for(team['organizer'])}"}
    with CaptureQueriesContext(connection) as queries:
        assert json.loads(client.get("/projects/trial/dicomweb/studies", **as_reader).content) == []
    asked = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT 1 AS "a"') and "quarantined" in q["sql"]]
    assert len(asked) == 1  # whether the project holds quarantined images: once per search
    assert json.loads(client.get("/projects/trial/dicomweb/instances", **as_reader).content) == []
    assert client.get(base, **as_reader).status_code == 404
    assert client.get(f"{base}/rendered", **as_reader).status_code == 404
    assert len(json.loads(client.get("/projects/trial/dicomweb/studies", **as_organizer).content)) == 1
    assert len(parts(client.get(base, HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=*', **as_organizer))) == 1
    assert client.get(f"{base}/rendered", **as_organizer).status_code == 200
