"""Read-ahead: the next slices of a series being scrolled, decoded and rendered before they are asked for."""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from viewer.models import Instance
from viewer.rendering.engine import OUTPUT_CACHE, render_once
from viewer.rendering.flight import IN_FLIGHT
from viewer.rendering.lookup import LOOKUP_CACHE, StoredImage
from viewer.rendering.options import RenderOptions, etag


class ReadAhead:
    """Decodes and renders the next few slices of a series a reader is scrolling, before they are
    asked for.

    A reader who scrolls a stack asks for the slices in order, with the same window and size. When
    a single-frame instance of an indexed series (see :func:`viewer.rendering.lookup.find_image`) is rendered, the next
    :data:`READ_AHEAD_DEPTH` slices in the direction of scrolling are decoded and rendered with the same
    options by ONE background thread, so the next requests are answered from the output cache.
    The work is done while the reader's browser is busy with the last image, instead of while it
    waits for the next; speculative work never takes more than one core, and at most
    ``2 * READ_AHEAD`` slices wait in its queue. A change of window renders ahead with the new one.

    Only immutable stored objects are read (no database, no access decision: the frames and images
    go to the caches, which are reached only through a request that passed the access check for the
    instance). A request for a slice being decoded or rendered here waits for it (:class:`~viewer.rendering.flight.SingleFlight`);
    one for a slice still queued does the work itself (the queued job then finds it done).
    """

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._queued: set[str] = set()  # ETags of the renders waiting for the thread
        self._last: OrderedDict[int, int] = OrderedDict()  # series id -> last position asked for
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")

    def after(self, instance: StoredImage | Instance, frame: int, options: RenderOptions) -> None:
        """Note that ``instance`` was shown with ``options``; queue the slices after it."""
        if self.depth <= 0 or frame != 1 or (instance.number_of_frames or 1) != 1:
            return
        order = LOOKUP_CACHE.order(instance.series_id)
        here = order.position.get(instance.sop_instance_uid) if order is not None else None
        if order is None or here is None:
            return
        with self._lock:
            last = self._last.pop(instance.series_id, None)
            self._last[instance.series_id] = here
            if len(self._last) > 1000:
                self._last.popitem(last=False)
            step = -1 if last is not None and here < last else 1
            for distance in range(1, self.depth + 1):
                place = here + distance * step
                if not 0 <= place < len(order.images) or len(self._queued) >= 2 * self.depth:
                    break
                image = order.images[place]
                tag = etag(image, 1, options)
                if tag in self._queued or tag in OUTPUT_CACHE:
                    continue
                self._queued.add(tag)
                self._pool.submit(self._ahead, image, options, tag)

    def _ahead(self, image: StoredImage, options: RenderOptions, tag: str) -> None:
        try:
            if tag not in OUTPUT_CACHE and tag not in IN_FLIGHT:  # (a request got there first)
                render_once(image, 1, options, tag)
        except Exception:  # noqa: BLE001 - the request for this slice reports its own error
            pass
        finally:
            with self._lock:
                self._queued.discard(tag)


#: Slices decoded and rendered ahead of a reader scrolling a series (0 turns the read-ahead off).
READ_AHEAD_DEPTH = 8
READ_AHEAD = ReadAhead(READ_AHEAD_DEPTH)


def read_ahead(instance: StoredImage, frame: int, options: RenderOptions) -> None:
    """``frame`` of ``instance`` was shown with ``options``: prepare the next slices (see :class:`ReadAhead`).

    :func:`viewer.rendering.render` calls it; so does a view answering from the output cache, so that
    a reader scrolling through slices rendered ahead keeps the read-ahead going."""
    READ_AHEAD.after(instance, frame, options)
