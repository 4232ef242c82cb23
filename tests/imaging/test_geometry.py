"""Viewport (PS3.18 8.3.5.1.3) and Deep Zoom pyramid math."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pydicom
import pytest

from demo import corpus
from viewer import imaging


@pytest.mark.parametrize(
    "viewport,size,expected",
    [
        # whole 512x512 frame into 256x256
        (imaging.Viewport(256, 256), (512, 512), (0, 0, 512, 512, False, False, 256, 256)),
        # aspect ratio kept: the smaller scale wins
        (imaging.Viewport(256, 128), (512, 512), (0, 0, 512, 512, False, False, 128, 128)),
        (imaging.Viewport(1024, 1024), (1841, 1955), (0, 0, 1841, 1955, False, False, 964, 1024)),
        # region 200x100 at (10, 20) into 100x100 -> scale 0.5 -> 100x50
        (imaging.Viewport(100, 100, 10, 20, 200, 100), (512, 512), (10, 20, 200, 100, False, False, 100, 50)),
        # default sw/sh run to the edge
        (imaging.Viewport(100, 100, 412, 312), (512, 512), (412, 312, 100, 200, False, False, 50, 100)),
        # negative sw: the 100 columns left of sx=200, flipped
        (imaging.Viewport(100, 100, 200, 0, -100, 100), (512, 512), (100, 0, 100, 100, True, False, 100, 100)),
        (imaging.Viewport(50, 50, 0, 512, 512, -512), (512, 512), (0, 0, 512, 512, False, True, 50, 50)),
        # up-scaling a 64x64 MR to 512
        (imaging.Viewport(512, 512), (64, 64), (0, 0, 64, 64, False, False, 512, 512)),
        # exact size (Deep Zoom tiles) ignores the aspect ratio
        (imaging.Viewport(256, 100, fit=False), (512, 512), (0, 0, 512, 512, False, False, 256, 100)),
    ],
)
def test_viewport_resolution(viewport, size, expected):
    region = viewport.resolve(*size)
    assert (
        region.x, region.y, region.width, region.height,
        region.flip_x, region.flip_y, region.out_width, region.out_height,
    ) == expected


@pytest.mark.parametrize(
    "viewport",
    [
        imaging.Viewport(0, 100),
        imaging.Viewport(100, -1),
        imaging.Viewport(100_000, 100),
        imaging.Viewport(100, 100, 600, 0),  # starts outside
        imaging.Viewport(100, 100, 0, 0, 600, 100),  # runs past the right edge
        imaging.Viewport(100, 100, 10, 0, -20, 100),  # flipped region runs past the left edge
        imaging.Viewport(100, 100, 0, 0, 0, 100),  # empty
        imaging.Viewport(100, 100, -5, 0),
    ],
)
def test_absurd_viewports(viewport):
    with pytest.raises(imaging.InvalidViewport) as caught:
        viewport.resolve(512, 512)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "text,expected",
    [
        ("512,512", imaging.Viewport(512, 512)),
        ("256,128,0,0,512,256", imaging.Viewport(256, 128, 0, 0, 512, 256)),
        ("256,256,,,,", imaging.Viewport(256, 256)),
        ("256,256,10,20,-100,", imaging.Viewport(256, 256, 10, 20, -100, None)),
    ],
)
def test_parse_viewport(text, expected):
    assert imaging.parse_viewport(text) == expected


@pytest.mark.parametrize("text", ["512", "512,512,0", "a,b", ",512", "1.5,2", ""])
def test_parse_viewport_rejects(text):
    with pytest.raises(imaging.InvalidViewport):
        imaging.parse_viewport(text)


def test_rendered_viewport_crops_flips_and_scales():
    ds = pydicom.dcmread(corpus.file("pydicom-data", "693_UNCI.dcm"))
    window = imaging.Window(40, 400)
    full = imaging.render_frame(ds, 1, window=window)
    crop = imaging.render_frame(ds, 1, window=window, viewport=imaging.Viewport(100, 50, 30, 40, 100, 50))
    assert np.array_equal(crop, full[40:90, 30:130])
    flipped = imaging.render_frame(ds, 1, window=window, viewport=imaging.Viewport(100, 50, 130, 90, -100, -50))
    assert np.array_equal(flipped, full[40:90, 30:130][::-1, ::-1])
    half = imaging.render_frame(ds, 1, window=window, viewport=imaging.Viewport(256, 256))
    assert half.shape == (256, 256)
    # a down-scaled image is close to a 2x2 block average of the full image
    blocks = full.astype(float).reshape(256, 2, 256, 2).mean(axis=(1, 3))
    assert np.abs(half.astype(float) - blocks).mean() < 6


def test_viewport_on_color_image():
    ds = pydicom.dcmread(corpus.file("pydicom-data", "US1_UNCI.dcm"))
    rendered = imaging.render_frame(ds, 1, viewport=imaging.Viewport(320, 320))
    assert rendered.shape == (240, 320, 3) and rendered.dtype == np.uint8


def _osd_tile_bounds(width, height, tile, overlap, level, col, row):
    """OpenSeadragon DziTileSource.getTileBounds, in level pixels (written from its source)."""
    max_level = math.ceil(math.log(max(width, height), 2))
    scale = 0.5 ** (max_level - level)
    level_w, level_h = math.ceil(width * scale), math.ceil(height * scale)
    px = 0 if col == 0 else tile * col - overlap
    py = 0 if row == 0 else tile * row - overlap
    sx = tile + (1 if col == 0 else 2) * overlap
    sy = tile + (1 if row == 0 else 2) * overlap
    return px, py, min(sx, level_w - px), min(sy, level_h - py)


@pytest.mark.parametrize("width,height", [(1841, 1955), (512, 512), (3072, 2614), (257, 100), (1, 1)])
@pytest.mark.parametrize("overlap", [0, 1])
def test_deep_zoom_matches_openseadragon(width, height, overlap):
    pyramid = imaging.DeepZoom(width, height, 256, overlap)
    assert pyramid.levels == math.ceil(math.log2(max(width, height))) + 1
    assert pyramid.level_size(pyramid.max_level) == (width, height)
    assert pyramid.level_size(0) == (1, 1)
    for level in range(pyramid.levels):
        cols, rows = pyramid.tile_grid(level)
        level_w, level_h = pyramid.level_size(level)
        assert (cols, rows) == (math.ceil(level_w / 256), math.ceil(level_h / 256))
        for col in range(cols):
            for row in range(rows):
                tile = pyramid.tile(level, col, row)
                assert (tile.x, tile.y, tile.width, tile.height) == _osd_tile_bounds(
                    width, height, 256, overlap, level, col, row
                )
                assert 0 <= tile.source_x < width and 0 <= tile.source_y < height
                assert tile.source_x + tile.source_width <= width
                assert tile.source_y + tile.source_height <= height


def test_deep_zoom_cr_values():
    """Hand-computed for the 1841 x 1955 CR (RG1), tile 256, overlap 1."""
    pyramid = imaging.DeepZoom(1841, 1955, 256, 1)
    assert pyramid.levels == 12 and pyramid.max_level == 11
    assert pyramid.level_size(10) == (921, 978)
    assert pyramid.level_size(3) == (8, 8)  # ceil(1841 / 256), ceil(1955 / 256)
    assert pyramid.tile_grid(11) == (8, 8)
    first = pyramid.tile(11, 0, 0)
    assert (first.x, first.y, first.width, first.height) == (0, 0, 257, 257)
    inner = pyramid.tile(11, 1, 2)
    assert (inner.x, inner.y, inner.width, inner.height) == (255, 511, 258, 258)
    last = pyramid.tile(11, 7, 7)
    assert (last.x, last.y, last.width, last.height) == (1791, 1791, 50, 164)
    low = pyramid.tile(10, 3, 3)
    assert (low.x, low.width) == (767, 154)
    assert (low.source_x, low.source_width) == (1534, 307)
    assert (low.source_y, low.source_height) == (1534, 1955 - 1534)


def test_deep_zoom_tile_renders_at_its_size():
    ds = pydicom.dcmread(corpus.file("pydicom-data", "RG1_UNCI.dcm"))
    pyramid = imaging.DeepZoom(int(ds.Columns), int(ds.Rows), 256, 1)
    for level, col, row in [(11, 7, 7), (10, 3, 3), (8, 0, 0), (0, 0, 0)]:
        tile = pyramid.tile(level, col, row)
        image = imaging.render_frame(ds, 1, viewport=tile.viewport)
        assert image.shape == (tile.height, tile.width)


@pytest.mark.parametrize(
    "args",
    [(0, 10, 256, 1), (10, 10, 0, 1), (10, 10, 256, 256), (10, 10, 256, -1)],
)
def test_deep_zoom_rejects(args):
    with pytest.raises(imaging.InvalidParameter):
        imaging.DeepZoom(*args)


def test_deep_zoom_rejects_tiles_outside():
    pyramid = imaging.DeepZoom(1841, 1955)
    for level, col, row in [(12, 0, 0), (-1, 0, 0), (11, 8, 0), (11, 0, -1), (0, 1, 0)]:
        with pytest.raises(imaging.InvalidParameter):
            pyramid.tile(level, col, row)


def test_dzi_xml():
    root = ET.fromstring(imaging.dzi_xml(1841, 1955, 256, 1, "jpeg"))
    ns = "{http://schemas.microsoft.com/deepzoom/2008}"
    assert root.tag == f"{ns}Image"
    assert root.attrib == {"Format": "jpeg", "Overlap": "1", "TileSize": "256"}
    size = root.find(f"{ns}Size")
    assert size is not None and size.attrib == {"Width": "1841", "Height": "1955"}
    with pytest.raises(imaging.InvalidParameter):
        imaging.dzi_xml(10, 10, format="tiff")
