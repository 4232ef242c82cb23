"""Which stored image a rendered URL names: the lookup cache of immutable facts, found through the gate.

:func:`find_image` reads rows only through :class:`viewer.access.ProjectAccess`; the image views
call it first under :func:`memory_only` (on the event loop, from the cache) and then, if that
needs the database, in a thread.
"""

from __future__ import annotations

import contextvars
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from viewer.access import ProjectAccess
from viewer.models import Instance
from viewer.wsi import WSI_SOP_CLASS


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
        """Remember the instances of a series in display order (for :mod:`viewer.rendering.readahead`)."""
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


def answering_from_memory() -> bool:
    """True within :func:`memory_only` (for a cache the full path refreshes and the memory path reads)."""
    return _MEMORY_ONLY.get()


def needs_database() -> None:
    """Call before a query that a :func:`memory_only` caller must not make."""
    if _MEMORY_ONLY.get():
        raise NotInMemory


def find_image(access: ProjectAccess, sop: str, study: str = "", series: str = "") -> StoredImage | None:
    """The instance ``sop`` of the project, if the member behind ``access`` may reach it (checked to
    be in ``study``/``series`` when given).

    Rows come through the gate (:meth:`viewer.access.ProjectAccess.instances`). A cached instance is
    checked against the member's blinding (``ProjectAccess.reaches_series``). Only instances that every
    member who is not blinded may reach are cached: a quarantined one is looked up each time (organizers only), so
    releasing it takes effect at once in every process (an instance is never put back into quarantine).
    """
    project_id = access.project.pk
    key = (project_id, study, series, sop)
    found = LOOKUP_CACHE.get(key)
    if found is not None and access.blinding is not None and not access.reaches_series(found.series_id):
        return None  # cached for others; this member is blinded to it (the memory knows no member)
    if found is None:
        needs_database()
        if series and LOOKUP_CACHE.first_visit((project_id, study, series)):
            _index_series(access, study, series)
            found = LOOKUP_CACHE.get(key)
            if found is not None:
                return found
        instance = access.instances_in(study=study, series=series).filter(sop_instance_uid=sop).first()
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
    qs = access.instances_in(study=study, series=series).filter(quarantined=False)
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
