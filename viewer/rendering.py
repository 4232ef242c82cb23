"""Rendering service: stored instance + frame + request options → encoded image bytes.

Holds the process-wide caches (decoded frames, encoded outputs) and the rules that make a rendered
URL immutable: an ETag derived from the stored object's digest, the frame and the normalised
options, so the same URL always yields the same bytes and browsers and regional caches may keep it.
The pixel work itself is :mod:`viewer.imaging` (no Django).
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from django.http import QueryDict

from crossread.conf import option
from viewer import imaging
from viewer.dicomweb.multipart import parse_accept
from viewer.access import ProjectAccess
from viewer.imaging import FrameCache, PreparedFrame, RenderError, Viewport, Window
from viewer.models import Instance
from viewer.storage import object_store
from viewer.wsi import WSI_SOP_CLASS

#: Bump when the pipeline changes its output for the same input, so cached renders are not reused.
RENDER_VERSION = "1"
DEFAULT_QUALITY = 90
RENDERED_PARAMETERS = {"accept", "quality", "viewport", "window", "preset"}
EXTENSIONS = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}

T = TypeVar("T")

FRAME_CACHE: FrameCache[PreparedFrame] = FrameCache(option("RENDER_FRAME_CACHE_BYTES"))


class _Encoded(bytes):
    @property
    def nbytes(self) -> int:
        return len(self)


OUTPUT_CACHE: FrameCache[_Encoded] = FrameCache(option("RENDER_OUTPUT_CACHE_BYTES"))


@dataclass(frozen=True)
class StoredImage:
    """What rendering needs of an instance. All of it is fixed once the instance is stored."""

    project_id: int
    series_id: int
    sop_instance_uid: str
    sop_class_uid: str
    sha256: str
    number_of_frames: int
    rows: int | None
    columns: int | None

    @classmethod
    def of(cls, instance: Instance) -> StoredImage:
        return cls(
            instance.project_id,
            instance.series_id,
            instance.sop_instance_uid,
            instance.sop_class_uid,
            instance.sha256,
            instance.number_of_frames or 1,
            instance.rows,
            instance.columns,
        )

    @property
    def is_slide(self) -> bool:
        """A VL Whole Slide Microscopy image: served tile by tile from its stored frames."""
        return self.sop_class_uid == WSI_SOP_CLASS


@dataclass(frozen=True)
class SeriesOrder:
    """The visible instances of a series in display order (InstanceNumber), and each one's place."""

    images: tuple[StoredImage, ...]
    position: dict[str, int]


class _LookupCache:
    """A bounded LRU of StoredImage by (project, study, series, instance) UIDs.

    Only immutable facts are cached; who may see an instance is decided on every request.
    """

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, str, str, str], StoredImage] = OrderedDict()
        self._series: OrderedDict[tuple[int, str, str], None] = OrderedDict()
        self._orders: OrderedDict[int, SeriesOrder] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, str, str, str]) -> StoredImage | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[int, str, str, str], value: StoredImage) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def first_visit(self, series_key: tuple[int, str, str]) -> bool:
        """True the first time a series is asked for (then it is indexed; see ``_index_series``)."""
        with self._lock:
            if series_key in self._series:
                self._series.move_to_end(series_key)
                return False
            self._series[series_key] = None
            while len(self._series) > self.size // 10:
                self._series.popitem(last=False)
            return True

    def put_order(self, series_id: int, images: list[StoredImage]) -> None:
        """Remember the instances of a series in display order (for :func:`read_ahead`)."""
        order = SeriesOrder(tuple(images), {image.sop_instance_uid: i for i, image in enumerate(images)})
        with self._lock:
            self._orders[series_id] = order
            while len(self._orders) > self.size // 10:
                self._orders.popitem(last=False)

    def order(self, series_id: int) -> SeriesOrder | None:
        return self._orders.get(series_id)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._series.clear()
            self._orders.clear()


LOOKUP_CACHE = _LookupCache()

#: At most this many instances of a series are indexed by one query (see :func:`find_image`).
SERIES_LOOKUP_LIMIT = 5000


class NotInMemory(Exception):
    """Raised under :func:`memory_only` where an answer needs the database."""


_MEMORY_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("rendering_memory_only", default=False)


@contextmanager
def memory_only() -> Iterator[None]:
    """Within this block, lookups answer from the in-process caches or raise :class:`NotInMemory`.

    The image views resolve a request on the event loop this way first, and go to a thread (and the
    database) only when something is not cached.
    """
    token = _MEMORY_ONLY.set(True)
    try:
        yield
    finally:
        _MEMORY_ONLY.reset(token)


