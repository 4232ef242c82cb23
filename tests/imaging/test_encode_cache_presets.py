"""Encoders, the frame cache, presets and the codec capability table."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pydicom
import pytest
from PIL import Image

from demo import corpus
from viewer import imaging


@pytest.fixture(scope="module")
def ct():
    return pydicom.dcmread(corpus.file("pydicom-data", "693_UNCI.dcm"))


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_jpeg_grey_and_rgb(ct):
    grey = imaging.render_frame(ct, 1, window=imaging.Window(40, 400))
    data = imaging.encode(grey, "image/jpeg", 95)
    assert data[:3] == b"\xff\xd8\xff"
    decoded = _decode(data)
    assert decoded.shape == grey.shape
    assert np.abs(decoded.astype(float) - grey).mean() < 2
    rgb = imaging.render_frame(pydicom.dcmread(corpus.file("pydicom-data", "US1_UNCI.dcm")), 1)
    decoded = _decode(imaging.encode(rgb, "image/jpeg", 95))
    assert decoded.shape == rgb.shape
    assert np.abs(decoded.astype(float) - rgb).mean() < 3


def test_jpeg_quality_changes_size(ct):
    grey = imaging.render_frame(ct, 1, window=imaging.Window(40, 400))
    assert len(imaging.encode(grey, "image/jpeg", 20)) < len(imaging.encode(grey, "image/jpeg", 95))


@pytest.mark.parametrize("media_type", ["image/png", "image/gif"])
def test_lossless_formats_round_trip_grey(ct, media_type):
    grey = imaging.render_frame(ct, 1, window=imaging.Window(40, 400))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(imaging.encode(grey, media_type))).convert("L")), grey)


def test_png_round_trip_rgb_and_webp():
    rgb = imaging.render_frame(pydicom.dcmread(corpus.file("pydicom-data", "OBXXXX1A.dcm")), 1)
    assert np.array_equal(_decode(imaging.encode(rgb, "image/png")), rgb)
    webp = imaging.encode(rgb, "image/webp", 90)
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"
    assert _decode(webp).shape == rgb.shape
    gif = Image.open(io.BytesIO(imaging.encode(rgb, "image/gif")))
    assert gif.format == "GIF" and gif.size == (800, 600)


@pytest.mark.parametrize("quality", [0, 101, -5, 50.5, True])
def test_bad_quality(quality):
    with pytest.raises(imaging.InvalidParameter):
        imaging.encode(np.zeros((4, 4), np.uint8), "image/jpeg", quality)


def test_bad_media_type_and_image():
    with pytest.raises(imaging.UnsupportedMediaType) as caught:
        imaging.encode(np.zeros((4, 4), np.uint8), "image/tiff")
    assert caught.value.status == 406
    with pytest.raises(imaging.InvalidParameter):
        imaging.encode(np.zeros((4, 4), np.uint16), "image/png")
    with pytest.raises(imaging.InvalidParameter):
        imaging.encode(np.zeros((4, 4, 4), np.uint8), "image/png")


class Blob:
    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


def test_cache_is_lru_and_bounded_in_bytes():
    cache = imaging.FrameCache(max_bytes=100)
    cache.put("a", Blob(40))
    cache.put("b", Blob(40))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", Blob(40))  # evicts b
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.nbytes == 80
    cache.put("huge", Blob(101))  # larger than the budget: not stored
    assert "huge" not in cache and cache.nbytes == 80
    cache.put("a", Blob(10))  # replacing a key re-counts its size
    assert cache.nbytes == 50
    assert (cache.hits, cache.misses) == (1, 0)
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0


def test_cache_thread_safety():
    cache = imaging.FrameCache(max_bytes=1000)

    def worker(offset: int) -> None:
        for i in range(2000):
            cache.put((offset, i % 50), Blob(7))
            cache.get((offset, (i * 7) % 50))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.nbytes <= 1000
    assert cache.nbytes == 7 * len(cache)


def test_render_uses_cache_and_skips_decoding(ct):
    cache = imaging.FrameCache(max_bytes=64 * 2**20)
    first = imaging.render_frame(ct, 1, window=imaging.Window(40, 400), cache=cache, key="ct")
    assert ("ct", 1) in cache
    # On a hit the source is not read at all: an unreadable source still renders.
    again = imaging.render_frame(b"unreadable", 1, window=imaging.Window(40, 400), cache=cache, key="ct")
    assert np.array_equal(first, again)
    lung = imaging.render_frame(b"unreadable", 1, window=imaging.Window(-600, 1500), cache=cache, key="ct")
    assert not np.array_equal(first, lung)
    assert cache.hits == 2
    # the cached frame is immutable
    prepared = cache.get(("ct", 1))
    assert prepared is not None and not prepared.pixels.flags.writeable


def test_prepared_frame_is_compact(ct):
    prepared = imaging.prepare_frame(ct, 1)
    assert prepared.pixels.dtype == np.uint16 and prepared.nbytes == 512 * 512 * 2
    assert prepared.entries <= 2**14  # 14-bit CT
    rgb = imaging.prepare_frame(pydicom.dcmread(corpus.file("pydicom-data", "US1_UNCI.dcm")), 1)
    assert rgb.is_color and rgb.nbytes == 480 * 640 * 3


def test_presets():
    presets = imaging.presets_for()
    json.dumps(presets)
    ids = [preset["id"] for preset in presets]
    assert len(ids) == len(set(ids))
    ct_names = {preset["label"] for preset in imaging.presets_for("ct")}
    assert {"Brain", "Subdural", "Stroke", "Lung", "Mediastinum", "Abdomen", "Liver", "Bone"} <= ct_names
    assert {preset["modality"] for preset in presets} >= {"CT", "MR", "CR", "DX"}
    assert imaging.preset_window("ct-lung") == imaging.Window(-600, 1500, "linear")
    assert imaging.preset_window("ct-brain") == imaging.Window(40, 80, "linear")
    assert imaging.preset_window("mr-default") is None
    with pytest.raises(imaging.InvalidParameter):
        imaging.preset_window("nope")
    presets[0]["center"] = 999  # copies: the module data is untouched
    assert imaging.preset_window("ct-brain").center == 40


@pytest.mark.parametrize(
    ("body_part", "descriptions", "region", "first_keys"),
    [
        ("CHEST", (), "chest", ["Soft tissue", "Lung", "Bone", "Liver", "Brain"]),
        (None, ("CT ABDOMEN PELVIS W CONTRAST",), "abdomen", ["Soft tissue", "Lung", "Bone", "Liver", "Brain"]),
        ("ABDOMENPELVIS", ("Head",), "abdomen", ["Soft tissue", "Lung", "Bone", "Liver", "Brain"]),  # the tag first
        ("", ("", "CT HEAD W/O"), "head", ["Brain", "Subdural", "Stroke", "Bone", "Temporal bones"]),  # study description
        ("CSPINE", (), "spine", ["Bone", "Soft tissue", "Lung"]),
        (None, ("T-spine sag",), "spine", ["Bone", "Soft tissue", "Lung"]),
        ("KNEE", (), "extremity", ["Bone", "Soft tissue"]),
        ("NECK", (), "neck", ["Soft tissue", "Bone", "Brain"]),
        (None, ("e+1",), "body", ["Soft tissue", "Lung", "Bone", "Liver", "Brain"]),  # CT_small: nothing says
        (None, (), "body", ["Soft tissue", "Lung", "Bone", "Liver", "Brain"]),
    ],
)
def test_ct_presets_come_in_the_order_of_the_body_region(body_part, descriptions, region, first_keys):
    """Key 1 of a chest or abdomen CT is soft tissue (not the brain window), of a head CT the brain;
    every CT preset is in every region's order, so all ten are on keys 1-9 and 0."""
    assert imaging.body_region(body_part, *descriptions) == region
    ordered = imaging.presets_for("CT", region)
    assert [p["label"] for p in ordered[: len(first_keys)]] == first_keys
    assert sorted(p["id"] for p in ordered) == sorted(p["id"] for p in imaging.presets_for("CT"))
    assert len(ordered) <= 10
    assert imaging.preset_orders()["CT"][region] == [p["id"] for p in ordered]
    assert [p["id"] for p in imaging.presets_for("MR", region)] == [p["id"] for p in imaging.presets_for("MR")]


