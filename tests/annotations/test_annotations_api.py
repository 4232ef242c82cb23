"""The annotations REST API and its services: roles, validation, measurements from stored pixels,
versions and conflicts, idempotent creation, soft deletion, events after commit."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from django.test import Client

from annotations import services
from annotations.geometry import ellipse_mask, roi_stats
from annotations.models import Annotation
from crossread.errors import Conflict
from tests.factories.dicom import ct_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stow
from viewer import rendering

pytestmark = pytest.mark.django_db

ROWS, COLUMNS = 24, 32
# Stored values 0..767 row by row; HU = stored * 2 - 1024.
STORED = np.arange(ROWS * COLUMNS, dtype="<i2").reshape(ROWS, COLUMNS)


@pytest.fixture(autouse=True)
def _empty_caches():
    rendering.FRAME_CACHE.clear()


def _image(**overrides: Any) -> bytes:
    attributes: dict[str, Any] = {
        "Rows": ROWS, "Columns": COLUMNS, "PixelData": STORED.tobytes(), "RescaleSlope": 2,
        "RescaleIntercept": -1024, "PixelSpacing": [0.5, 0.8],
    }
    attributes.update(overrides)
    return ct_bytes(**{key: value for key, value in attributes.items() if value is not None})


@pytest.fixture
def stored(client, team):
    """Images in project 'trial': CT with PixelSpacing, one without spacing, a radiograph with
    ImagerPixelSpacing, and a 3-frame image; returns their SOP Instance UIDs and the study UID."""
    import io

    import pydicom

    study = pydicom.uid.generate_uid()
    files = {
        "ct": _image(StudyInstanceUID=study),
        "nospacing": _image(StudyInstanceUID=study, PixelSpacing=None),
        "imager": _image(StudyInstanceUID=study, PixelSpacing=None, ImagerPixelSpacing=[0.2, 0.2], Modality="DX"),
        "multi": _image(
            StudyInstanceUID=study, NumberOfFrames=3, PixelData=np.concatenate([STORED] * 3).tobytes()
        ),
        "elsewhere": _image(),
    }
    assert stow(client, "trial", list(files.values()), token_for(team["reader"])).status_code == 200
    uids = {name: pydicom.dcmread(io.BytesIO(raw)).SOPInstanceUID for name, raw in files.items()}
    return {"study": study, **uids}


def api(user: Any) -> Client:
    """A client authenticated with the user's token (no CSRF needed)."""
    return Client(HTTP_AUTHORIZATION=f"Token {token_for(user)}")


URL = "/api/projects/trial/annotations/"


def post(client: Client, body: dict[str, Any]) -> Any:
    return client.post(URL, json.dumps(body), content_type="application/json")


def patch(client: Client, pk: int, body: dict[str, Any]) -> Any:
    return client.patch(f"{URL}{pk}/", json.dumps(body), content_type="application/json")


def length(instance: str, points: Any = ((2, 3), (10, 3)), **extra: Any) -> dict[str, Any]:
    return {"instance": instance, "frame": 1, "kind": "length", "points": [list(p) for p in points], **extra}


# ------------------------------------------------------------------------------ measurements


def test_length_in_mm_from_pixel_spacing(team, stored):
    response = post(api(team["reader"]), length(stored["ct"], ((2, 3), (10, 9)), label="lesion"))
    assert response.status_code == 201, response.content
    body = response.json()
    # dx = 8 columns x 0.8 mm, dy = 6 rows x 0.5 mm
    assert body["measurements"] == {
        "kind": "length", "unit": "mm", "calibration": "PixelSpacing", "length": round(np.hypot(6.4, 3.0), 1)
    }
    assert body["version"] == 1 and body["author"] == "reader" and body["label"] == "lesion"
    assert body["instance"] == stored["ct"] and body["study"] == stored["study"] and body["frame"] == 1
    assert body["points"] == [[2.0, 3.0], [10.0, 9.0]]


