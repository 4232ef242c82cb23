"""Reformatted planes over HTTP: GET /projects/<slug>/series/<uid>/mpr/<plane>[/<index>] on the phantom CT."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.http import QueryDict
from PIL import Image

from demo import phantom
from tests.factories.dicom import ct_bytes
from tests.factories.models import token_for
from tests.viewer.test_rendered import reference_linear
from viewer import rendering, volume
from viewer.ingest import ingest_bytes
from viewer.models import Instance
from viewer.rendering import engine, mpr

pytestmark = pytest.mark.django_db

SLICES, SIZE = 24, 64  # pixel spacing 358.4 / 64 = 5.6 mm, slice spacing 300 / 24 = 12.5 mm


@pytest.fixture(autouse=True)
def _empty_caches():
    for cache in (rendering.FRAME_CACHE, rendering.OUTPUT_CACHE, rendering.LOOKUP_CACHE, mpr.VOLUME_CACHE,
                  mpr.STACKS, mpr.GEOMETRY):
        cache.clear()


@pytest.fixture(scope="module")
def phantom_series(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("mpr-phantom")
    paths = phantom.write_study(Path(out), "baseline", slices=SLICES, size=SIZE, seed=0)
    return [p.read_bytes() for p in paths]


@pytest.fixture
def series(team, phantom_series):
    """The baseline phantom stored in 'trial'; the datasets (InstanceNumber order: superior first)."""
    for data in phantom_series:
        assert ingest_bytes(team["project"], data).ok
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in phantom_series]
    uid = datasets[0].SeriesInstanceUID
    return {"uid": uid, "datasets": datasets, "url": f"/projects/trial/series/{uid}/mpr"}


def auth(team, role="viewer"):
    return {"HTTP_AUTHORIZATION": f"Token {token_for(team[role])}"}


def png(response) -> np.ndarray:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def hu_volume(datasets) -> np.ndarray:
    """HU values[k, r, c] with k ascending in z (the most inferior slice first), from pydicom."""
    ordered = sorted(datasets, key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in ordered])


def test_sagittal_and_coronal_planes_of_the_phantom(client, team, series):
    hu = hu_volume(series["datasets"])
    ps, spacing = 358.4 / SIZE, 300 / SLICES
    height = round((SLICES - 1) * spacing / ps) + 1
    # sagittal/c: column c of every slice, rows wide, superior at the top, linear between slices
    image = png(client.get(f"{series['url']}/sagittal/40", {"window": "40,400", "accept": "image/png"}, **auth(team)))
    assert image.shape == (height, SIZE)
    depth = (SLICES - 1) - np.arange(height) * ps / spacing  # slice coordinate of each row, top first
    expected = np.stack([np.interp(depth, np.arange(SLICES), hu[:, r, 40]) for r in range(SIZE)], axis=1)
    assert np.abs(image.astype(int) - reference_linear(expected, 40, 400)).max() <= 1
    # coronal/r: row r of every slice, columns wide
    image = png(client.get(f"{series['url']}/coronal/30", {"window": "-600,1500", "accept": "image/png"}, **auth(team)))
    assert image.shape == (height, SIZE)
    expected = np.stack([np.interp(depth, np.arange(SLICES), hu[:, 30, c]) for c in range(SIZE)], axis=1)
    assert np.abs(image.astype(int) - reference_linear(expected, -600, 1500)).max() <= 1


def test_axial_planes_are_the_slices_and_headers_give_the_geometry(client, team, series):
    datasets = series["datasets"]
    response = client.get(f"{series['url']}/axial/0", {"window": "40,400", "accept": "image/png"}, **auth(team))
    inferior = datasets[-1]  # InstanceNumber 24, z = -287.5: the first along the normal (+z)
    frame = client.get(
        f"/projects/trial/dicomweb/studies/{inferior.StudyInstanceUID}/series/{inferior.SeriesInstanceUID}"
        f"/instances/{inferior.SOPInstanceUID}/frames/1/rendered", {"window": "40,400", "accept": "image/png"},
        **auth(team))
    assert np.array_equal(png(response), png(frame))
    assert response["X-Crossread-Plane"] == f"axial 0 of {SLICES}"
    position = [float(v) for v in response["X-Crossread-Plane-Position"].split(",")]
    assert position == pytest.approx([float(v) for v in inferior.ImagePositionPatient])
    assert response["X-Crossread-Plane-Orientation"] == "1,0,0,0,1,0"
    sagittal = client.get(f"{series['url']}/sagittal/40", **auth(team))
    ps = 358.4 / SIZE
    origin = -ps * SIZE / 2
    position = [float(v) for v in sagittal["X-Crossread-Plane-Position"].split(",")]
    assert position == pytest.approx([origin + 40 * ps, origin, 0.0])  # column 40, row 0, the top slice
    assert sagittal["X-Crossread-Plane-Orientation"] == "0,1,0,0,0,-1"
    assert [float(v) for v in sagittal["X-Crossread-Plane-Pixel-Spacing"].split(",")] == pytest.approx([ps, ps])
    assert float(sagittal["X-Crossread-Plane-Spacing"]) == pytest.approx(ps)


def test_the_description_of_a_plane(client, team, series):
    response = client.get(f"{series['url']}/coronal", **auth(team))
    assert response.status_code == 200, response.content
    found = response.json()
    ps = 358.4 / SIZE
    assert found["plane"] == "coronal" and found["count"] == SIZE and found["columns"] == SIZE
    assert found["rows"] == round((SLICES - 1) * 12.5 / ps) + 1
    assert found["row_cosines"] == [1.0, 0.0, 0.0] and found["column_cosines"] == [0.0, 0.0, -1.0]
    assert found["normal"] == [0.0, 1.0, 0.0] and found["spacing"] == pytest.approx(ps)
    assert found["volume"]["acquisition"] == "axial" and found["volume"]["slices"] == SLICES
    assert found["volume"]["slice_spacing"] == pytest.approx(12.5)
    # the slices in stack order: the most inferior first
    assert found["volume"]["sop_instance_uids"][0] == series["datasets"][-1].SOPInstanceUID
    assert client.get(f"{series['url']}/oblique", **auth(team)).json()["code"] == "bad_request"


def test_etag_and_304_as_for_frames(client, team, series):
    url = f"{series['url']}/sagittal/10"
    first = client.get(url, {"window": "40,400"}, **auth(team))
    assert first.status_code == 200 and first["Content-Type"] == "image/jpeg"
    tag = first["ETag"]
    assert tag.startswith('"') and "immutable" in first["Cache-Control"]
    again = client.get(url, {"window": "40,400"}, **auth(team, "reader"))
    assert again["ETag"] == tag and again.content == first.content
    assert client.get(url, {"window": "40,400"}, HTTP_IF_NONE_MATCH=tag, **auth(team)).status_code == 304
    assert client.get(url, {"window": "50,400"}, **auth(team))["ETag"] != tag
    assert client.get(f"{series['url']}/sagittal/11", {"window": "40,400"}, **auth(team))["ETag"] != tag
    scaled = client.get(url, {"window": "40,400", "viewport": "32,32", "quality": "80"}, **auth(team))
    assert scaled["ETag"] != tag and Image.open(io.BytesIO(scaled.content)).size == (32, 26)
    assert client.get(url, {"bogus": "1"}, **auth(team)).json()["code"] == "bad_request"


def error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    found = response.json()
    assert found["code"] == code
    return found["detail"]


def test_refusals(client, team, series):
    url = series["url"]
    assert "plane must be one of" in error(client.get(f"{url}/oblique/1", **auth(team)), 400, "bad_request")
    assert "does not exist" in error(client.get(f"{url}/sagittal/{SIZE}", **auth(team)), 404, "not_found")
    assert "does not exist" in error(client.get(f"{url}/axial/{SLICES}", **auth(team)), 404, "not_found")
    error(client.get(f"{url}/axial/-1", **auth(team)), 400, "bad_request")
    error(client.get(f"{url}/axial/x", **auth(team)), 400, "bad_request")
    error(client.get(f"{url}/axial/1", **auth(team, "outsider")), 404, "not_found")
    error(client.get(f"{url}/axial", **auth(team, "outsider")), 404, "not_found")
    error(client.get(f"{url}/axial/1"), 401, "not_authenticated")
    error(client.get("/projects/trial/series/1.2.3.4/mpr/axial/1", **auth(team)), 404, "not_found")


def test_a_series_too_large_is_refused(client, team, series, settings):
    settings.CROSSREAD = {"MPR_MAX_VOLUME_BYTES": SLICES * SIZE * SIZE * 4 - 1}
    assert "MiB" in error(client.get(f"{series['url']}/sagittal/1", **auth(team)), 413, "too_large")
    settings.CROSSREAD = {"MPR_MAX_VOLUME_BYTES": SLICES * SIZE * SIZE * 4}
    assert client.get(f"{series['url']}/sagittal/1", **auth(team)).status_code == 200


def test_an_irregular_series_is_refused(client, team, phantom_series):
    for data in phantom_series[:10] + phantom_series[11:]:  # slice 11 is missing
        assert ingest_bytes(team["project"], data).ok
    uid = pydicom.dcmread(io.BytesIO(phantom_series[0])).SeriesInstanceUID
    detail = error(client.get(f"/projects/trial/series/{uid}/mpr/sagittal/1", **auth(team)), 422, "unprocessable")
    assert "not evenly spaced" in detail
    assert "not evenly spaced" in error(client.get(f"/projects/trial/series/{uid}/mpr/sagittal", **auth(team)),
                                        422, "unprocessable")


def test_a_series_without_geometry_or_images_is_refused(client, team):
    data = ct_bytes()  # a CT image without ImagePositionPatient
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ingest_bytes(team["project"], data).ok
    detail = error(client.get(f"/projects/trial/series/{ds.SeriesInstanceUID}/mpr/axial/0", **auth(team)),
                   422, "unprocessable")
    assert "Image Position" in detail
    Instance.objects.filter(sop_instance_uid=ds.SOPInstanceUID).update(rows=None, columns=None)
    assert "without an image" in error(
        client.get(f"/projects/trial/series/{ds.SeriesInstanceUID}/mpr/axial/0", **auth(team)), 422, "unprocessable")


def test_quarantine_hides_slices_as_everywhere(client, team, series):
    middle = series["datasets"][SLICES // 2]
    Instance.objects.filter(sop_instance_uid=middle.SOPInstanceUID).update(quarantined=True)
    # an organizer sees every slice; for the others the held slice is missing: a gap, refused
    assert client.get(f"{series['url']}/sagittal/5", **auth(team, "organizer")).status_code == 200
    assert "not evenly spaced" in error(client.get(f"{series['url']}/sagittal/5", **auth(team, "reader")),
                                        422, "unprocessable")
    assert not mpr.STACKS.get((team["project"].pk, series["uid"]))  # never remembered for the memory path
    # a series whose every slice is held does not exist for them
    Instance.objects.filter(series__series_instance_uid=series["uid"]).update(quarantined=True)
    error(client.get(f"{series['url']}/sagittal/5", **auth(team, "reader")), 404, "not_found")
    error(client.get(f"{series['url']}/sagittal", **auth(team, "viewer")), 404, "not_found")
    assert client.get(f"{series['url']}/sagittal/5", **auth(team, "organizer")).status_code == 200


def test_the_volume_is_assembled_once_from_decoded_frames(client, team, series, monkeypatch):
    for ds in series["datasets"]:  # the reader scrolled the axial series: every frame is decoded
        url = (f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
               f"/instances/{ds.SOPInstanceUID}/frames/1/rendered")
        assert client.get(url, **auth(team)).status_code == 200

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(engine, "_decode", no_decoding)
    calls = []
    real = volume.assemble

    def counted(frames, stack):
        calls.append(1)
        threading.Event().wait(0.2)  # long enough for the other threads to ask meanwhile
        return real(frames, stack)

    monkeypatch.setattr(volume, "assemble", counted)
    access_series = mpr.STACKS.get  # (filled by the first request below)
    assert client.get(f"{series['url']}/sagittal/3", **auth(team)).status_code == 200
    found = access_series((team["project"].pk, series["uid"]))
    assert found is not None and len(calls) == 1
    mpr.VOLUME_CACHE.clear()
    results = []
    threads = [threading.Thread(target=lambda: results.append(mpr.volume_of(found))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 2 and len({id(v) for v in results}) == 1
    assert mpr.VOLUME_CACHE.nbytes == SLICES * SIZE * SIZE * 4


def test_the_volume_cache_is_bounded_in_bytes(client, team, series):
    assert mpr.VOLUME_CACHE.max_bytes > 0
    one = mpr.VOLUME_CACHE.max_bytes
    mpr.VOLUME_CACHE.max_bytes = SLICES * SIZE * SIZE * 4 - 1  # smaller than this volume: not kept
    try:
        assert client.get(f"{series['url']}/coronal/3", **auth(team)).status_code == 200
        assert len(mpr.VOLUME_CACHE) == 0
    finally:
        mpr.VOLUME_CACHE.max_bytes = one


@pytest.mark.django_db(transaction=True)
def test_planes_take_the_fast_path_and_repeats_need_no_database(team, series, monkeypatch):
    from tests.viewer.test_fastpath import asgi_get
    from viewer import render_views

    auth = [(b"authorization", f"Token {token_for(team['viewer'])}".encode())]
    path = f"{series['url']}/sagittal/20"
    first = asgi_get(path, "window=40,400", auth)
    assert first["status"] == 200
    headers = dict(first["headers"])
    assert headers[b"X-Content-Type-Options"] == b"nosniff" and headers[b"X-Crossread-Plane"] == b"sagittal 20 of 64"

    async def no_database(*args, **kwargs):
        raise AssertionError("went to the database")

    monkeypatch.setattr(render_views, "run_sync", no_database)
    again = asgi_get(path, "window=40,400", auth)
    assert again["body"] == first["body"] and dict(again["headers"])[b"ETag"] == headers[b"ETag"]
    assert dict(again["headers"])[b"X-Crossread-Plane-Position"] == headers[b"X-Crossread-Plane-Position"]
    assert asgi_get(path, "window=40,400", auth + [(b"if-none-match", headers[b"ETag"])])["status"] == 304
    assert asgi_get(f"{series['url']}/sagittal/21", "window=50,300", auth)["status"] == 200  # cut with 20


def test_which_planes_render_on_the_event_loop(client, team, series):
    options = rendering.parse_options(QueryDict("window=40,400"))
    assert client.get(f"{series['url']}/sagittal/20", **auth(team)).status_code == 200
    found = mpr.STACKS.get((team["project"].pk, series["uid"]))
    assert mpr.renders_quickly(found, "sagittal", 21, options)  # cut with 20
    assert not mpr.renders_quickly(found, "sagittal", 40, options)  # a block of 16 to cut: in a thread
    assert mpr.renders_quickly(found, "coronal", 5, options)  # one plane of contiguous memory
    assert not mpr.renders_quickly(found, "coronal", 5, rendering.parse_options(QueryDict("accept=image/png")))
    mpr.VOLUME_CACHE.clear()
    assert not mpr.renders_quickly(found, "coronal", 5, options)  # the volume to assemble first


def test_a_description_has_the_volume_assembled_in_the_background(client, team, series):
    """The viewer asks for the planes' description, then for planes: the volume is assembled meanwhile."""
    assert client.get(f"{series['url']}/sagittal", **auth(team)).status_code == 200
    mpr._WARMING.submit(lambda: None).result(timeout=30)  # the queued assembly has run
    assert len(mpr.VOLUME_CACHE) == 1
    assert client.get(f"{series['url']}/coronal", **auth(team)).status_code == 200  # cached: nothing queued
    assert len(mpr.VOLUME_CACHE) == 1
