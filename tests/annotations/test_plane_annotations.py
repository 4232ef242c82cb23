"""Marks on reformatted planes (MPR): length and ellipse stored with their plane and its geometry,
measured in mm at the plane's square pixels and on its modality values, behind the gate of the
series' images; refusals as {"code", "detail"}."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.test import Client

from annotations.geometry import ellipse_mask, roi_stats
from demo import phantom
from tests.factories.dicom import ct_bytes
from tests.factories.models import token_for
from viewer import rendering
from viewer.access import access_project
from viewer.ingest import ingest_bytes
from viewer.models import Instance
from viewer.rendering import mpr

pytestmark = pytest.mark.django_db

SLICES, SIZE = 24, 64  # pixel spacing 358.4 / 64 = 5.6 mm, slice spacing 300 / 24 = 12.5 mm
PS = 358.4 / SIZE
HEIGHT = round((SLICES - 1) * 12.5 / PS) + 1  # the sagittal and coronal planes' rows
URL = "/api/projects/trial/annotations/"


@pytest.fixture(autouse=True)
def _empty_caches():
    for cache in (rendering.FRAME_CACHE, rendering.OUTPUT_CACHE, rendering.LOOKUP_CACHE, mpr.VOLUME_CACHE,
                  mpr.STACKS, mpr.GEOMETRY):
        cache.clear()


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("plane-phantom")
    return [p.read_bytes() for p in phantom.write_study(Path(out), "baseline", slices=SLICES, size=SIZE, seed=0)]


@pytest.fixture
def series(team, phantom_files) -> dict[str, Any]:
    for data in phantom_files:
        assert ingest_bytes(team["project"], data).ok
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in phantom_files]
    return {"uid": datasets[0].SeriesInstanceUID, "study": datasets[0].StudyInstanceUID, "datasets": datasets}


def api(user: Any) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {token_for(user)}")


def post(client: Client, body: dict[str, Any]) -> Any:
    return client.post(URL, json.dumps(body), content_type="application/json")


def on_plane(series: dict[str, Any], plane: str = "coronal", index: int = 30, kind: str = "length",
             points: Any = ((30.5, 10), (30.5, 30)), **extra: Any) -> dict[str, Any]:
    return {"plane": {"series": series["uid"], "plane": plane, "index": index}, "kind": kind,
            "points": [list(p) for p in points], **extra}


def refused(response: Any, status: int, code: str, text: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and text in body["detail"], body


def test_a_length_on_a_coronal_plane_is_measured_at_its_square_pixels_and_stored_with_its_geometry(team, series):
    response = post(api(team["reader"]), on_plane(series, label="craniocaudal"))
    assert response.status_code == 201, response.content
    body = response.json()
    # 20 rows down the resliced axis: 20 x 5.6 mm (the slices' 12.5 mm resampled to square pixels)
    assert body["measurements"] == {"kind": "length", "unit": "mm", "calibration": "PixelSpacing",
                                    "length": round(20 * PS, 1)}
    plane = body["plane"]
    description = Client(HTTP_AUTHORIZATION=f"Token {token_for(team['reader'])}").get(
        f"/projects/trial/series/{series['uid']}/mpr/coronal").json()
    assert (plane["series"], plane["plane"], plane["index"]) == (series["uid"], "coronal", 30)
    assert plane["rows"] == description["rows"] == HEIGHT and plane["columns"] == SIZE
    assert plane["pixel_spacing"] == pytest.approx([PS, PS]) and plane["spacing"] == pytest.approx(PS)
    assert plane["orientation"] == description["row_cosines"] + description["column_cosines"]
    expected = np.array(description["first_position"]) + 30 * description["spacing"] * np.array(description["normal"])
    assert plane["position"] == pytest.approx(list(expected))
    assert plane["normal"] == description["normal"]
    # filed under the series' middle slice: listed with the series and the study
    assert body["series"] == series["uid"] and body["study"] == series["study"] and body["frame"] == 1
    middle = description["volume"]["sop_instance_uids"][SLICES // 2]
    assert body["instance"] == middle
    listed = api(team["viewer"]).get(URL, {"series": series["uid"]}).json()["annotations"]
    assert [a["id"] for a in listed] == [body["id"]] and listed[0]["plane"] == plane


def test_an_ellipse_on_a_sagittal_plane_measures_the_planes_modality_values(team, series):
    corners = [[20.3, 30.2], [44.6, 51.7]]
    response = post(api(team["reader"]), on_plane(series, "sagittal", 40, "ellipse", corners))
    assert response.status_code == 201, response.content
    found = mpr.series_volume(access_project(team["reader"], "trial"), series["uid"])
    values = mpr.volume_of(found).plane("sagittal", 40).astype(float)
    expected = roi_stats(values, ellipse_mask(corners[0], corners[1], values.shape))
    measured = response.json()["measurements"]
    assert measured["stats"]["count"] == expected.count > 100
    assert measured["stats"]["mean"] == round(expected.mean, 2)
    assert measured["area"] == round(np.pi * (24.3 * PS) * (21.5 * PS) / 4, 2)
    assert measured["unit"] == "mm"


def test_moving_a_plane_mark_measures_it_again_on_its_plane(team, series):
    reader = api(team["reader"])
    created = post(reader, on_plane(series)).json()
    moved = reader.patch(f"{URL}{created['id']}/", json.dumps({"version": 1, "points": [[10, 5], [10, 45]]}),
                         content_type="application/json")
    assert moved.status_code == 200, moved.content
    assert moved.json()["measurements"]["length"] == round(40 * PS, 1)
    assert moved.json()["plane"]["index"] == 30
    outside = reader.patch(f"{URL}{created['id']}/", json.dumps({"version": 2, "points": [[10, 5], [10, HEIGHT + 1]]}),
                           content_type="application/json")
    refused(outside, 400, "bad_request", "inside the image")


def test_refusals(team, series):
    reader = api(team["reader"])
    sop = series["datasets"][0].SOPInstanceUID
    refused(post(reader, {**on_plane(series), "instance": sop}), 400, "bad_request", "not both")
    refused(post(reader, on_plane(series, kind="bidirectional", points=((1, 1), (9, 1), (5, 0), (5, 2)))),
            400, "bad_request", "only length and ellipse")
    refused(post(reader, on_plane(series, plane="oblique")), 400, "bad_request", "plane.plane")
    refused(post(reader, on_plane(series, index=-1)), 400, "bad_request", "plane.index")
    refused(post(reader, on_plane(series, index=True)), 400, "bad_request", "plane.index")
    refused(post(reader, on_plane(series, index=SIZE)), 400, "bad_request", "does not exist")
    refused(post(reader, {**on_plane(series), "plane": "coronal"}), 400, "bad_request", "plane must be")
    refused(post(reader, {**on_plane(series), "plane": {"series": "x" * 70, "plane": "axial", "index": 0}}),
            400, "bad_request", "plane.series")
    refused(post(reader, on_plane(series, points=((1, 1), (1, HEIGHT + 0.5)))), 400, "bad_request", "inside the image")
    refused(post(reader, {**on_plane(series), "plane": {"series": "1.2.3.4", "plane": "axial", "index": 0}}),
            400, "bad_request", "No such series")
    refused(post(api(team["viewer"]), on_plane(series)), 403, "forbidden", "reader")
    refused(post(api(team["outsider"]), on_plane(series)), 404, "not_found", "")
    assert not any(Instance.objects.filter(annotations__isnull=False))


def test_a_series_that_cannot_be_reformatted_is_refused_with_the_reason(team):
    single = ct_bytes(Rows=8, Columns=8, PixelData=np.zeros((8, 8), "<i2").tobytes(), PixelSpacing=[1, 1])
    assert ingest_bytes(team["project"], single).ok
    uid = pydicom.dcmread(io.BytesIO(single)).SeriesInstanceUID
    body = {"plane": {"series": uid, "plane": "coronal", "index": 0}, "kind": "length", "points": [[1, 0], [1, 1]]}
    refused(post(api(team["reader"]), body), 422, "unprocessable", "")


def test_a_plane_mark_needs_a_series_the_member_reaches(team, series):
    """The gate of the series' images: a series whose every slice is held in quarantine does not exist
    for a reader (as its images do not), an organizer reaches it; a held slice in the middle is a gap."""
    Instance.objects.filter(series__series_instance_uid=series["uid"]).update(quarantined=True)
    refused(post(api(team["reader"]), on_plane(series)), 400, "bad_request", "No such series")
    created = post(api(team["organizer"]), on_plane(series))
    assert created.status_code == 201
    Instance.objects.filter(series__series_instance_uid=series["uid"]).update(quarantined=False)
    Instance.objects.filter(sop_instance_uid=created.json()["instance"]).update(quarantined=True)  # the middle slice
    mpr.STACKS.clear()
    refused(post(api(team["reader"]), on_plane(series)), 422, "unprocessable", "")
    # and the organizer's mark, filed under a held slice, is not listed for the reader
    assert api(team["reader"]).get(URL, {"series": series["uid"]}).json()["annotations"] == []
