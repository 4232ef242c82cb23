"""Guessing identifiers (issue 8): a member of project "other" tries valid identifiers of project "trial"
(its study, series, instance, annotation, reading session, trial read and subject, audit log), through
URLs of their own project and directly. Every attempt answers 404, exactly as for an identifier that
does not exist, and leaves an ``access.denied`` entry in the audit trail.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import Client

from annotations import services as annotation_services
from audit.models import Action, AuditEvent, Outcome
from collab import services as collab_services
from tests.collab.conftest import communicator
from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import token_for
from trials import services as trial_services
from viewer.ingest import ingest_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def secrets(team: dict[str, Any]) -> dict[str, Any]:
    """Identifiers of project "trial" that the outsider (organizer of "other") should never reach."""
    project, organizer = team["project"], team["organizer"]
    ds = ct_dataset(PatientID="P-1", StudyDate="20240101")
    assert ingest_bytes(project, to_bytes(ds)).ok
    annotation = annotation_services.create_annotation(
        team["reader"], project, instance_uid=ds.SOPInstanceUID, kind="point", points=[[1, 1]])
    session = collab_services.create_session(organizer, project="trial", title="Board", studies=[ds.StudyInstanceUID],
                                             status="active", participants=[("reader", "reader")])
    trial_services.create_trial(organizer, "trial", name="T", double_read=False)
    access = trial_services.access_trial(organizer, "trial")
    subject = trial_services.add_subject(access, label="S1", patient_id="P-1")
    [read] = trial_services.assign_readers(access, readers=["reader"])
    # the outsider's own project has data and a trial too, so "own project" URLs reach real views
    other = ct_dataset()
    assert ingest_bytes(team["outsider"].memberships.get().project, to_bytes(other)).ok
    trial_services.create_trial(team["outsider"], "other", name="Mine", double_read=False)
    return {"study": ds.StudyInstanceUID, "series": ds.SeriesInstanceUID, "sop": ds.SOPInstanceUID,
            "annotation": annotation.pk, "session": session.pk, "read": read.pk, "subject": subject.pk}


def attempts(s: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(method, URL, page?) of every attempt: the first part through the outsider's own project."""
    out = []
    for slug in ("other", "trial"):  # own project's URLs, then the other project's directly
        web = f"/projects/{slug}/dicomweb/studies/{s['study']}"
        instance = f"{web}/series/{s['series']}/instances/{s['sop']}"
        out += [
            ("get", web, False),  # study
            ("get", f"{web}/metadata", False),
            ("get", f"{web}/series/{s['series']}", False),  # series
            ("get", f"{web}/series/{s['series']}/metadata", False),
            ("get", instance, False),  # instance
            ("get", f"{instance}/frames/1", False),
            ("get", f"{instance}/rendered", False),
            ("get", f"/projects/{slug}/tiles/{s['sop']}/1.dzi", False),
            ("post", f"/api/projects/{slug}/quarantine/{s['sop']}/", False),
            ("get", f"/api/projects/{slug}/annotations/{s['annotation']}/", False),  # annotation
            ("patch", f"/api/projects/{slug}/annotations/{s['annotation']}/", False),
            ("delete", f"/api/projects/{slug}/annotations/{s['annotation']}/", False),
            ("get", f"/api/trials/{slug}/reads/{s['read']}/", False),  # trial
            ("post", f"/api/trials/{slug}/reads/{s['read']}/sign/", False),
            ("get", f"/api/trials/{slug}/subjects/{s['subject']}/adjudication/", False),
            ("get", f"/projects/{slug}/studies/{s['study']}/", True),  # pages
            ("get", f"/projects/{slug}/trial/reads/{s['read']}/", True),
            ("get", f"/projects/{slug}/trial/subjects/{s['subject']}/adjudicate/", True),
        ]
    out += [  # no project in these URLs
        ("get", "/api/projects/trial/audit/", False),  # audit log
        ("get", "/api/projects/trial/audit/?export=csv", False),
        ("get", "/projects/trial/audit/", True),
        ("get", f"/api/sessions/{s['session']}/", False),  # session
        ("get", f"/api/sessions/{s['session']}/annotations/", False),
        ("post", f"/api/sessions/{s['session']}/participants/", False),
        ("get", f"/sessions/{s['session']}/", True),
    ]
    return out


def test_guessed_identifiers_answer_404_and_are_audited(team: dict[str, Any], secrets: dict[str, Any]) -> None:
    outsider = team["outsider"]
    api = Client(HTTP_AUTHORIZATION=f"Token {token_for(outsider)}")
    page = Client()
    page.force_login(outsider)
    failures = []
    for method, url, is_page in attempts(secrets):
        before = AuditEvent.objects.count()
        client = page if is_page else api
        body = {"decision": "release", "reason": "x", "label": "x", "version": 1, "username": "outsider", "role": "reader"}
        response = getattr(client, method)(url, json.dumps(body), content_type="application/json") \
            if method in ("post", "patch") else getattr(client, method)(url)
        if response.status_code != 404:
            failures.append(f"{method.upper()} {url}: {response.status_code}")
            continue
        if not is_page and response.json()["code"] != "not_found":
            failures.append(f"{method.upper()} {url}: {response.json()}")
        logged = AuditEvent.objects.order_by("-id")[: AuditEvent.objects.count() - before]
        if not any(e.action == Action.ACCESS_DENIED and e.actor == outsider and e.outcome == Outcome.FAILURE
                   and e.object_id == url.split("?")[0][:200] for e in logged):  # the trail keeps 200 characters
            failures.append(f"{method.upper()} {url}: 404 but no access.denied entry")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db(transaction=True)  # channels closes old connections around its database calls
def test_a_guessed_session_over_the_websocket_is_refused_and_audited(team: dict[str, Any], secrets: dict[str, Any]) -> None:
    client = Client()
    client.force_login(team["outsider"])
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()

    async def attempt() -> dict[str, Any]:
        comm = communicator(secrets["session"], cookie)
        await comm.connect()
        closed = await comm.receive_output(2)
        await comm.disconnect()
        return closed  # type: ignore[no-any-return]

    assert async_to_sync(attempt)() == {"type": "websocket.close", "code": 4404}
    entry = AuditEvent.objects.filter(action=Action.ACCESS_DENIED).get()
    assert (entry.actor, entry.object_type, entry.object_id, entry.outcome) == (
        team["outsider"], "session", str(secrets["session"]), Outcome.FAILURE)
