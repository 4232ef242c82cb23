"""The audit trail: exactly the expected entries per action, append-only, FHIR AuditEvent export."""

from __future__ import annotations

import csv
import io
import json

import pytest

from audit import fhir
from audit.models import AppendOnly, AuditEvent
from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stow

pytestmark = pytest.mark.django_db(transaction=True)


def actions() -> list[tuple[str, str, str]]:
    return [(e.actor_name, e.action, e.outcome) for e in AuditEvent.objects.order_by("id")]


@pytest.fixture
def study(client, team):
    ds = ct_dataset()
    assert stow(client, "trial", [to_bytes(ds)], token_for(team["reader"])).status_code == 200
    AuditEvent.objects.all()  # the upload is logged too; tests below start from a clean slate
    return ds


def test_scripted_session_leaves_exactly_its_entries(client, team, study):
    start = AuditEvent.objects.count()
    assert client.post("/accounts/login/", {"username": "reader", "password": "wrong"}).status_code == 200
    assert client.post("/accounts/login/", {"username": "reader", "password": "pw-reader-123!"}).status_code == 302
    views = {"views": [
        {"study": study.StudyInstanceUID, "opened": True},
        {"study": study.StudyInstanceUID, "series": study.SeriesInstanceUID, "first_slice": 1, "last_slice": 1, "seconds": 12.5},
    ]}
    assert client.post("/api/projects/trial/audit/views/", views, content_type="application/json").status_code == 201
    url = f"/projects/trial/dicomweb/studies/{study.StudyInstanceUID}"
    assert client.get(url, HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=*').status_code == 200
    mark = {"instance": study.SOPInstanceUID, "frame": 1, "kind": "length", "points": [[1, 1], [9, 1]]}
    created = client.post("/api/projects/trial/annotations/", mark, content_type="application/json")
    assert created.status_code == 201, created.content
    assert client.post("/accounts/logout/").status_code == 302
    events = list(AuditEvent.objects.order_by("id"))[start:]
    assert [(e.actor_name, e.action, e.outcome) for e in events] == [
        ("reader", "login.failed", "failure"),
        ("reader", "login", "success"),
        ("reader", "study.opened", "success"),
        ("reader", "series.viewed", "success"),
        ("reader", "download", "success"),
        ("reader", "annotation.created", "success"),
        ("reader", "logout", "success"),
    ]
    viewed = events[3]
    assert viewed.object_id == study.SeriesInstanceUID and viewed.project == "trial"
    assert viewed.detail["seconds"] == 12.5 and viewed.detail["last_slice"] == 1
    assert events[4].object_id == study.StudyInstanceUID and events[4].detail == {"instances": 1}
    assert events[5].object_id == str(created.json()["id"]) and events[5].detail["kind"] == "length"
    assert all(e.source_ip == "127.0.0.1" for e in events)
    assert "Test^Patient" not in json.dumps([e.detail for e in events]) and "TEST-1" not in json.dumps([e.detail for e in events])


def test_upload_membership_and_guessing_are_logged(client, team, make_project):
    make_project("secret-project")
    ds = ct_dataset()
    assert stow(client, "trial", [to_bytes(ds)], token_for(team["reader"])).status_code == 200
    upload = AuditEvent.objects.get(action="upload")
    assert upload.actor_name == "reader" and upload.detail["stored"] == 1 and upload.object_id == ds.StudyInstanceUID

    client.force_login(team["organizer"])
    client.post("/api/projects/trial/members/", {"username": "outsider", "role": "viewer"}, content_type="application/json")
    assert AuditEvent.objects.filter(action="membership.changed", object_id="outsider", actor_name="org").count() == 1

    client.force_login(team["outsider"])
    before = AuditEvent.objects.filter(action="access.denied").count()
    assert client.get("/api/projects/secret-project/").status_code == 404
    assert client.get("/projects/other/dicomweb/studies/1.2.3/series").status_code == 404  # their project, a guessed UID
    assert client.get("/projects/secret-project/dicomweb/studies").status_code == 404
    assert client.get("/api/projects/trial/audit/").status_code == 403  # a viewer of trial, not an organizer
    denied = AuditEvent.objects.filter(action="access.denied").order_by("id")[before:]
    assert [e.object_id for e in denied] == [
        "/api/projects/secret-project/",
        "/projects/other/dicomweb/studies/1.2.3/series",
        "/projects/secret-project/dicomweb/studies",
        "/api/projects/trial/audit/",
    ]
    assert all(e.actor_name == "outsider" and e.outcome == "failure" for e in denied)


def test_entries_cannot_be_changed_or_deleted(team):
    from audit.services import record

    record("login", actor=team["reader"])
    event = AuditEvent.objects.get()
    event.action = "logout"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.update(action="logout")
    assert AuditEvent.objects.get().action == "login"


def test_log_is_for_organizers_and_exports_csv_and_fhir(client, team, study):
    client.force_login(team["reader"])
    assert client.get("/api/projects/trial/audit/").status_code == 403
    assert client.get("/projects/trial/audit/").status_code == 403
    client.force_login(team["organizer"])
    listing = client.get("/api/projects/trial/audit/", {"action": "upload"}).json()
    assert listing["count"] == 1 and listing["events"][0]["actor_name"] == "reader"
    assert client.get("/api/projects/trial/audit/", {"action": "bogus"}).status_code == 400
    page = client.get("/projects/trial/audit/")
    assert page.status_code == 200 and b"upload" in page.content

    rows = list(csv.DictReader(io.StringIO(client.get("/api/projects/trial/audit/", {"export": "csv"}).content.decode())))
    assert {r["action"] for r in rows} >= {"upload"}

    bundle = client.get("/api/projects/trial/audit/", {"export": "fhir"}).json()
    assert bundle["resourceType"] == "Bundle" and bundle["entry"]
    for entry in bundle["entry"]:
        assert_valid_audit_event(entry["resource"])
    assert AuditEvent.objects.filter(action="audit.exported").count() == 2  # csv and fhir


def test_every_action_maps_to_a_valid_fhir_audit_event():
    from datetime import datetime, timezone

    from audit.models import Action

    for index, action in enumerate(Action.values):
        event = {"id": index, "at": datetime.now(timezone.utc), "action": action, "outcome": "failure" if index % 2 else "success",
                 "actor_name": "reader1", "project": "demo", "object_type": "study", "object_id": "1.2.3", "source_ip": "10.0.0.1", "detail": {}}
        assert_valid_audit_event(fhir.audit_event(event))


# FHIR R4 AuditEvent: required elements and the codes of its value sets.
DCM_EVENT_IDS = {"110100", "110101", "110102", "110103", "110104", "110105", "110106", "110107", "110108", "110109",
                 "110110", "110111", "110112", "110113", "110114", "110136", "110137"}
REST_TYPES = {"rest"}


def assert_valid_audit_event(resource: dict) -> None:
    assert resource["resourceType"] == "AuditEvent"
    for element in ("type", "recorded", "agent", "source"):
        assert element in resource, element
    coding = resource["type"]
    assert coding["system"] in (fhir.DCM, fhir.AUDIT_EVENT_TYPE)
    assert coding["code"] in (DCM_EVENT_IDS if coding["system"] == fhir.DCM else REST_TYPES)
    for sub in resource.get("subtype", []):
        assert sub["system"] == fhir.DCM and sub["code"] in {"110120", "110121", "110122", "110123", "110124", "110125", "110126", "110127", "110128", "110129", "110130", "110131", "110132", "110133", "110134", "110135", "110136", "110137", "110138", "110139", "110140", "110141", "110142"}
    assert resource["action"] in {"C", "R", "U", "D", "E"}
    assert resource["outcome"] in {"0", "4", "8", "12"}
    assert datetime_like(resource["recorded"])
    assert resource["agent"] and all(isinstance(a["requestor"], bool) and a["who"]["identifier"]["value"] for a in resource["agent"])
    for agent in resource["agent"]:
        if "network" in agent:
            assert agent["network"]["type"] in {"1", "2", "3", "4", "5"}
    assert resource["source"]["observer"]["display"]
    for entity in resource.get("entity", []):
        assert entity["type"]["system"] == fhir.ENTITY_TYPE and entity["type"]["code"] in {"1", "2", "3", "4"}


def datetime_like(text: str) -> bool:
    from datetime import datetime

    return datetime.fromisoformat(text).tzinfo is not None
