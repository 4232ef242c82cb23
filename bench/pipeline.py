"""In-process benchmark of the rendering pipeline (no HTTP, no Django).

Run: ``.venv/bin/python bench/pipeline.py [--repeat N]``

For a real 512x512 CT frame (pydicom-data 693_UNCI.dcm, 14-bit signed) it prints p50/p95 of:

* baseline: bare numpy windowing of the already-decoded stored values + simplejpeg encode;
* warm: ``render_frame`` with a cache hit (one LUT build + ``np.take``) + ``encode``;
* cold: read the file, decode, prepare, render, encode (no cache);

and the same for the 1841x1955 CR (RG1_UNCI.dcm, MONOCHROME1) scaled to a 1024 viewport.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import simplejpeg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo import corpus  # noqa: E402
from viewer import imaging  # noqa: E402


def _timings(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    for _ in range(3):
        action()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]


def _baseline_pixels(stored: np.ndarray, ds: pydicom.Dataset, center: float, width: float) -> np.ndarray:
    """Bare numpy: rescale, linear window (PS3.3 C.11.2.1.2.1), MONOCHROME1 inversion."""
    values = stored * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    grey = np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1) * 255
    if ds.PhotometricInterpretation == "MONOCHROME1":
        grey = 255 - grey
    return grey.astype(np.uint8)


def bench(title: str, path: Path, center: float, width: float, viewport: imaging.Viewport | None, repeat: int) -> None:
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array
    window = imaging.Window(center, width)
    cache: imaging.FrameCache[imaging.PreparedFrame] = imaging.FrameCache()
    windows = [imaging.Window(center + delta, width) for delta in range(-20, 21, 5)]
    turn = iter(range(10**9))

    def warm() -> bytes:
        # a different window each time, as when a reader drags the mouse
        chosen = windows[next(turn) % len(windows)]
        image = imaging.render_frame(ds, 1, window=chosen, viewport=viewport, cache=cache, key=path.name)
        return imaging.encode(image, "image/jpeg", 90)

    def cold() -> bytes:
        image = imaging.render_frame(path, 1, window=window, viewport=viewport)
        return imaging.encode(image, "image/jpeg", 90)

    def baseline() -> bytes:
        grey = _baseline_pixels(stored, ds, center, width)
        if viewport is not None:  # the same Pillow scaling as the pipeline
            grey = viewport.resolve(stored.shape[1], stored.shape[0]).scale(grey)
        return simplejpeg.encode_jpeg(grey[..., None], 90, colorspace="GRAY")

    base50, base95 = _timings(baseline, repeat)
    warm50, warm95 = _timings(warm, repeat)
    cold50, cold95 = _timings(cold, max(5, repeat // 4))
    print(f"\n{title}: {path.name} {ds.Columns}x{ds.Rows} {ds.PhotometricInterpretation}")
    print(f"  {'':34}{'p50 ms':>9}{'p95 ms':>9}{'x baseline':>12}")
    for label, p50, p95 in (
        ("baseline (numpy window + jpeg)", base50, base95),
        ("pipeline warm (cached decode)", warm50, warm95),
        ("pipeline cold (read+decode)", cold50, cold95),
    ):
        print(f"  {label:34}{p50:9.2f}{p95:9.2f}{p50 / base50:12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    bench("512x512 CT", corpus.file("pydicom-data", "693_UNCI.dcm"), 40, 400, None, args.repeat)
    try:
        cr = corpus.file("pydicom-data", "RG1_UNCI.dcm")
    except FileNotFoundError:
        print("\nRG1_UNCI.dcm (1841x1955 CR) is not installed: skipped")
        return
    ds = pydicom.dcmread(cr, stop_before_pixels=True)
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    bench("CR to a 1024 viewport", cr, center, width, imaging.Viewport(1024, 1024), max(20, args.repeat // 5))


if __name__ == "__main__":
    main()
