"""Every role, a non-member and an anonymous user against every HTTP endpoint: the expected answer
for each cell (issue 8). Websocket message types are covered by tests/collab."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.factories.dicom import ct_bytes, ct_dataset, to_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stow, stow_body

pytestmark = pytest.mark.django_db

ROLES = ("organizer", "reader", "viewer", "outsider", "anonymous")
# Expected status per role, from the most to the least privileged.
READ = (200, 200, 200, 404, 401)
WRITE = (200, 200, 403, 404, 401)
ORGANIZE = (200, 403, 403, 404, 401)
PAGE = (200, 200, 200, 404, 302)
ORGANIZER_PAGE = (200, 403, 403, 404, 302)
ANY_USER = (200, 200, 200, 200, 401)


@dataclass(frozen=True)
class Cell:
    name: str
    method: str
    url: str
    expected: tuple[int, ...]
    body: Any = None
    content_type: str = "application/json"
    page: bool = False  # pages use the browser session; APIs a token


def cells(uids: dict[str, str]) -> list[Cell]:
    study = f"/projects/trial/dicomweb/studies/{uids['study']}"
    series = f"{study}/series/{uids['series']}"
    instance = f"{series}/instances/{uids['sop']}"
    stow_bytes, stow_type = stow_body([ct_bytes()])
    return [
        Cell("QIDO studies", "get", "/projects/trial/dicomweb/studies", READ),
        Cell("QIDO series", "get", f"{study}/series", READ),
        Cell("QIDO instances", "get", "/projects/trial/dicomweb/instances", READ),
        Cell("WADO study", "get", study, READ),
        Cell("WADO instance", "get", instance, READ),
        Cell("WADO metadata", "get", f"{series}/metadata", READ),
        Cell("WADO frames", "get", f"{instance}/frames/1", READ),
        Cell("WADO bulkdata", "get", f"{instance}/bulkdata/7FE00010", READ),
        Cell("rendered", "get", f"{instance}/rendered", READ),
        Cell("frame rendered", "get", f"{instance}/frames/1/rendered", READ),
        Cell("thumbnail", "get", f"{study}/thumbnail", READ),
        Cell("Deep Zoom descriptor", "get", f"/projects/trial/tiles/{uids['sop']}/1.dzi", READ),
        Cell("Deep Zoom tile", "get", f"/projects/trial/tiles/{uids['sop']}/1_files/0/0_0.jpeg", READ),
        Cell("STOW-RS", "post", "/projects/trial/dicomweb/studies", WRITE, stow_bytes, stow_type),
        Cell("project", "get", "/api/projects/trial/", READ),
        Cell("change project", "patch", "/api/projects/trial/", ORGANIZE, {"description": "x"}),
        Cell("members", "get", "/api/projects/trial/members/", READ),
        Cell("add member", "post", "/api/projects/trial/members/", (201, 403, 403, 404, 401), {"username": "viewer", "role": "viewer"}),
        Cell("quarantine", "get", "/api/projects/trial/quarantine/", ORGANIZE),
        Cell("audit log", "get", "/api/projects/trial/audit/", ORGANIZE),
        Cell("audit export", "get", "/api/projects/trial/audit/?export=fhir", ORGANIZE),
        Cell("viewing report", "post", "/api/projects/trial/audit/views/", (201, 201, 201, 404, 401), {"views": [{"study": uids["study"], "opened": True}]}),
        Cell("RECIST evaluate", "post", "/api/recist/evaluate", ANY_USER, {"timepoints": [
            {"label": "baseline", "date": "2024-01-01", "modality": "CT", "slice_thickness_mm": 5,
             "targets": [{"lesion": "T1", "organ": "liver", "nodal": False, "diameter_mm": 20.0, "status": "measured"}],
             "non_target": "absent"}]}),
        Cell("worklist page", "get", "/projects/trial/", PAGE, page=True),
        Cell("viewer page", "get", f"/projects/trial/studies/{uids['study']}/", PAGE, page=True),
        Cell("audit page", "get", "/projects/trial/audit/", ORGANIZER_PAGE, page=True),
    ]


@pytest.fixture
def world(client, team):
    ds = ct_dataset()
    assert stow(client, "trial", [to_bytes(ds)], token_for(team["reader"])).status_code == 200
    return team, {"study": ds.StudyInstanceUID, "series": ds.SeriesInstanceUID, "sop": ds.SOPInstanceUID}


def client_for(team: dict[str, Any], role: str, page: bool) -> tuple[Client, dict[str, str]]:
    client = Client()
    if role == "anonymous":
        return client, {}
    user = team[role]
    if page:
        client.force_login(user)
        return client, {}
    return client, {"HTTP_AUTHORIZATION": f"Token {token_for(user)}"}


def test_permission_matrix(world):
    team, uids = world
    failures = []
    for cell in cells(uids):
        for role, expected in zip(ROLES, cell.expected, strict=True):
            client, auth = client_for(team, role, cell.page)
            body = json.dumps(cell.body) if isinstance(cell.body, dict) else cell.body
            call = getattr(client, cell.method)
            response = call(cell.url, body, content_type=cell.content_type, **auth) if body is not None else call(cell.url, **auth)
            if response.status_code != expected:
                failures.append(f"{cell.name} as {role}: {response.status_code}, expected {expected}")
    assert not failures, "\n".join(failures)


def test_upload_matrix(world):
    team, _ = world
    expected = dict(zip(ROLES, WRITE, strict=True))
    for role in ROLES:
        client, auth = client_for(team, role, page=False)
        response = client.post("/api/projects/trial/upload/", {"f": SimpleUploadedFile("a.dcm", ct_bytes())}, **auth)
        assert response.status_code == expected[role], role
