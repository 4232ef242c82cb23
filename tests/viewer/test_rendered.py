"""WADO-RS rendered resources, thumbnails and Deep Zoom tiles over HTTP (Django test client)."""

from __future__ import annotations

import io
import time

import numpy as np
import pydicom
import pytest
from django.http import QueryDict
from PIL import Image
from pydicom.uid import generate_uid

from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stow
from demo import corpus
from viewer import imaging, rendering
from viewer.models import Instance

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_caches():
    rendering.FRAME_CACHE.clear()
    rendering.OUTPUT_CACHE.clear()
    rendering.LOOKUP_CACHE.clear()
    rendering.READ_AHEAD._last.clear()  # series ids come back after a test's rollback


@pytest.fixture
def stored(client, team):
    """CT_small and the 1955x1841 CR stored in project 'trial'; returns (auth headers, URL builder)."""
    files = {"ct": corpus.file("pydicom", "CT_small.dcm"), "cr": corpus.file("pydicom-data", "RG1_UNCI.dcm")}
    data = {name: path.read_bytes() for name, path in files.items()}
    assert stow(client, "trial", list(data.values()), token_for(team["reader"])).status_code == 200
    datasets = {name: pydicom.dcmread(io.BytesIO(raw)) for name, raw in data.items()}

    def url(name: str, suffix: str = "rendered") -> str:
        ds = datasets[name]
        return (
            f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}/{suffix}"
        )

    return {"auth": {"HTTP_AUTHORIZATION": f"Token {token_for(team['viewer'])}"}, "url": url, "ds": datasets}


