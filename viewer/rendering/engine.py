"""The rendering engine: stored instance + frame + options → encoded bytes, with the process-wide
caches of decoded frames and encoded outputs. The pixel work itself is :mod:`viewer.imaging`."""

from __future__ import annotations

from crossread.conf import option
from viewer import imaging
from viewer.imaging import FrameCache, PreparedFrame
from viewer.models import Instance
from viewer.rendering.flight import IN_FLIGHT
from viewer.rendering.lookup import StoredImage
from viewer.rendering.options import RenderOptions
from viewer.storage import object_store

FRAME_CACHE: FrameCache[PreparedFrame] = FrameCache(option("RENDER_FRAME_CACHE_BYTES"))


class _Encoded(bytes):
    """Encoded bytes, with the window the renderer chose itself (``auto_window``: none asked for and
    none in the file), which the image views send as ``X-Crossread-Window``."""

    auto_window: imaging.Window | None = None

    @property
    def nbytes(self) -> int:
        return len(self)


OUTPUT_CACHE: FrameCache[_Encoded] = FrameCache(option("RENDER_OUTPUT_CACHE_BYTES"))


def prepared_frame(instance: StoredImage | Instance, frame: int) -> PreparedFrame:
    """The decoded frame from the cache, or decoded from the stored file (and cached).

    A frame being decoded at this moment (for another request, or by the read-ahead) is waited
    for, not decoded twice.
    """
    key = (instance.project_id, instance.sha256, frame)
    found = FRAME_CACHE.get(key)
    if found is not None:
        return found
    frames = instance.number_of_frames or 1
    if not 1 <= frame <= frames:
        raise imaging.FrameNotFound(f"Frame {frame} does not exist; the instance has {frames} frame(s).")
    return IN_FLIGHT.run(key, lambda: FRAME_CACHE.get(key) or _decode(instance, frame, key))


def _decode(instance: StoredImage | Instance, frame: int, key: tuple[int, str, int]) -> PreparedFrame:
    data = object_store().read(instance.project_id, instance.sha256)
    found = imaging.prepare_frame(imaging.load_dataset(data), frame)
    FRAME_CACHE.put(key, found)
    return found


#: A JPEG of at most this many grey pixels, rendered from a frame already decoded (one lookup-table
#: pass and the encoder), takes about a millisecond: less than handing it to a thread and back.
QUICK_MAX_PIXELS = 512 * 512


def renders_quickly(instance: StoredImage, frame: int, options: RenderOptions) -> bool:
    """True when :func:`render` needs no decoding, no scaling and little work (see QUICK_MAX_PIXELS).

    The image views then render on the event loop instead of in the thread pool. If the frame is
    evicted between this check and the render, that one render decodes on the event loop; if the
    read-ahead is rendering the same image at that moment, the loop waits for it (about the time the
    render would take) rather than doing it twice (:class:`~viewer.rendering.flight.SingleFlight`).
    """
    if options.media_type != "image/jpeg" or options.viewport is not None:
        return False
    prepared = FRAME_CACHE.get((instance.project_id, instance.sha256, frame))
    return prepared is not None and prepared.pixels.size <= QUICK_MAX_PIXELS


def cached_render(tag: str) -> bytes | None:
    return OUTPUT_CACHE.get(tag)


def render_once(instance: StoredImage, frame: int, options: RenderOptions, tag: str) -> bytes:
    """:func:`_render`, unless the same image is being rendered already (then its result)."""
    return IN_FLIGHT.run(tag, lambda: OUTPUT_CACHE.get(tag) or _render(instance, frame, options, tag))


def _render(instance: StoredImage, frame: int, options: RenderOptions, tag: str) -> bytes:
    prepared, viewport = prepared_frame(instance, frame), options.viewport
    if viewport is not None:
        region = viewport.resolve(prepared.columns, prepared.rows)
        if region.downscales:  # average once per viewport, window the small image each time
            prepared, viewport = downscaled_frame(instance, frame, prepared, region), None
    pixels = imaging.render_prepared(prepared, window=options.window, viewport=viewport)
    auto = None if options.window is not None else imaging.auto_window(prepared)
    return remember(tag, imaging.encode(pixels, options.media_type, options.quality), auto_window=auto)


def downscaled_frame(
    instance: StoredImage, frame: int, prepared: PreparedFrame, region: imaging.Region
) -> PreparedFrame:
    key = (instance.project_id, instance.sha256, frame, region)
    found = FRAME_CACHE.get(key)
    if found is None:
        found = imaging.downscale_prepared(prepared, region)
        FRAME_CACHE.put(key, found)
    return found


def remember(tag: str, body: bytes, *, auto_window: imaging.Window | None = None) -> bytes:
    """Keep an encoded output under its ETag for the next identical request (with the window the
    renderer chose, when it chose one: :func:`window_headers`)."""
    encoded = _Encoded(body)
    encoded.auto_window = auto_window
    OUTPUT_CACHE.put(tag, encoded)
    return encoded


def window_headers(body: bytes) -> dict[str, str]:
    """``X-Crossread-Window: <center>,<width>`` and ``X-Crossread-Window-Source: auto`` for an output
    rendered with the window the renderer chose (the frame's range of values: no window asked for,
    none in the file), so the viewer shows the window in force and drags from it; else nothing."""
    window = getattr(body, "auto_window", None)
    if window is None:
        return {}
    return {"X-Crossread-Window": f"{window.center:.6g},{window.width:.6g}", "X-Crossread-Window-Source": "auto"}


def frame_size(instance: StoredImage | Instance) -> tuple[int, int]:
    """(columns, rows) of the instance's frames, from the index."""
    if not instance.rows or not instance.columns:
        raise imaging.NotAnImage("The instance has no image.")
    return instance.columns, instance.rows
