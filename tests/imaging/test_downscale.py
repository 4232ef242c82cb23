"""Down-scaling before VOI: stored values are averaged once per viewport, then windowed."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.imaging import PreparedFrame, Viewport, Window, downscale_prepared, render_prepared


def grey_frame() -> PreparedFrame:
    pixels = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16)
    return PreparedFrame(pixels, offset=-1000, entries=256)


def test_box_average_of_stored_values():
    frame = grey_frame()
    region = Viewport(8, 8).resolve(16, 16)
    small = downscale_prepared(frame, region)
    expected = frame.pixels.reshape(8, 2, 8, 2).mean(axis=(1, 3))
    assert small.pixels.shape == (8, 8) and small.pixels.dtype == np.uint16
    assert np.abs(small.pixels - np.rint(expected)).max() == 0
    assert (small.offset, small.entries) == (frame.offset, frame.entries)
    assert small.value_range == frame.value_range  # the full-range window is the whole frame's


def test_windowing_the_small_image_matches_windowing_then_averaging_inside_the_window():
    frame = grey_frame()
    window = Window(-1000 + 128, 400)  # every value inside the window: the two orders agree
    region = Viewport(8, 8).resolve(16, 16)
    first = render_prepared(downscale_prepared(frame, region), window=window).astype(int)
    full = render_prepared(frame, window=window).astype(float)
    second = full.reshape(8, 2, 8, 2).mean(axis=(1, 3))
    assert np.abs(first - second).max() <= 1


def test_colour_and_refusal():
    rgb = PreparedFrame(np.full((10, 10, 3), 200, dtype=np.uint8))
    assert downscale_prepared(rgb, Viewport(5, 5).resolve(10, 10)).pixels.shape == (5, 5, 3)
    with pytest.raises(ValueError):
        downscale_prepared(grey_frame(), Viewport(32, 32).resolve(16, 16))