def test_length_in_pixels_without_spacing_and_imager_spacing_is_noted(team, stored):
    reader = api(team["reader"])
    plain = post(reader, length(stored["nospacing"], ((0, 0), (3, 4)))).json()["measurements"]
    assert plain["unit"] == "px" and plain["calibration"] == "none" and plain["length"] == 5.0
    imager = post(reader, length(stored["imager"], ((0, 0), (10, 0)))).json()["measurements"]
    assert imager["unit"] == "mm" and imager["calibration"] == "ImagerPixelSpacing" and imager["length"] == 2.0


def test_ellipse_statistics_are_modality_values_of_the_stored_pixels(team, stored):
    corners = [[3.2, 4.5], [20.7, 17.1]]
    body = post(api(team["reader"]), {"instance": stored["ct"], "kind": "ellipse", "points": corners}).json()
    hu = STORED.astype(float) * 2 - 1024
    expected = roi_stats(hu, ellipse_mask(corners[0], corners[1], hu.shape))
    stats = body["measurements"]["stats"]
    assert stats["count"] == expected.count > 100
    assert stats["mean"] == round(expected.mean, 2)
    assert stats["std"] == round(expected.std, 2)
    assert (stats["min"], stats["max"]) == (expected.min, expected.max)
    assert body["measurements"]["area"] == round(np.pi * (17.5 * 0.8) * (12.6 * 0.5) / 4, 2)


def test_freehand_and_point_values(team, stored):
    reader = api(team["reader"])
    square = [[1, 1], [5, 1], [5, 5], [1, 5]]  # the centres of rows 1..4, columns 1..4
    stats = post(reader, {"instance": stored["ct"], "kind": "freehand", "points": square}).json()["measurements"]
    hu = STORED.astype(float) * 2 - 1024
    assert stats["area"] == 16 * 0.4 and stats["stats"]["mean"] == hu[1:5, 1:5].mean()
    point = post(reader, {"instance": stored["ct"], "kind": "point", "points": [[7.5, 2.2]]}).json()
    assert point["measurements"]["value"] == hu[2, 7]
    edge = post(reader, {"instance": stored["ct"], "kind": "point", "points": [[COLUMNS, ROWS]]}).json()
    assert edge["measurements"]["value"] is None


def test_frames_of_a_multiframe_image(team, stored):
    reader = api(team["reader"])
    ok = post(reader, {"instance": stored["multi"], "frame": 3, "kind": "point", "points": [[0.5, 0.5]]})
    assert ok.status_code == 201 and ok.json()["frame"] == 3
    assert post(reader, {"instance": stored["multi"], "frame": 4, "kind": "point", "points": [[1, 1]]}).status_code == 400


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"kind": "circle"}, "Unknown annotation kind"),
        ({"points": [[1, 1]]}, "got 1 points"),
        ({"points": [[1, 1], [40, 1]]}, "inside the image"),
        ({"points": [[1, 1], [-0.5, 1]]}, "inside the image"),
        ({"points": [[1, 1], ["a", 1]]}, "must be a number"),
        ({"points": "1,1"}, "list of [x, y] pairs"),
        ({"frame": 2}, "frame must be an integer from 1 to 1"),
        ({"frame": 0}, "frame must be"),
        ({"instance": "1.2.3.4"}, "No such instance"),
        ({"label": "x" * 201}, "at most 200"),
        ({"session": 7}, "reading session"),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_nothing_is_written(team, stored, change, reason):
    response = post(api(team["reader"]), length(stored["ct"]) | change)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_request" and reason in response.json()["detail"]
    assert Annotation.objects.count() == 0


def test_degenerate_shapes_are_refused(team, stored):
    reader = api(team["reader"])
    flat = post(reader, {"instance": stored["ct"], "kind": "ellipse", "points": [[1, 1], [5, 1]]})
    crossing = post(reader, {"instance": stored["ct"], "kind": "freehand", "points": [[1, 1], [5, 5], [5, 1], [1, 5]]})
    assert flat.status_code == crossing.status_code == 400
    assert "crosses itself" in crossing.json()["detail"]


