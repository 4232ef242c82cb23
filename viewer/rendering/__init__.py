"""Rendering service: stored instance + frame + request options → encoded image bytes.

One module per concern:

- :mod:`~viewer.rendering.lookup`: which stored image a URL names (through the access gate), the
  lookup cache of immutable facts, and the memory-only mode of the event loop's first try;
- :mod:`~viewer.rendering.options`: the request's options and the ETag that makes a rendered URL
  immutable (frames, tiles and slide tiles alike);
- :mod:`~viewer.rendering.engine`: decode, window and encode, with the caches of decoded frames and
  encoded outputs;
- :mod:`~viewer.rendering.flight`: one decode and one render per key at a time;
- :mod:`~viewer.rendering.readahead`: the next slices of a scrolled series, rendered before they are
  asked for;
- :mod:`~viewer.rendering.mpr`: reformatted planes: a series assembled once into a volume (cached),
  its axial, sagittal and coronal planes rendered as frames are (the geometry is :mod:`viewer.volume`).

The pixel work itself is :mod:`viewer.imaging` (no Django). :func:`render` is the entry point.
"""

from __future__ import annotations

from viewer.imaging import RenderError
from viewer.rendering.engine import (
    FRAME_CACHE,
    OUTPUT_CACHE,
    cached_render,
    frame_size,
    prepared_frame,
    remember,
    render_once,
    renders_quickly,
    window_headers,
)
from viewer.rendering.flight import SingleFlight
from viewer.rendering.lookup import (
    LOOKUP_CACHE,
    NotInMemory,
    StoredImage,
    find_image,
    memory_only,
    needs_database,
)
from viewer.rendering.options import RENDER_VERSION, RenderOptions, etag, parse_options, tag_of
from viewer.rendering.readahead import READ_AHEAD, read_ahead


def render(instance: StoredImage, frame: int, options: RenderOptions, tag: str | None = None) -> bytes:
    """The encoded image: from the output cache, or rendered once; then the read-ahead moves on."""
    tag = tag or etag(instance, frame, options)
    cached = OUTPUT_CACHE.get(tag)
    if cached is not None:
        return cached
    body = render_once(instance, frame, options, tag)
    read_ahead(instance, frame, options)
    return body


__all__ = [
    "FRAME_CACHE", "LOOKUP_CACHE", "OUTPUT_CACHE", "READ_AHEAD", "RENDER_VERSION", "NotInMemory", "RenderError",
    "RenderOptions", "SingleFlight", "StoredImage", "cached_render", "etag", "find_image", "frame_size",
    "memory_only", "needs_database", "parse_options", "prepared_frame", "read_ahead", "remember", "render",
    "renders_quickly", "tag_of", "window_headers",
]
