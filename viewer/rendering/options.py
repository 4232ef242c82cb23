"""What a rendered URL asks for (PS3.18 8.3.5.1 parameters), and the ETag that makes it immutable.

An ETag is derived from the stored object's digest (or a slide level's UID), the place in it (frame,
or level and tile) and the normalised options, so the same URL always yields the same bytes and
browsers and regional caches may keep it. Frames, tiles, slide tiles and reformatted planes all get
theirs from :func:`tag_of`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from django.http import QueryDict

from viewer import imaging
from viewer.dicomweb.multipart import parse_accept
from viewer.imaging import Viewport, Window
from viewer.rendering.lookup import StoredImage

#: Bump when the pipeline changes its output for the same input, so cached renders are not reused.
RENDER_VERSION = "1"
DEFAULT_QUALITY = 90
RENDERED_PARAMETERS = {"accept", "quality", "viewport", "window", "preset"}
EXTENSIONS = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}


@dataclass(frozen=True)
class RenderOptions:
    window: Window | None = None
    viewport: Viewport | None = None
    media_type: str = "image/jpeg"
    quality: int = DEFAULT_QUALITY

    def fingerprint(self) -> str:
        window = f"{self.window.center:g},{self.window.width:g},{self.window.function}" if self.window else "-"
        return f"{window}|{self.viewport or '-'}|{self.media_type}|{self.quality}"


@functools.lru_cache(maxsize=512)
def choose_media_type(requested: str | None, accept_header: str) -> str:
    """The output type from the ``accept`` parameter, else the Accept header; JPEG by default.

    Cached: a pure function of two strings, and a browser sends the same Accept header with every
    image (an unsupported type raises, and exceptions are not cached).
    """
    candidates = [requested] if requested else [m.type for m in parse_accept(accept_header or "*/*")]
    for media in candidates:
        if media in EXTENSIONS:
            return media
        if media in ("*/*", "image/*"):
            return "image/jpeg"
    raise imaging.UnsupportedMediaType(
        f"Rendered images are available as {', '.join(EXTENSIONS)}; not {(requested or accept_header)[:80]}."
    )


def parse_options(params: QueryDict, accept_header: str = "", *, viewport: Viewport | None = None) -> RenderOptions:
    """Options from the PS3.18 8.3.5.1 query parameters (plus ``preset``, a named window)."""
    unknown = sorted(set(params) - RENDERED_PARAMETERS)
    if unknown:
        raise imaging.InvalidParameter(f"Unknown parameter {unknown[0][:40]!r} for a rendered resource.")
    window = None
    if params.get("window"):
        window = imaging.parse_window(params["window"])
    elif params.get("preset"):
        window = imaging.preset_window(params["preset"])
    if params.get("viewport"):
        viewport = imaging.parse_viewport(params["viewport"])
    quality = DEFAULT_QUALITY
    if params.get("quality"):
        try:
            quality = int(params["quality"])
        except ValueError:
            raise imaging.InvalidParameter("quality must be an integer from 1 to 100.") from None
        if not 1 <= quality <= 100:
            raise imaging.InvalidParameter("quality must be an integer from 1 to 100.")
    return RenderOptions(window, viewport, choose_media_type(params.get("accept"), accept_header), quality)


def tag_of(*parts: object, options: RenderOptions) -> str:
    """The strong ETag of a rendered image: what was rendered (``parts``: an immutable source and the
    place in it) and how (``options``), under :data:`RENDER_VERSION`."""
    key = "|".join([RENDER_VERSION, *map(str, parts), options.fingerprint()])
    return f'"{hashlib.sha256(key.encode()).hexdigest()[:32]}"'


def etag(instance: StoredImage, frame: int, options: RenderOptions) -> str:
    """The ETag of ``frame`` of a stored instance rendered with ``options`` (also a Deep Zoom tile's,
    whose viewport is in the options)."""
    return tag_of(instance.sha256, frame, options=options)