def needs_database() -> None:
    """Call before a query that a :func:`memory_only` caller must not make."""
    if _MEMORY_ONLY.get():
        raise NotInMemory


def find_image(access: ProjectAccess, sop: str, study: str = "", series: str = "") -> StoredImage | None:
    """The instance ``sop`` of the project, if the member behind ``access`` may reach it (checked to
    be in ``study``/``series`` when given).

    Rows come through the gate (:meth:`viewer.access.ProjectAccess.instances`). Only instances that
    every member may reach are cached: a quarantined one is looked up each time (organizers only), so
    releasing it takes effect at once in every process (an instance is never put back into quarantine).
    """
    project_id = access.project.pk
    key = (project_id, study, series, sop)
    found = LOOKUP_CACHE.get(key)
    if found is None:
        needs_database()
        if series and LOOKUP_CACHE.first_visit((project_id, study, series)):
            _index_series(access, study, series)
            found = LOOKUP_CACHE.get(key)
            if found is not None:
                return found
        qs = access.instances().filter(sop_instance_uid=sop)
        if series:
            qs = qs.filter(series__series_instance_uid=series)
        if study:
            qs = qs.filter(series__study__study_instance_uid=study)
        instance = qs.first()
        if instance is None:
            return None
        found = StoredImage.of(instance)
        if not instance.quarantined:
            LOOKUP_CACHE.put(key, found)
    return found


def _index_series(access: ProjectAccess, study: str, series: str) -> None:
    """Put every instance of the series that every member may reach in the lookup cache, with one query.

    A reader who opens a series scrolls through it: one query at the first request saves one per
    slice. Done once per series and process (instances stored later, quarantined ones and series
    larger than :data:`SERIES_LOOKUP_LIMIT` are looked up one by one, as before), so requests for
    unknown UIDs cannot make the server read a whole series again and again.
    """
    project_id = access.project.pk
    qs = access.instances().filter(series__series_instance_uid=series, quarantined=False)
    if study:
        qs = qs.filter(series__study__study_instance_uid=study)
    instances = list(qs.order_by("series_id", "instance_number", "pk")[: SERIES_LOOKUP_LIMIT + 1])
    if len(instances) > SERIES_LOOKUP_LIMIT:
        return
    by_series: dict[int, list[StoredImage]] = {}
    for instance in instances:
        image = StoredImage.of(instance)
        LOOKUP_CACHE.put((project_id, study, series, instance.sop_instance_uid), image)
        by_series.setdefault(image.series_id, []).append(image)
    for series_id, images in by_series.items():
        LOOKUP_CACHE.put_order(series_id, images)


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


def etag(instance: StoredImage, frame: int, options: RenderOptions) -> str:
    digest = hashlib.sha256(
        f"{RENDER_VERSION}|{instance.sha256}|{frame}|{options.fingerprint()}".encode()
    ).hexdigest()
    return f'"{digest[:32]}"'


class _SingleFlight:
    """At most one computation per key at a time: a second caller for the same key waits for the
    first one's result (or its error) instead of doing the work again.

    Scrolling asks for the same slice from several places at once: the browser's requests in flight
    and the read-ahead (a fifth of the renders of the viewer's loading pattern were done twice).
    """

    def __init__(self) -> None:
        self._running: dict[object, Future[object]] = {}
        self._lock = threading.Lock()

    def run(self, key: object, work: Callable[[], T]) -> T:
        with self._lock:
            running = self._running.get(key)
            if running is None:
                mine: Future[object] = Future()
                self._running[key] = mine
        if running is not None:
            return running.result()  # type: ignore[return-value]
        try:
            result = work()
            mine.set_result(result)
            return result
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        finally:
            with self._lock:
                del self._running[key]

    def __contains__(self, key: object) -> bool:
        return key in self._running


_IN_FLIGHT = _SingleFlight()


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
    return _IN_FLIGHT.run(key, lambda: FRAME_CACHE.get(key) or _decode(instance, frame, key))


def _decode(instance: StoredImage | Instance, frame: int, key: tuple[int, str, int]) -> PreparedFrame:
    data = object_store().read(instance.project_id, instance.sha256)
    found = imaging.prepare_frame(imaging.load_dataset(data), frame)
    FRAME_CACHE.put(key, found)
    return found