def test_capabilities():
    rows = imaging.capabilities()
    json.dumps(rows)
    by_family = {}
    for row in rows:
        by_family.setdefault(row["family"], []).append(row)
    assert {"native", "deflate", "rle", "jpeg", "jpeg-ls", "jpeg2000"} <= set(by_family)
    for family in ("native", "deflate", "rle", "jpeg", "jpeg-ls", "jpeg2000"):
        assert all(row["available"] for row in by_family[family]), family
    assert imaging.is_available("1.2.840.10008.1.2.4.50")
    assert not imaging.is_available("1.2.3.4")


def test_package_imports_no_django():
    """viewer.imaging is a plain package: no module in it imports Django."""
    import ast
    from pathlib import Path

    package = Path(imaging.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(name.split(".")[0] in ("django", "rest_framework") for name in names), module


def test_importing_the_package_does_not_load_django():
    import subprocess
    import sys

    code = "import sys, viewer.imaging; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_prepared_frame_does_not_pin_the_whole_instance():
    ds = pydicom.dcmread(corpus.file("pydicom-data", "SC_rgb_2frame.dcm"))  # interleaved 8-bit RGB
    prepared = imaging.prepare_frame(ds, 2)
    owner = prepared.pixels
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    buffer = owner.base
    while isinstance(buffer, memoryview):
        buffer = buffer.obj
    held = owner.nbytes if buffer is None else len(buffer)
    assert held == prepared.nbytes == 100 * 100 * 3
