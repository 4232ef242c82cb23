"""Whole-slide images: Deep Zoom from the stored pyramid, tiles served from stored frames."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stow
from demo import corpus
from demo.slide import write_synthetic_slide
from viewer import rendering, wsi

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def slide_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slide")
    return write_synthetic_slide(folder, texture=corpus.source_dirs()["wsidicom-data"] / "test_tile.png")


@pytest.fixture
def slide(client, team, slide_files):
    rendering.OUTPUT_CACHE.clear()
    assert stow(client, "trial", [p.read_bytes() for p in slide_files], token_for(team["reader"])).status_code == 200
    base = pydicom.dcmread(slide_files[0])
    auth = {"HTTP_AUTHORIZATION": f"Token {token_for(team['viewer'])}"}
    return base, f"/projects/trial/tiles/{base.SOPInstanceUID}/1", auth


def test_pyramid_index_reads_no_pixels(slide_files):
    pyramid = wsi.slide_levels_from(slide_files)
    assert [(lv.width, lv.height) for lv in pyramid.levels] == [(2048, 1536), (1024, 768), (512, 384), (256, 192)]
    assert pyramid.max_level == 11 and pyramid.tile_size == 256
    assert pyramid.stored_for(11)[0].width == 2048 and pyramid.stored_for(10) == (pyramid.levels[1], 1)
    assert pyramid.stored_for(5) == (pyramid.levels[3], 8)
    frames = pydicom.encaps.generate_frames(pydicom.dcmread(slide_files[0]).PixelData, number_of_frames=48)
    assert next(iter(frames)) == pyramid.base.read_tile(0, 0)


def test_descriptor_and_tiles_as_stored(client, slide, slide_files):
    base, url, auth = slide
    descriptor = client.get(f"{url}.dzi", **auth)
    assert descriptor.status_code == 200
    assert b'TileSize="256"' in descriptor.content and b'Overlap="0"' in descriptor.content
    assert b'Width="2048" Height="1536"' in descriptor.content
    # Full resolution: the stored JPEG frame itself, byte for byte.
    stored = list(pydicom.encaps.generate_frames(base.PixelData, number_of_frames=int(base.NumberOfFrames)))
    tile = client.get(f"{url}_files/11/3_2.jpeg", **auth)
    assert tile.status_code == 200 and tile["Content-Type"] == "image/jpeg"
    assert tile.content == stored[2 * 8 + 3]
    # The next level down comes from the second stored instance, also as stored.
    level1 = pydicom.dcmread(slide_files[1])
    assert client.get(f"{url}_files/10/1_1.jpeg", **auth).content == list(
        pydicom.encaps.generate_frames(level1.PixelData, number_of_frames=int(level1.NumberOfFrames))
    )[1 * 4 + 1]


def test_tiles_below_the_stored_levels_and_edges_are_composed(client, slide, slide_files):
    _, url, auth = slide
    small = client.get(f"{url}_files/7/0_0.png", **auth)
    image = np.asarray(Image.open(io.BytesIO(small.content)))
    assert image.shape == (96, 128, 3)
    smallest = pydicom.dcmread(slide_files[3]).pixel_array[:192, :256]  # one frame: (rows, columns, 3)
    expected = np.asarray(Image.fromarray(smallest).resize((128, 96), Image.Resampling.BOX))
    assert np.abs(image.astype(int) - expected.astype(int)).mean() < 3
    edge = Image.open(io.BytesIO(client.get(f"{url}_files/9/1_1.png", **auth).content))
    assert edge.size == (256, 128)  # 512x384 level: the bottom row of tiles is 128 high
    assert client.get(f"{url}_files/11/8_0.jpeg", **auth).status_code == 400
    assert client.get(f"{url}_files/12/0_0.jpeg", **auth).status_code == 400
    assert client.get(url.replace("/1", "/2") + ".dzi", **auth).status_code == 404
