"""Every role, a non-member and an anonymous user against every HTTP endpoint: the expected answer
for each cell (issue 8). Websocket message types are in tests/collab/test_ws_matrix.py.

Three matrices, each a table of :class:`Cell` rows (one per endpoint and method) and one expected status
per column:

- project endpoints (viewer, DICOMweb, rendering, projects, annotations, audit): organizer, reader,
  viewer, outsider (a member of another project), anonymous;
- reading sessions (``/api/sessions/...`` and the session pages): the session roles, a project member
  without a seat, an outsider, anonymous;
- trials (``/api/trials/<slug>/...`` and ``/projects/<slug>/trial/...``): the trial's people.

Each cell runs in a savepoint that is rolled back, so cells do not depend on each other's writes.
An API's 4xx answer must be JSON with a ``code`` and a ``detail`` (the reason). :func:`test_every_url_has_a_cell`
fails when a URL pattern has no cell in any matrix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from annotations import services as annotation_services
from collab import services as collab_services
from tests.collab.conftest import crew, make_session  # noqa: F401 - crew is a fixture
from tests.factories.dicom import ct_bytes, ct_dataset, to_bytes
from tests.factories.models import token_for
from tests.trials.conftest import Trial, phantom_files  # noqa: F401 - phantom_files is a fixture
from tests.viewer.dicomweb_helpers import stow, stow_body
from annotations.models import Annotation
from trials import services as trial_services
from trials.models import ReadMark
from viewer import user_presets
from viewer.ingest import ingest_bytes
from viewer.models import Instance

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Cell:
    name: str
    method: str
    url: str
    expected: tuple[int, ...]
    body: Any = None  # a dict (JSON, or form fields when form=True), bytes, or a callable giving one
    content_type: str = "application/json"
    page: bool = False  # pages use the browser session; APIs a token
    form: bool = False  # a browser form (or multipart upload) rather than a JSON body


def _request(cell: Cell, client: Client, auth: dict[str, str]) -> Any:
    call = getattr(client, cell.method)
    body = cell.body() if callable(cell.body) else cell.body
    if body is None:
        return call(cell.url, **auth)
    if cell.form:
        return call(cell.url, body, **auth)
    if isinstance(body, dict | list):
        body = json.dumps(body)
    return call(cell.url, body, content_type=cell.content_type, **auth)


def client_for(user: Any, page: bool) -> tuple[Client, dict[str, str]]:
    client = Client()
    if user is None:
        return client, {}
    if page:
        client.force_login(user)
        return client, {}
    return client, {"HTTP_AUTHORIZATION": f"Token {token_for(user)}"}


def check(cells: Sequence[Cell], rows: Sequence[str], users: dict[str, Any]) -> list[str]:
    """Run every cell for every row (in a rolled-back savepoint); the list of cells that answered wrong."""
    for user in users.values():
        if user is not None:
            token_for(user)  # outside the savepoints
    failures = []
    for cell in cells:
        for row, expected in zip(rows, cell.expected, strict=True):
            with transaction.atomic():
                response = _request(cell, *client_for(users[row], cell.page))
                transaction.set_rollback(True)
            if response.status_code != expected:
                failures.append(f"{cell.name} ({cell.method.upper()} {cell.url}) as {row}: {response.status_code}, expected {expected}")
            elif expected >= 400 and not cell.page:
                body = response.json() if response.get("Content-Type", "").startswith("application/json") else {}
                if not (body.get("code") and body.get("detail")):
                    failures.append(f"{cell.name} as {row}: a {expected} without a JSON reason: {response.content[:200]!r}")
    return failures


# ------------------------------------------------------------------------------------------------
# Project endpoints
# ------------------------------------------------------------------------------------------------

ROLES = ("organizer", "reader", "viewer", "outsider", "anonymous")
# Expected status per role, from the most to the least privileged.
READ = (200, 200, 200, 404, 401)
WRITE = (200, 200, 403, 404, 401)
CREATE = (201, 201, 403, 404, 401)
ORGANIZE = (200, 403, 403, 404, 401)
PAGE = (200, 200, 200, 404, 302)
WRITER_PAGE = (200, 200, 403, 404, 302)
ORGANIZER_PAGE = (200, 403, 403, 404, 302)
ANY_USER = (200, 200, 200, 200, 401)
ANY_USER_PAGE = (200, 200, 200, 200, 302)
# An instance in quarantine (possible burned-in text): organizers only; for the others it does not exist.
HELD = (200, 404, 404, 404, 401)

RECIST_BODY = {"timepoints": [
    {"label": "baseline", "date": "2024-01-01", "modality": "CT", "slice_thickness_mm": 5,
     "targets": [{"lesion": "T1", "organ": "liver", "nodal": False, "diameter_mm": 20.0, "status": "measured"}],
     "non_target": "absent"}]}


def project_cells(ids: dict[str, Any]) -> list[Cell]:
    web = "/projects/trial/dicomweb"
    study = f"{web}/studies/{ids['study']}"
    series = f"{study}/series/{ids['series']}"
    instance = f"{series}/instances/{ids['sop']}"
    stow_bytes, stow_type = stow_body([ct_bytes()])
    stow_study_bytes, stow_study_type = stow_body([ct_bytes(StudyInstanceUID=ids["study"])])
    annotation = f"/api/projects/trial/annotations/{ids['annotation']}/"
    new_annotation = {"instance": ids["sop"], "kind": "length", "points": [[1, 1], [5, 5]]}
    return [
        # DICOMweb: QIDO-RS
        Cell("QIDO studies", "get", f"{web}/studies", READ),
        Cell("QIDO all series", "get", f"{web}/series", READ),
        Cell("QIDO all instances", "get", f"{web}/instances", READ),
        Cell("QIDO series of a study", "get", f"{study}/series", READ),
        Cell("QIDO instances of a study", "get", f"{study}/instances", READ),
        Cell("QIDO instances of a series", "get", f"{series}/instances", READ),
        # DICOMweb: WADO-RS
        Cell("WADO study", "get", study, READ),
        Cell("WADO series", "get", series, READ),
        Cell("WADO instance", "get", instance, READ),
        Cell("WADO study metadata", "get", f"{study}/metadata", READ),
        Cell("WADO series metadata", "get", f"{series}/metadata", READ),
        Cell("WADO instance metadata", "get", f"{instance}/metadata", READ),
        Cell("WADO frames", "get", f"{instance}/frames/1", READ),
        Cell("WADO bulkdata", "get", f"{instance}/bulkdata/7FE00010", READ),
        # DICOMweb: STOW-RS
        Cell("STOW-RS", "post", f"{web}/studies", WRITE, stow_bytes, stow_type),
        Cell("STOW-RS into a study", "post", study, WRITE, stow_study_bytes, stow_study_type),
        # rendered resources, thumbnails, Deep Zoom
        Cell("rendered", "get", f"{instance}/rendered", READ),
        Cell("frame rendered", "get", f"{instance}/frames/1/rendered", READ),
        Cell("study thumbnail", "get", f"{study}/thumbnail", READ),
        Cell("series thumbnail", "get", f"{series}/thumbnail", READ),
        Cell("instance thumbnail", "get", f"{instance}/thumbnail", READ),
        Cell("Deep Zoom descriptor", "get", f"/projects/trial/tiles/{ids['sop']}/1.dzi", READ),
        # the tag browser of an instance
        Cell("instance tags", "get", f"/projects/trial/instances/{ids['sop']}/tags", READ),
        # reformatted planes (MPR) of a series and their description
        Cell("MPR plane", "get", f"/projects/trial/series/{ids['series']}/mpr/sagittal/0", READ),
        Cell("MPR description", "get", f"/projects/trial/series/{ids['series']}/mpr/coronal", READ),
        Cell("Deep Zoom tile", "get", f"/projects/trial/tiles/{ids['sop']}/1_files/0/0_0.jpeg", READ),
        # projects and members
        Cell("my projects", "get", "/api/projects/", ANY_USER),
        # creating a project needs a staff user; none of these is staff
        Cell("create project", "post", "/api/projects/", (403, 403, 403, 403, 401), {"slug": "new", "name": "New"}),
        Cell("project", "get", "/api/projects/trial/", READ),
        Cell("change project", "patch", "/api/projects/trial/", ORGANIZE, {"description": "x"}),
        Cell("members", "get", "/api/projects/trial/members/", READ),
        Cell("add member", "post", "/api/projects/trial/members/", (201, 403, 403, 404, 401), {"username": "outsider", "role": "viewer"}),
        Cell("upload", "post", "/api/projects/trial/upload/", WRITE,
             lambda: {"f": SimpleUploadedFile("a.dcm", ct_bytes())}, form=True),
        Cell("quarantine", "get", "/api/projects/trial/quarantine/", ORGANIZE),
        Cell("quarantine decision", "post", f"/api/projects/trial/quarantine/{ids['held']}/", ORGANIZE,
             {"decision": "release", "reason": "no text on it"}),
        Cell("window presets", "get", "/api/presets/?modality=CT", ANY_USER),
        # a user's own presets (the reader owns ids["preset"]): anyone signed in has theirs, nobody another's
        Cell("my presets", "get", "/api/me/presets/", ANY_USER),
        Cell("add my preset", "post", "/api/me/presets/", (201, 201, 201, 201, 401),
             {"modality": "CT", "label": "Lung wide", "center": -550, "width": 1700}),
        Cell("change my preset", "patch", f"/api/me/presets/{ids['preset']}/", (404, 200, 404, 404, 401), {"label": "x"}),
        Cell("delete my preset", "delete", f"/api/me/presets/{ids['preset']}/", (404, 204, 404, 404, 401)),
        Cell("order my presets", "post", "/api/me/presets/order/", (404, 200, 404, 404, 401), {"ids": [ids["preset"]]}),
        # annotations (outside sessions); the reader wrote ids["annotation"]
        Cell("annotations", "get", "/api/projects/trial/annotations/", READ),
        Cell("create annotation", "post", "/api/projects/trial/annotations/", CREATE, new_annotation),
        Cell("annotation", "get", annotation, READ),
        # its author (the reader) and organizers change it
        Cell("change annotation", "patch", annotation, WRITE, {"version": 1, "label": "x"}),
        Cell("delete annotation", "delete", annotation, (204, 204, 403, 404, 401)),
        # the study's marks exported from the viewer: downloaded by any member, stored by readers
        Cell("export marks CSV", "get", f"/api/projects/trial/annotations/export/?study={ids['study']}&as=csv", READ),
        Cell("export marks SR", "get", f"/api/projects/trial/annotations/export/?study={ids['study']}&as=sr", READ),
        Cell("store marks SR", "post", "/api/projects/trial/annotations/export/", CREATE, {"study": ids["study"]}),
        # an instance in quarantine: everything that reaches its pixels answers as for an unknown one
        *held_cells(ids),
        Cell("RECIST evaluate", "post", "/api/recist/evaluate", ANY_USER, RECIST_BODY),
        # audit
        Cell("audit log", "get", "/api/projects/trial/audit/", ORGANIZE),
        Cell("audit export FHIR", "get", "/api/projects/trial/audit/?export=fhir", ORGANIZE),
        Cell("audit export CSV", "get", "/api/projects/trial/audit/?export=csv", ORGANIZE),
        Cell("viewing report", "post", "/api/projects/trial/audit/views/", (201, 201, 201, 404, 401),
             {"views": [{"study": ids["study"], "opened": True}]}),
        # pages
        Cell("home page", "get", "/", ANY_USER_PAGE, page=True),
        Cell("worklist page", "get", "/projects/trial/", PAGE, page=True),
        Cell("upload page", "get", "/projects/trial/upload/", WRITER_PAGE, page=True),
        Cell("viewer page", "get", f"/projects/trial/studies/{ids['study']}/", PAGE, page=True),
        Cell("members page", "get", "/projects/trial/members/", ORGANIZER_PAGE, page=True),
        Cell("members page: add", "post", "/projects/trial/members/", (302, 403, 403, 404, 302),
             {"username": "outsider", "role": "viewer"}, page=True, form=True),
        Cell("audit page", "get", "/projects/trial/audit/", ORGANIZER_PAGE, page=True),
    ]


def held_cells(ids: dict[str, Any]) -> list[Cell]:
    held = f"/projects/trial/dicomweb/studies/{ids['study']}/series/{ids['held_series']}/instances/{ids['held']}"
    on_held = {"instance": ids["held"], "kind": "point", "points": [[2, 2]]}
    on_nothing = {"instance": "1.2.3.4.5.6.7.8.9", "kind": "point", "points": [[2, 2]]}
    return [
        Cell("held: WADO instance", "get", held, HELD),
        Cell("held: WADO metadata", "get", f"{held}/metadata", HELD),
        Cell("held: WADO frames", "get", f"{held}/frames/1", HELD),
        Cell("held: rendered", "get", f"{held}/rendered", HELD),
        Cell("held: frame rendered", "get", f"{held}/frames/1/rendered", HELD),
        Cell("held: instance thumbnail", "get", f"{held}/thumbnail", HELD),
        # thumbnails stand in lists that every member sees: never a quarantined image, for nobody
        Cell("held: series thumbnail", "get", f"{held.rsplit('/instances/', 1)[0]}/thumbnail", (404, 404, 404, 404, 401)),
        Cell("held: MPR plane", "get", f"/projects/trial/series/{ids['held_series']}/mpr/axial/1", HELD),
        Cell("held: MPR description", "get", f"/projects/trial/series/{ids['held_series']}/mpr/axial", HELD),
        Cell("held: instance tags", "get", f"/projects/trial/instances/{ids['held']}/tags", HELD),
        Cell("held: Deep Zoom descriptor", "get", f"/projects/trial/tiles/{ids['held']}/1.dzi", HELD),
        Cell("held: Deep Zoom tile", "get", f"/projects/trial/tiles/{ids['held']}/1_files/0/0_0.jpeg", HELD),
        # measuring it (HU statistics, a point's value) reads its pixels: refused as for an unknown UID
        Cell("held: create annotation", "post", "/api/projects/trial/annotations/", (201, 400, 403, 404, 401), on_held),
        Cell("unknown: create annotation", "post", "/api/projects/trial/annotations/", (400, 400, 403, 404, 401), on_nothing),
        Cell("held: annotation on it", "get", f"/api/projects/trial/annotations/{ids['held_annotation']}/", HELD),
        Cell("held: change annotation on it", "patch", f"/api/projects/trial/annotations/{ids['held_annotation']}/",
             HELD, {"version": 1, "label": "x"}),
    ]


def two_slices(**uids: str) -> list[Any]:
    """Two axial slices 1 mm apart: a series that can be reformatted."""
    first = ct_dataset(ImagePositionPatient=[0, 0, 0], ImageOrientationPatient=[1, 0, 0, 0, 1, 0], PixelSpacing=[1, 1],
                       **uids)
    second = ct_dataset(ImagePositionPatient=[0, 0, 1], ImageOrientationPatient=[1, 0, 0, 0, 1, 0], PixelSpacing=[1, 1],
                        StudyInstanceUID=first.StudyInstanceUID, SeriesInstanceUID=first.SeriesInstanceUID)
    return [first, second]


@pytest.fixture
def world(client, team):
    ds, other = two_slices()
    assert stow(client, "trial", [to_bytes(ds), to_bytes(other)], token_for(team["reader"])).status_code == 200
    held, held_too = two_slices(StudyInstanceUID=ds.StudyInstanceUID)  # images held for an organizer's review
    assert stow(client, "trial", [to_bytes(held), to_bytes(held_too)], token_for(team["reader"])).status_code == 200
    Instance.objects.filter(sop_instance_uid__in=[held.SOPInstanceUID, held_too.SOPInstanceUID]).update(
        quarantined=True, quarantine_reasons=["test"])
    annotation = annotation_services.create_annotation(
        team["reader"], team["project"], instance_uid=ds.SOPInstanceUID, kind="point", points=[[2, 2]])
    on_held = annotation_services.create_annotation(
        team["organizer"], team["project"], instance_uid=held.SOPInstanceUID, kind="point", points=[[2, 2]])
    preset = user_presets.create_preset(team["reader"], {"modality": "CT", "label": "Mine", "center": 40, "width": 400})
    ids = {"study": ds.StudyInstanceUID, "series": ds.SeriesInstanceUID, "sop": ds.SOPInstanceUID,
           "held": held.SOPInstanceUID, "held_series": held.SeriesInstanceUID, "annotation": annotation.pk,
           "held_annotation": on_held.pk, "preset": preset["id"]}
    return team, ids


def test_project_matrix(world):
    team, ids = world
    users = {role: team.get(role) for role in ROLES}
    failures = check(project_cells(ids), ROLES, users)
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------------------------
# Reading sessions
# ------------------------------------------------------------------------------------------------

#: The session's organizer (a project organizer, seated as presenter); a presenter who does not
#: organize; a reader; an adjudicator; an observer (a project viewer); a project member without a
#: seat; a member of another project; nobody.
SEATS = ("organizer", "presenter", "reader", "adjudicator", "observer", "member", "outsider", "anonymous")
CREW = {"organizer": "org", "presenter": "r2", "reader": "r1", "adjudicator": "adj", "observer": "watcher",
        "member": "member", "outsider": "outsider", "anonymous": None}
SEATED = (200, 200, 200, 200, 200, 403, 404, 401)
MANAGE = (200, 403, 403, 403, 403, 403, 404, 401)
SEATED_PAGE = (200, 200, 200, 200, 200, 403, 404, 302)
ANY_SEAT = (200, 200, 200, 200, 200, 200, 200, 401)
ANY_SEAT_PAGE = (200, 200, 200, 200, 200, 200, 200, 302)
# Creating needs the organizer role in the project (the others are readers, or a viewer).
PROJECT_ORGANIZER = (201, 403, 403, 403, 403, 403, 404, 401)
PROJECT_ORGANIZER_PAGE = (200, 403, 403, 403, 403, 403, 404, 302)
# An open invitation: any member of the project may follow it; for anyone else it does not exist.
PROJECT_MEMBER_PAGE = (200, 200, 200, 200, 200, 200, 404, 302)


def session_cells(ids: dict[str, Any]) -> list[Cell]:
    api = f"/api/sessions/{ids['session']}/"
    new = {"project": "trial", "title": "Board", "studies": [ids["study"]]}
    return [
        Cell("my sessions", "get", "/api/sessions/", ANY_SEAT),
        Cell("create session", "post", "/api/sessions/", PROJECT_ORGANIZER, new),
        Cell("session", "get", api, SEATED),
        Cell("change session", "patch", api, MANAGE, {"title": "Renamed"}),
        Cell("participants", "get", f"{api}participants/", SEATED),
        Cell("seat a participant", "post", f"{api}participants/", (201, *MANAGE[1:]), {"username": "member", "role": "reader"}),
        Cell("unseat a participant", "delete", f"{api}participants/r1/", (204, *MANAGE[1:])),
        Cell("close", "post", f"{api}close/", MANAGE),
        Cell("invitations", "get", f"{api}invitations/", MANAGE),
        Cell("invite", "post", f"{api}invitations/", (201, *MANAGE[1:]), {"role": "observer"}),
        Cell("revoke invitation", "delete", f"{api}invitations/{ids['invitation']}/", (204, *MANAGE[1:])),
        Cell("session annotations", "get", f"{api}annotations/", SEATED),
        Cell("session chat export", "get", f"{api}chat/?as=csv", SEATED),
        # The reader's mark: the organizer deletes any, the author their own; the presenter does not
        # see it when blinded; an observer does not annotate.
        Cell("delete a session annotation", "delete", f"{api}annotations/{ids['mark']}/",
             (204, 404 if ids.get("mode") == "blinded" else 403, 204, 403, 403, 403, 404, 401)),
        Cell("session list page", "get", "/sessions/", ANY_SEAT_PAGE, page=True),
        Cell("new session page", "get", "/sessions/new?project=trial", PROJECT_ORGANIZER_PAGE, page=True),
        Cell("new session page: create", "post", "/sessions/new?project=trial",
             (302, *PROJECT_ORGANIZER_PAGE[1:]), {"title": "Board", "studies": [ids["study"]], "mode": "open"},
             page=True, form=True),
        Cell("invitation page", "get", f"/sessions/join/{ids['token']}", PROJECT_MEMBER_PAGE, page=True),
        Cell("invitation page: join", "post", f"/sessions/join/{ids['token']}",
             (302, 302, 302, 302, 302, 302, 404, 302), {}, page=True, form=True),
        Cell("lobby page", "get", f"/sessions/{ids['session']}/", SEATED_PAGE, page=True),
    ]


def seat_crew(crew: dict[str, Any], mode: str) -> tuple[Any, dict[str, Any]]:
    """A session of ``mode`` with every seat of SEATS, an invitation, and one annotation by each of the
    presenter (r2) and the reader (r1)."""
    session = make_session(crew, mode=mode, status="active")
    access = collab_services.access_session(crew["org"], session.pk)
    collab_services.seat_participant(access, "r2", "presenter")
    invitation = collab_services.create_invitation(access, role="observer")
    marks = {
        who: annotation_services.create_annotation(
            crew[who], crew["project"], instance_uid=crew["instance"], kind="point", points=[[1, 1]], session_id=session.pk).pk
        for who in ("r1", "r2")
    }
    ids = {"session": session.pk, "study": crew["study"], "invitation": invitation.pk,
           "token": collab_services.invitation_token(invitation), "mark": marks["r1"], "mode": mode}
    return session, ids


@pytest.mark.parametrize("mode", ["open", "blinded"])
def test_session_matrix(crew, mode):
    _, ids = seat_crew(crew, mode)
    users = {seat: crew[name] if name else None for seat, name in CREW.items()}
    failures = check(session_cells(ids), SEATS, users)
    assert not failures, "\n".join(failures)


#: Where the modes differ: how many of the session's two annotations (by the presenter and by a
#: reader) each seat sees. Blinded: the organizer and adjudicators see all, everyone else their own.
VISIBLE = {
    "open": {"organizer": 2, "presenter": 2, "reader": 2, "adjudicator": 2, "observer": 2},
    "blinded": {"organizer": 2, "presenter": 1, "reader": 1, "adjudicator": 2, "observer": 0},
}


@pytest.mark.parametrize("mode", ["open", "blinded"])
def test_session_annotations_by_mode(crew, mode):
    session, _ = seat_crew(crew, mode)
    seen = {}
    for seat, count in VISIBLE[mode].items():
        client, auth = client_for(crew[CREW[seat]], page=False)
        annotations = client.get(f"/api/sessions/{session.pk}/annotations/", **auth).json()["annotations"]
        seen[seat] = len(annotations)
        if mode == "blinded" and count == 1:
            assert {a["author"] for a in annotations} == {CREW[seat]}, seat
    assert seen == VISIBLE[mode]


# ------------------------------------------------------------------------------------------------
# Trials
# ------------------------------------------------------------------------------------------------

#: The organizer; the reader whose read the cells name; the other reader of the subject; the trial's
#: adjudicator (a project reader); a project viewer; a member of another project; nobody.
PEOPLE = ("organizer", "reader", "reader2", "adjudicator", "viewer", "outsider", "anonymous")
MEMBERS = (200, 200, 200, 200, 200, 404, 401)
MEMBERS_PAGE = (200, 200, 200, 200, 200, 404, 302)
TRIAL_ORGANIZER = (200, 403, 403, 403, 403, 404, 401)
RESULTS = (200, 403, 403, 200, 403, 404, 401)  # organizers and adjudicators see results
# A draft read is seen by its reader and organizers; the others are told it does not exist.
OWN_DRAFT = (200, 200, 404, 404, 404, 404, 401)
OWN_DRAFT_PAGE = (200, 200, 404, 404, 404, 404, 302)
# A signed read is seen by adjudicators too; still not by the other reader (blinding).
SIGNED = (200, 200, 404, 200, 404, 404, 401)
# Only the reader changes their draft; the organizer sees it but may not change it.
DRAFT_WRITE = (403, 200, 404, 404, 404, 404, 401)
SUBJECT = (200, 404, 404, 200, 404, 404, 401)  # subjects: organizers and adjudicators
SUBJECT_PAGE = (200, 404, 404, 200, 404, 404, 302)


def trial_cells(ids: dict[str, Any], state: str) -> list[Cell]:
    """Every trial endpoint in one of three states of the subject: ``draft`` (the reader has done but not
    signed their read), ``disagreed`` (both reads signed, they disagree) and ``agreed`` (both signed and
    agreeing: the reads are locked)."""
    api, page = "/api/trials/trial/", "/projects/trial/trial/"
    read = f"{api}reads/{ids['read']}/"
    lesion = f"{read}lesions/{ids['lesion']}/"
    subject = f"{api}subjects/{ids['subject']}/adjudication/"
    adjudication = {"read": ids["read"], "reason": "the reader saw the new lesion"}
    draft, disagreed = state == "draft", state == "disagreed"
    # a signed read no longer changes: 409 for its reader; adjudicators see it but do not change it
    write = DRAFT_WRITE if draft else (403, 409, 404, 403, 404, 404, 401)
    return [
        Cell("trial", "get", api, MEMBERS),
        Cell("create trial (there is one)", "post", api, (409, 403, 403, 403, 403, 404, 401), {"name": "Again"}),
        Cell("add subject", "post", f"{api}subjects/", (201, 403, 403, 403, 403, 404, 401),
             {"label": "S002", "patient_id": "P-2"}),
        Cell("assign readers", "post", f"{api}assign/", (201, 403, 403, 403, 403, 404, 401), {"readers": ["reader", "reader2"]}),
        Cell("worklist", "get", f"{api}reads/", MEMBERS),
        Cell("read", "get", read, OWN_DRAFT if draft else SIGNED),
        Cell("add lesion", "post", f"{read}lesions/",
             tuple(201 if s == 200 else s for s in write), {"role": "target", "organ": "spleen"}),
        Cell("change lesion", "patch", lesion, write, {"organ": "lung"}),
        Cell("delete lesion", "delete", lesion, tuple(204 if s == 200 else s for s in write)),
        Cell("assess", "put", f"{read}assessments/", write,
             {"lesion": ids["lesion"], "timepoint": ids["baseline"], "status": "present"}),
        Cell("read's marks", "get", f"{read}marks/", OWN_DRAFT if draft else SIGNED),
        Cell("draw a mark for the read", "post", f"{read}marks/", tuple(201 if s == 200 else s for s in write),
             {"instance": ids["read_sop"], "kind": "point", "points": [[10, 10]], "client_ref": "matrix"}),
        Cell("change a mark of the read", "patch", f"{read}marks/{ids['read_mark']}/", write,
             lambda: {"version": Annotation.objects.get(pk=ids["read_mark"]).version, "label": "T1"}),
        Cell("delete a mark of the read", "delete", f"{read}marks/{ids['read_mark']}/", tuple(204 if s == 200 else s for s in write)),
        Cell("sign", "post", f"{read}sign/", write),
        # organizers export locked reads; before that, 409
        Cell("export SR", "post", f"{read}sr/", (409, 403, 404, 404, 404, 404, 401) if draft
             else (409, 403, 404, 403, 404, 404, 401) if disagreed else (200, 403, 404, 403, 404, 404, 401)),
        Cell("adjudication", "get", subject, SUBJECT),
        # adjudicators adjudicate subjects whose signed reads disagree; otherwise 409
        Cell("adjudicate", "post", subject, (403, 404, 404, 201 if disagreed else 409, 404, 404, 401), adjudication),
        # both signed reads' marks, for the adjudication on the images: whoever reaches the subject
        Cell("adjudication marks", "get", f"{subject}marks/", SUBJECT),
        Cell("dashboard", "get", f"{api}dashboard/", RESULTS),
        Cell("CSV export", "get", f"{api}export.csv", TRIAL_ORGANIZER),
        Cell("worklist page", "get", page, MEMBERS_PAGE, page=True),
        Cell("read page", "get", f"{page}reads/{ids['read']}/", OWN_DRAFT_PAGE if draft else (200, 200, 404, 200, 404, 404, 302), page=True),
        Cell("read summary page", "get", f"{page}reads/{ids['read']}/summary/", OWN_DRAFT_PAGE if draft else (200, 200, 404, 200, 404, 404, 302), page=True),
        Cell("adjudication page", "get", f"{page}subjects/{ids['subject']}/adjudicate/", SUBJECT_PAGE, page=True),
        Cell("adjudication page: decide", "post", f"{page}subjects/{ids['subject']}/adjudicate/",
             (403, 404, 404, 302 if disagreed else 409, 404, 404, 302), adjudication, page=True, form=True),
        Cell("adjudication on the images page", "get", f"{page}subjects/{ids['subject']}/adjudicate/images/", SUBJECT_PAGE,
             page=True),
        # results are organizers' and adjudicators'; the page, like its API, answers 403 to other members
        Cell("dashboard page", "get", f"{page}dashboard/", (200, 403, 403, 200, 403, 404, 302), page=True),
    ]


@pytest.fixture
def trial_world(request, team, phantom_files):
    handles = Trial(team, phantom_files["truth"])
    for tp in ("baseline", "followup"):
        for data in phantom_files["files"][tp]:
            assert ingest_bytes(handles.project, data).ok
    # another patient, for the "add subject" cell
    assert ingest_bytes(handles.project, ct_bytes(PatientID="P-2", StudyDate="20240301")).ok
    trial_services.create_trial(handles.organizer, "trial", name="Phantom trial", adjudicators=["adjudicator"])
    access = handles.access(handles.organizer)
    trial_services.add_subject(access, label="S001", patient_id="PHANTOM-001")
    trial_services.assign_readers(access, readers=["reader", "reader2"])
    read = handles.do_read(handles.reader1)
    state = request.param
    if state != "draft":
        handles.do_read(handles.reader2, new_lesion=state == "agreed")
        for user in (handles.reader1, handles.reader2):
            trial_services.sign_read(handles.access(user), handles.read_of(user))
    non_target = read.lesions.get(identifier="NT1")
    mark = ReadMark.objects.filter(read=read).select_related("annotation__instance").first()
    ids = {"read": read.pk, "lesion": non_target.pk, "subject": read.subject_id,
           "baseline": read.subject.timepoints.get(order=0).pk, "read_mark": mark.annotation_id,
           "read_sop": mark.annotation.instance.sop_instance_uid}
    users = {"organizer": handles.organizer, "reader": handles.reader1, "reader2": handles.reader2,
             "adjudicator": handles.adjudicator, "viewer": handles.viewer, "outsider": handles.outsider, "anonymous": None}
    return state, ids, users


@pytest.mark.parametrize("trial_world", ["draft", "disagreed", "agreed"], indirect=True)
def test_trial_matrix(trial_world):
    state, ids, users = trial_world
    failures = check(trial_cells(ids, state), PEOPLE, users)
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------------------------
# Every URL pattern has a cell
# ------------------------------------------------------------------------------------------------

#: URL patterns that no matrix covers, each with its reason. Anything else must have a cell.
EXEMPT = {
    "admin/": "Django's admin: staff only, guarded by Django itself",
    "accounts/": "login, logout and password views of django.contrib.auth (tests/test_security.py)",
    "api/health/": "the health check: public by design, says nothing about projects",
}


def url_routes(patterns: Sequence[URLPattern | URLResolver], prefix: str = "") -> list[str]:
    """Every route of the URL configuration, its include prefixes joined."""
    routes = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            routes += url_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            routes.append(prefix + str(pattern.pattern))
    return routes


def covered_routes() -> set[str]:
    ids: dict[str, Any] = dict.fromkeys(
        ("study", "series", "sop", "held", "held_series", "held_annotation", "annotation", "session", "invitation", "token", "mark", "read", "lesion",
         "subject", "baseline", "read_mark", "read_sop", "preset"), "1")
    cells: list[Cell] = [*project_cells(ids), *session_cells(ids), *trial_cells(ids, "draft")]
    return {resolve(cell.url.split("?")[0]).route for cell in cells}


def test_every_url_has_a_cell():
    missing = [route for route in url_routes(get_resolver().url_patterns)
               if not route.startswith(tuple(EXEMPT)) and route not in covered_routes()]
    assert not missing, "URL patterns without a cell in a permission matrix:\n" + "\n".join(missing)


def test_the_coverage_check_sees_every_pattern():
    """The check above would notice a pattern with no cell (it is not vacuous)."""
    routes = url_routes(get_resolver().url_patterns)
    assert "api/sessions/<str:session_id>/invitations/<str:invitation_id>/" in routes
    assert "projects/<slug:slug>/dicomweb/studies/<str:study>/series/<str:series>/thumbnail" in routes
    assert len([r for r in routes if not r.startswith(tuple(EXEMPT))]) == len(covered_routes())
