"""Serving whole-slide images: find a slide's stored levels and answer Deep Zoom tiles from them.

The pixel work is :mod:`viewer.wsi` (no Django); this module finds the files and caches the
pyramid index (headers and frame offsets, not pixels) per set of stored levels.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable

from viewer import imaging, wsi
from viewer.access import ProjectAccess
from viewer.rendering import OUTPUT_CACHE, RenderOptions, StoredImage, needs_database, remember, tag_of
from viewer.storage import object_store

_PYRAMIDS: OrderedDict[tuple[str, ...], wsi.Pyramid] = OrderedDict()
_LOCK = threading.Lock()
_MAX_PYRAMIDS = 256


def pyramid_for(access: ProjectAccess, image: StoredImage) -> wsi.Pyramid:
    """The pyramid of the slide ``image`` belongs to: every level of its series the member may reach."""
    needs_database()
    levels = access.instances().filter(series_id=image.series_id, sop_class_uid=wsi.WSI_SOP_CLASS)
    digests = tuple(sorted(levels.values_list("sha256", flat=True)))
    if not digests:
        raise wsi.SlideError("The slide has no visible level.")
    with _LOCK:
        found = _PYRAMIDS.get(digests)
        if found is not None:
            _PYRAMIDS.move_to_end(digests)
            return found
    store = object_store()
    pyramid = wsi.slide_levels_from([store.path(image.project_id, digest) for digest in digests])
    with _LOCK:
        _PYRAMIDS[digests] = pyramid
        while len(_PYRAMIDS) > _MAX_PYRAMIDS:
            _PYRAMIDS.popitem(last=False)
    return pyramid


def tile_source(
    pyramid: wsi.Pyramid, level: int, col: int, row: int, options: RenderOptions
) -> tuple[str, Callable[[], bytes]]:
    """(ETag, producer) of Deep Zoom tile (level, col, row); validates the tile's position now."""
    width, height = pyramid.level_size(level)
    size = pyramid.tile_size
    if not (0 <= col < -(-width // size) and 0 <= row < -(-height // size)):
        raise wsi.SlideError("The tile is outside the slide level.")
    stored, scale = pyramid.stored_for(level)
    tag = tag_of("slide", stored.sop_instance_uid, level, col, row, options=options)
    inside = (col + 1) * size <= stored.width and (row + 1) * size <= stored.height  # edge tiles are padded
    if scale == 1 and inside and options.media_type == "image/jpeg" and stored.transfer_syntax_uid in JPEG_SYNTAXES:
        return tag, functools.partial(stored.read_tile, col, row)
    return tag, functools.partial(_composed, stored, scale, col, row, size, (width, height), options, tag)


#: Stored tiles in these syntaxes are complete JPEG files a browser shows as they are.
JPEG_SYNTAXES = {"1.2.840.10008.1.2.4.50"}


def _composed(
    stored: wsi.SlideLevel, scale: int, col: int, row: int, size: int, level_size: tuple[int, int],
    options: RenderOptions, tag: str,
) -> bytes:
    cached = OUTPUT_CACHE.get(tag)
    if cached is not None:
        return cached
    pixels = wsi.compose_tile(stored, scale, col, row, size, level_size)
    return remember(tag, imaging.encode(pixels, options.media_type, options.quality))