def test_an_instance_of_another_project_is_unknown(team, stored, make_project):
    # The same UID may exist elsewhere; here only project 'trial' is searched.
    other = make_project("third", members={team["reader"]: "reader"})
    response = api(team["reader"]).post(
        f"/api/projects/{other.slug}/annotations/", json.dumps(length(stored["ct"])), content_type="application/json"
    )
    assert response.status_code == 400 and "No such instance" in response.json()["detail"]


# ------------------------------------------------------------------------------ roles


def test_role_matrix(team, stored):
    reader_own = post(api(team["reader"]), length(stored["ct"])).json()
    assert reader_own["author"] == "reader"
    # viewers read but do not write
    assert api(team["viewer"]).get(URL).json()["annotations"][0]["id"] == reader_own["id"]
    assert post(api(team["viewer"]), length(stored["ct"])).status_code == 403
    assert patch(api(team["viewer"]), reader_own["id"], {"version": 1, "label": "x"}).status_code == 403
    assert api(team["viewer"]).delete(f"{URL}{reader_own['id']}/").status_code == 403
    # non-members: the project does not exist
    outsider = api(team["outsider"])
    assert outsider.get(URL).status_code == 404
    assert post(outsider, length(stored["ct"])).status_code == 404
    assert outsider.get(f"{URL}{reader_own['id']}/").status_code == 404
    assert patch(outsider, reader_own["id"], {"version": 1, "label": "x"}).status_code == 404
    # anonymous
    assert Client().get(URL).status_code in (401, 403)
    # organizers change anyone's; readers only their own
    organizer_own = post(api(team["organizer"]), length(stored["ct"])).json()
    assert patch(api(team["reader"]), organizer_own["id"], {"version": 1, "label": "x"}).status_code == 403
    assert api(team["reader"]).delete(f"{URL}{organizer_own['id']}/").status_code == 403
    assert patch(api(team["organizer"]), reader_own["id"], {"version": 1, "label": "seen"}).status_code == 200
    assert patch(api(team["reader"]), reader_own["id"], {"version": 2, "label": "mine"}).status_code == 200
    assert api(team["organizer"]).delete(f"{URL}{reader_own['id']}/").status_code == 204


def test_session_authentication_needs_the_csrf_token(team, stored):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(team["reader"])
    assert post(browser, length(stored["ct"])).status_code == 403
    browser.get("/")  # sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post(URL, json.dumps(length(stored["ct"])), content_type="application/json",
                            HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201


# ------------------------------------------------------------------------------ versions and identity


def test_update_bumps_the_version_and_remeasures_and_a_stale_version_conflicts(team, stored):
    reader = api(team["reader"])
    created = post(reader, length(stored["ct"], ((0, 0), (10, 0)))).json()
    assert created["measurements"]["length"] == 8.0
    moved = patch(reader, created["id"], {"version": 1, "points": [[0, 0], [0, 10]]})
    assert moved.status_code == 200
    assert moved.json()["version"] == 2 and moved.json()["measurements"]["length"] == 5.0
    stale = patch(reader, created["id"], {"version": 1, "label": "late"})
    assert stale.status_code == 409
    assert stale.json()["code"] == "conflict"
    assert stale.json()["annotation"]["version"] == 2 and stale.json()["annotation"]["label"] == ""
    assert patch(reader, created["id"], {"label": "no version"}).status_code == 400
    bad = patch(reader, created["id"], {"version": 2, "points": [[0, 0], [99, 0]]})
    assert bad.status_code == 400
    assert reader.get(f"{URL}{created['id']}/").json()["version"] == 2  # nothing half-written