class _ReadAhead:
    """Decodes and renders the next few slices of a series a reader is scrolling, before they are
    asked for.

    A reader who scrolls a stack asks for the slices in order, with the same window and size. When
    a single-frame instance of an indexed series (see ``_index_series``) is rendered, the next
    :data:`READ_AHEAD` slices in the direction of scrolling are decoded and rendered with the same
    options by ONE background thread, so the next requests are answered from the output cache.
    The work is done while the reader's browser is busy with the last image, instead of while it
    waits for the next; speculative work never takes more than one core, and at most
    ``2 * READ_AHEAD`` slices wait in its queue. A change of window renders ahead with the new one.

    Only immutable stored objects are read (no database, no access decision: the frames and images
    go to the caches, which are reached only through a request that passed the access check for the
    instance). A request for a slice being decoded or rendered here waits for it (:class:`_SingleFlight`);
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
            if tag not in OUTPUT_CACHE and tag not in _IN_FLIGHT:  # (a request got there first)
                _render_once(image, 1, options, tag)
        except Exception:  # noqa: BLE001 - the request for this slice reports its own error
            pass
        finally:
            with self._lock:
                self._queued.discard(tag)


#: Slices decoded and rendered ahead of a reader scrolling a series (0 turns the read-ahead off).
READ_AHEAD = 8
_READ_AHEAD = _ReadAhead(READ_AHEAD)


#: A JPEG of at most this many grey pixels, rendered from a frame already decoded (one lookup-table
#: pass and the encoder), takes about a millisecond: less than handing it to a thread and back.
QUICK_MAX_PIXELS = 512 * 512


def renders_quickly(instance: StoredImage, frame: int, options: RenderOptions) -> bool:
    """True when :func:`render` needs no decoding, no scaling and little work (see QUICK_MAX_PIXELS).

    The image views then render on the event loop instead of in the thread pool. If the frame is
    evicted between this check and the render, that one render decodes on the event loop; if the
    read-ahead is rendering the same image at that moment, the loop waits for it (about the time the
    render would take) rather than doing it twice (:class:`_SingleFlight`).
    """
    if options.media_type != "image/jpeg" or options.viewport is not None:
        return False
    prepared = FRAME_CACHE.get((instance.project_id, instance.sha256, frame))
    return prepared is not None and prepared.pixels.size <= QUICK_MAX_PIXELS


def cached_render(tag: str) -> bytes | None:
    return OUTPUT_CACHE.get(tag)


def render(instance: StoredImage, frame: int, options: RenderOptions, tag: str | None = None) -> bytes:
    tag = tag or etag(instance, frame, options)
    cached = OUTPUT_CACHE.get(tag)
    if cached is not None:
        return cached
    body = _render_once(instance, frame, options, tag)
    read_ahead(instance, frame, options)
    return body


def _render_once(instance: StoredImage, frame: int, options: RenderOptions, tag: str) -> bytes:
    """:func:`_render`, unless the same image is being rendered already (then its result)."""
    return _IN_FLIGHT.run(tag, lambda: OUTPUT_CACHE.get(tag) or _render(instance, frame, options, tag))


def read_ahead(instance: StoredImage, frame: int, options: RenderOptions) -> None:
    """``frame`` of ``instance`` was shown with ``options``: prepare the next slices (see _ReadAhead).

    :func:`render` calls it; so does a view answering from the output cache, so that a reader
    scrolling through slices rendered ahead keeps the read-ahead going."""
    _READ_AHEAD.after(instance, frame, options)


def _render(instance: StoredImage, frame: int, options: RenderOptions, tag: str) -> bytes:
    prepared, viewport = prepared_frame(instance, frame), options.viewport
    if viewport is not None:
        region = viewport.resolve(prepared.columns, prepared.rows)
        if region.downscales:  # average once per viewport, window the small image each time
            prepared, viewport = downscaled_frame(instance, frame, prepared, region), None
    pixels = imaging.render_prepared(prepared, window=options.window, viewport=viewport)
    return remember(tag, imaging.encode(pixels, options.media_type, options.quality))


def downscaled_frame(
    instance: StoredImage, frame: int, prepared: PreparedFrame, region: imaging.Region
) -> PreparedFrame:
    key = (instance.project_id, instance.sha256, frame, region)
    found = FRAME_CACHE.get(key)
    if found is None:
        found = imaging.downscale_prepared(prepared, region)
        FRAME_CACHE.put(key, found)
    return found


def remember(tag: str, body: bytes) -> bytes:
    """Keep an encoded output under its ETag for the next identical request."""
    encoded = _Encoded(body)
    OUTPUT_CACHE.put(tag, encoded)
    return encoded


def frame_size(instance: StoredImage | Instance) -> tuple[int, int]:
    """(columns, rows) of the instance's frames, from the index."""
    if not instance.rows or not instance.columns:
        raise imaging.NotAnImage("The instance has no image.")
    return instance.columns, instance.rows


__all__ = ["RenderError", "RenderOptions", "etag", "parse_options", "prepared_frame", "render"]