def reference_linear(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1, written out independently of the pipeline."""
    out = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    out = np.where(values <= center - 0.5 - (width - 1) / 2, 0, out)
    out = np.where(values > center - 0.5 + (width - 1) / 2, 255, out)
    return np.clip(np.round(out), 0, 255)


def png(response) -> np.ndarray:
    assert response.status_code == 200, response.content
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_rendered_png_with_explicit_window_matches_the_standard(client, stored):
    ds = stored["ds"]["ct"]
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    image = png(client.get(stored["url"]("ct"), {"window": "40,400", "accept": "image/png"}, **stored["auth"]))
    assert image.shape == hu.shape
    assert np.abs(image.astype(int) - reference_linear(hu, 40, 400)).max() <= 1


def test_monochrome1_cr_is_inverted_and_viewport_scales_to_fit(client, stored):
    ds = stored["ds"]["cr"]
    response = client.get(stored["url"]("cr"), {"viewport": "1024,1024", "accept": "image/png"}, **stored["auth"])
    image = png(response)
    assert image.shape == (1024, round(1841 * 1024 / 1955))
    values = ds.pixel_array.astype(float)
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    full = 255 - reference_linear(values, center, width)  # MONOCHROME1: high values dark
    small = np.asarray(Image.fromarray(full.astype(np.uint8)).resize(image.shape[::-1], Image.Resampling.BILINEAR))
    assert np.abs(image.astype(int) - small.astype(int)).mean() < 2


def test_etag_and_conditional_get(client, stored):
    url = stored["url"]("ct")
    first = client.get(url, {"window": "40,400"}, **stored["auth"])
    assert first.status_code == 200 and first["Content-Type"] == "image/jpeg"
    assert "immutable" in first["Cache-Control"]
    again = client.get(url, {"window": "40,400"}, HTTP_IF_NONE_MATCH=first["ETag"], **stored["auth"])
    assert again.status_code == 304 and again["ETag"] == first["ETag"]
    other = client.get(url, {"window": "-600,1500"}, **stored["auth"])
    assert other["ETag"] != first["ETag"] and other.content != first.content
    assert client.get(url, {"window": "40,400"}, **stored["auth"]).content == first.content


@pytest.mark.parametrize("media", ["image/png", "image/webp", "image/gif", "image/jpeg"])
def test_media_types_by_accept_header(client, stored, media):
    response = client.get(stored["url"]("ct"), HTTP_ACCEPT=media, **stored["auth"])
    assert response.status_code == 200 and response["Content-Type"] == media
    assert Image.open(io.BytesIO(response.content)).size == (128, 128)


@pytest.mark.parametrize(
    "params, status",
    [
        ({"window": "40"}, 400),
        ({"window": "40,0"}, 400),
        ({"window": "40,400,cubic"}, 400),
        ({"viewport": "0,10"}, 400),
        ({"viewport": "100000,100000"}, 400),
        ({"viewport": "64,64,100,100,500,500"}, 400),
        ({"quality": "0"}, 400),
        ({"accept": "image/tiff"}, 406),
        ({"bogus": "1"}, 400),
    ],
)
def test_bad_parameters_get_a_json_reason(client, stored, params, status):
    response = client.get(stored["url"]("ct"), params, **stored["auth"])
    assert response.status_code == status
    assert response.json()["detail"]


def test_frames_rendered_and_errors(client, stored, team):
    url = stored["url"]("ct", "frames/1/rendered")
    assert client.get(url, **stored["auth"]).status_code == 200
    assert client.get(stored["url"]("ct", "frames/2/rendered"), **stored["auth"]).status_code == 404
    assert client.get(stored["url"]("ct", "frames/x/rendered"), **stored["auth"]).status_code == 400
    outsider = {"HTTP_AUTHORIZATION": f"Token {token_for(team['outsider'])}"}
    assert client.get(url, **outsider).status_code == 404


def test_multiframe_frames_render_their_own_pixels(client, team):
    raw = corpus.file("pydicom-data", "emri_small.dcm").read_bytes()
    ds = pydicom.dcmread(io.BytesIO(raw))
    assert stow(client, "trial", [raw], token_for(team["reader"])).status_code == 200
    base = f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    auth = {"HTTP_AUTHORIZATION": f"Token {token_for(team['viewer'])}"}
    for frame in (1, 10):
        image = png(client.get(f"{base}/frames/{frame}/rendered", {"window": "500,1000", "accept": "image/png"}, **auth))
        expected = reference_linear(ds.pixel_array[frame - 1].astype(float), 500, 1000)
        assert np.abs(image.astype(int) - expected).max() <= 1


def test_decompression_bomb_is_refused_before_decoding(client, team):
    ds = ct_dataset(Rows=60000, Columns=60000)
    assert stow(client, "trial", [to_bytes(ds)], token_for(team["reader"])).status_code == 200
    url = f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/rendered"
    response = client.get(url, HTTP_AUTHORIZATION=f"Token {token_for(team['viewer'])}")
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_thumbnails_at_each_level(client, stored):
    ds = stored["ds"]["cr"]
    auth = stored["auth"]
    study = f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}"
    for url in (f"{study}/thumbnail", f"{study}/series/{ds.SeriesInstanceUID}/thumbnail", stored["url"]("cr", "thumbnail")):
        response = client.get(url, **auth)
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        assert max(Image.open(io.BytesIO(response.content)).size) == 128
    assert client.get(f"{study}/thumbnail", {"viewport": "300,300"}, **auth).status_code == 200
    assert client.get("/projects/trial/dicomweb/studies/1.2.3/thumbnail", **auth).status_code == 404


def test_deep_zoom_descriptor_and_tiles(client, stored):
    ds = stored["ds"]["cr"]
    base = f"/projects/trial/tiles/{ds.SOPInstanceUID}/1"
    descriptor = client.get(f"{base}.dzi", **stored["auth"])
    assert descriptor.status_code == 200
    assert b'TileSize="254"' in descriptor.content and b'Width="1841" Height="1955"' in descriptor.content
    # Level 11 is full resolution (2^11 = 2048 >= 1955): an interior tile is 254 + 2 overlap pixels.
    tile = client.get(f"{base}_files/11/1_1.png", {"window": "2048,4096"}, **stored["auth"])
    image = png(tile)
    assert image.shape == (256, 256)
    values = ds.pixel_array[253:509, 253:509].astype(float)
    expected = 255 - reference_linear(values, 2048, 4096)
    assert np.abs(image.astype(int) - expected).max() <= 1
    assert client.get(f"{base}_files/0/0_0.jpeg", **stored["auth"]).status_code == 200
    assert client.get(f"{base}_files/11/99_0.jpeg", **stored["auth"]).status_code == 400
    assert client.get(f"{base}_files/11/0_0.tiff", **stored["auth"]).status_code == 406
    assert client.get("/projects/trial/tiles/1.2.3/1.dzi", **stored["auth"]).status_code == 404


def test_presets_are_served_as_data(client, team):
    client.force_login(team["viewer"])
    presets = client.get("/api/presets/", {"modality": "CT"}).json()["presets"]
    labels = {p["label"] for p in presets}
    assert {"Brain", "Lung", "Bone", "Liver", "Mediastinum", "Abdomen", "Subdural", "Stroke"} <= labels


def test_health_lists_codecs_without_login(client):
    body = client.get("/api/health/").json()
    assert body["status"] == "ok" and body["database"] == "ok"
    available = {c["uid"] for c in body["codecs"] if c["available"]}
    assert {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.5"} <= available


def test_scrolling_a_series_decodes_the_next_slices_ahead(client, team):
    study, series = generate_uid(), generate_uid()
    slices = [ct_dataset(StudyInstanceUID=study, SeriesInstanceUID=series, InstanceNumber=n) for n in range(1, 7)]
    assert stow(client, "trial", [to_bytes(ds) for ds in slices], token_for(team["reader"])).status_code == 200
    auth = {"HTTP_AUTHORIZATION": f"Token {token_for(team['viewer'])}"}

    def url(ds) -> str:
        return f"/projects/trial/dicomweb/studies/{study}/series/{series}/instances/{ds.SOPInstanceUID}/frames/1/rendered"

    def decoded(ds) -> bool:
        row = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
        return (row.project_id, row.sha256, 1) in rendering.FRAME_CACHE

    assert client.get(url(slices[0]), **auth).status_code == 200
    deadline = time.monotonic() + 10
    while not all(decoded(ds) for ds in slices[1:]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(decoded(ds) for ds in slices[1:])
    # The slices decoded ahead render as any other.
    ahead = client.get(url(slices[3]), {"accept": "image/png"}, **auth)
    rendering.FRAME_CACHE.clear()
    rendering.OUTPUT_CACHE.clear()
    assert ahead.content == client.get(url(slices[3]), {"accept": "image/png"}, **auth).content


def test_the_next_slices_are_rendered_ahead_with_the_window_in_use(client, team, monkeypatch):
    """A reader scrolling with a window gets the next slices from the output cache, and a slice served
    from there moves the read-ahead on; another window renders ahead with that one."""
    monkeypatch.setattr(rendering.READ_AHEAD, "depth", 3)
    study, series = generate_uid(), generate_uid()
    slices = [ct_dataset(StudyInstanceUID=study, SeriesInstanceUID=series, InstanceNumber=n) for n in range(1, 11)]
    assert stow(client, "trial", [to_bytes(ds) for ds in slices], token_for(team["reader"])).status_code == 200
    auth = {"HTTP_AUTHORIZATION": f"Token {token_for(team['viewer'])}"}
    rows = {row.sop_instance_uid: row for row in Instance.objects.filter(series__series_instance_uid=series)}

    def url(n: int) -> str:
        return (f"/projects/trial/dicomweb/studies/{study}/series/{series}/instances/"
                f"{slices[n].SOPInstanceUID}/frames/1/rendered")

    def rendered_ahead(n: int, window: str) -> bool:
        image = rendering.StoredImage.of(rows[slices[n].SOPInstanceUID])
        options = rendering.parse_options(QueryDict(f"window={window}"), "")
        return rendering.etag(image, 1, options) in rendering.OUTPUT_CACHE

    def wait_for(ns: range, window: str) -> None:
        deadline = time.monotonic() + 10
        while not all(rendered_ahead(n, window) for n in ns) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all(rendered_ahead(n, window) for n in ns), [rendered_ahead(n, window) for n in ns]

    first = client.get(url(0), {"window": "40,400"}, **auth)
    assert first.status_code == 200
    wait_for(range(1, 4), "40,400")
    assert not rendered_ahead(4, "40,400")  # three ahead, no more
    ahead = client.get(url(3), {"window": "40,400"}, **auth)  # from the output cache ...
    wait_for(range(4, 7), "40,400")  # ... and the read-ahead goes on from there
    client.get(url(6), {"window": "-600,1500"}, **auth)
    wait_for(range(7, 10), "-600,1500")
    rendering.FRAME_CACHE.clear()
    rendering.OUTPUT_CACHE.clear()
    fresh = client.get(url(3), {"window": "40,400"}, **auth)
    assert ahead.content == fresh.content and ahead["ETag"] == fresh["ETag"]  # the same bytes as rendered on demand


def test_one_decode_or_render_per_key_at_a_time():
    """Callers asking for a key being computed wait for that result (or error) instead of redoing it."""
    import threading

    flights = rendering.SingleFlight()
    started, release, calls = threading.Event(), threading.Event(), []

    def work() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        return "frame"

    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(flights.run("k", work)))
    first.start()
    assert started.wait(5) and "k" in flights
    second = threading.Thread(target=lambda: results.append(flights.run("k", work)))
    second.start()
    time.sleep(0.05)  # the second caller is waiting, not working
    release.set()
    first.join(5), second.join(5)
    assert results == ["frame", "frame"] and len(calls) == 1 and "k" not in flights

    def broken() -> str:
        raise imaging.CorruptPixelData("bad pixels")

    with pytest.raises(imaging.CorruptPixelData):
        flights.run("k", broken)
    assert flights.run("k", lambda: "again") == "again"  # an error is not remembered


def test_auto_window_of_a_file_without_voi_is_sent_with_the_image(client, stored):
    """CT_small declares no window: the renderer windows it over the values present, and says which
    window in ``X-Crossread-Window`` (the viewer shows it and starts a drag from it), both when
    rendered and when answered from the output cache; a requested window, or the file's own, sends none."""
    ds = stored["ds"]["ct"]
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    low, high = float(hu.min()), float(hu.max())
    frame = f"{stored['url']('ct', 'frames/1/rendered')}"
    for _ in range(2):  # rendered, then from the output cache
        response = client.get(frame, {"accept": "image/jpeg"}, **stored["auth"])
        assert response.status_code == 200
        center, width = map(float, response["X-Crossread-Window"].split(","))
        assert response["X-Crossread-Window-Source"] == "auto"
        assert (center, width) == pytest.approx(((low + high) / 2, high - low))
    assert "X-Crossread-Window" not in client.get(frame, {"window": "40,400"}, **stored["auth"])
    assert "X-Crossread-Window" not in client.get(stored["url"]("cr", "frames/1/rendered"), {"viewport": "256,256"}, **stored["auth"])