def test_client_ref_makes_creation_idempotent(team, stored):
    reader = api(team["reader"])
    first = post(reader, length(stored["ct"], client_ref="tab1-7"))
    again = post(reader, length(stored["ct"], ((1, 1), (2, 2)), client_ref="tab1-7"))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["points"] == first.json()["points"]
    other_author = post(api(team["organizer"]), length(stored["ct"], client_ref="tab1-7"))
    assert other_author.status_code == 201 and other_author.json()["id"] != first.json()["id"]
    assert Annotation.objects.count() == 2


def test_delete_is_soft_and_hides_the_annotation(team, stored):
    reader = api(team["reader"])
    created = post(reader, length(stored["ct"])).json()
    assert reader.delete(f"{URL}{created['id']}/").status_code == 204
    assert reader.get(f"{URL}{created['id']}/").status_code == 404
    assert reader.get(URL).json()["annotations"] == []
    assert reader.delete(f"{URL}{created['id']}/").status_code == 404
    row = Annotation.objects.get(pk=created["id"])
    assert row.deleted and row.version == 2


def test_list_filters_by_instance_series_and_study(team, stored):
    reader = api(team["reader"])
    a = post(reader, length(stored["ct"])).json()
    b = post(reader, length(stored["nospacing"])).json()
    c = post(reader, length(stored["elsewhere"])).json()

    def ids(**query: str) -> list[int]:
        return [x["id"] for x in reader.get(URL, query).json()["annotations"]]

    assert ids() == [a["id"], b["id"], c["id"]]
    assert ids(instance=stored["ct"]) == [a["id"]]
    assert ids(study=stored["study"]) == [a["id"], b["id"]]
    assert ids(series=c["series"]) == [c["id"]]
    assert reader.get(URL, {"session": "7"}).status_code == 400  # sessions list their own, blinded


def test_session_annotations_never_leak_through_the_project_api(team, stored):
    from annotations import services

    in_session = services.create_annotation(
        team["reader"], team["project"], instance_uid=stored["ct"], kind="point", points=[[3, 3]], session_id=7
    )
    organizer = api(team["organizer"])
    assert organizer.get(URL).json()["annotations"] == []
    assert organizer.get(f"{URL}{in_session.pk}/").status_code == 404


def test_private_annotations_are_seen_by_their_author_and_organizers_only(team, stored):
    project = team["project"]
    project.private_annotations = True
    project.save()
    mine = post(api(team["reader"]), length(stored["ct"])).json()
    theirs = post(api(team["organizer"]), length(stored["ct"])).json()

    def ids(user) -> list[int]:
        return [x["id"] for x in api(user).get(URL).json()["annotations"]]

    assert ids(team["reader"]) == [mine["id"]]
    assert ids(team["organizer"]) == [mine["id"], theirs["id"]]
    assert ids(team["viewer"]) == []
    assert api(team["reader"]).get(f"{URL}{theirs['id']}/").status_code == 404


# ------------------------------------------------------------------------------ events


def test_events_are_sent_after_commit_and_carry_json(team, stored, django_capture_on_commit_callbacks):
    """A caller's ``announce`` is called once each write commits (not for a refused one), with data that
    survives a JSON round trip."""
    events: list[dict[str, Any]] = []

    def announce(kind: str, data: dict[str, Any]) -> None:
        events.append({"type": kind, "annotation": json.loads(json.dumps(data))})

    project = team["project"]
    with django_capture_on_commit_callbacks(execute=True):
        created = services.create_annotation(
            team["reader"], project, instance_uid=stored["ct"], kind="ellipse", points=[[1, 1], [9, 9]],
            announce=announce,
        )
        assert events == []  # not before the commit
    with django_capture_on_commit_callbacks(execute=True):
        services.update_annotation(team["reader"], created, version=1, label="liver", announce=announce)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Conflict):
        services.update_annotation(team["reader"], created, version=1, label="stale", announce=announce)
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_annotation(team["reader"], created, announce=announce)
    assert [(e["type"], e["annotation"]["version"]) for e in events] == [("created", 1), ("updated", 2), ("deleted", 3)]
    assert events[0]["annotation"]["measurements"]["stats"]["count"] > 0
