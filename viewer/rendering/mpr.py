"""Reformatted planes (MPR): a series' slices found through the gate, assembled once into a volume
(the Modality LUT applied) and cached, and its axial, sagittal and coronal planes rendered as frames are.

The geometry and the reslicing are :mod:`viewer.volume` (pure). Here:

- :func:`series_volume`: the series' instances this member may reach (``ProjectAccess.instances_in``),
  each one's geometry (read once per stored object: it is fixed by the object), checked to be one
  regular stack and bounded in size (``MPR_MAX_VOLUME_BYTES``). A series with instances held in
  quarantine is assembled, for a member who may not see them, from the visible ones only: a gap,
  unless the held ones were at an end, and a gap is refused as for any irregular series. The result
  is named by the digests of its slices' objects in stack order (:attr:`SeriesVolume.key`), so a
  volume, a plane and its ETag change when a slice is added or released.
- :func:`volume_of`: the volume from :data:`VOLUME_CACHE` (bounded, counted in bytes), or assembled
  once for all the requests that want it at the same moment (:data:`~viewer.rendering.flight.IN_FLIGHT`)
  from the decoded frames of :data:`~viewer.rendering.engine.FRAME_CACHE`, decoding those that are not.
- :func:`render_plane`: a plane (kept with the decoded frames, so a new window does not reslice) windowed,
  scaled and encoded as a frame, under the ETag :func:`plane_etag` gives through the one rule,
  :func:`~viewer.rendering.options.tag_of`; the bytes go to the output cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from crossread.conf import option
from crossread.errors import NotFound
from viewer import imaging, volume
from viewer.access import ProjectAccess
from viewer.imaging import FrameCache, PreparedFrame
from viewer.rendering.engine import FRAME_CACHE, OUTPUT_CACHE, QUICK_MAX_PIXELS, prepared_frame, remember
from viewer.rendering.flight import IN_FLIGHT
from viewer.rendering.lookup import StoredImage, answering_from_memory, needs_database
from viewer.rendering.options import RenderOptions, tag_of

#: At most this many instances make a volume (a larger series is refused before any is read).
MPR_SERIES_LIMIT = 5000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Recent(Generic[K, V]):
    """A small thread-safe LRU of immutable facts, bounded in entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class SeriesVolume:
    """A series' slices as one regular stack: what its volume and planes are made of and named by."""

    project_id: int
    images: tuple[StoredImage, ...]  # in the order given to volume.build_stack
    stack: volume.Stack
    key: str  # the slices' objects in stack order, digested

    def layout(self, plane: str) -> volume.PlaneLayout:
        return self.stack.layout(plane)

    def sop_instance_uids(self) -> list[str]:
        """The slices' SOP Instance UIDs in stack order (``<acquisition plane>/k`` is the k-th)."""
        return [self.images[i].sop_instance_uid for i in self.stack.order]


#: The geometry of each stored object (or why it cannot be a slice), by digest: fixed by the object.
GEOMETRY: _Recent[str, volume.SliceGeometry | volume.NotAStack] = _Recent(200_000)
#: The stacks of series that every member reaches alike, for the image views' in-memory path; the
#: full path reads the rows again each time and refreshes them.
STACKS: _Recent[tuple[int, str], SeriesVolume] = _Recent(1000)
VOLUME_CACHE: FrameCache[volume.Volume] = FrameCache(option("MPR_VOLUME_CACHE_BYTES"))


def series_volume(access: ProjectAccess, series: str) -> SeriesVolume:
    """The series ``series`` of the project as a regular stack, from the instances this member may reach.

    Raises ``NotFound`` for a series with no instance the member may reach (hidden and unknown series
    answer alike), :class:`viewer.volume.NotAStack` (422) for a series that is not one regular stack
    of grey images, :class:`viewer.volume.VolumeTooLarge` (413) past ``MPR_MAX_VOLUME_BYTES``.
    """
    project_id = access.project.pk
    if answering_from_memory():
        found = STACKS.get((project_id, series))
        if found is not None and access.reaches_series(found.images[0].series_id):  # (a blinded reader may not)
            return found
        needs_database()
    rows = list(access.instances_in(series=series).defer("metadata").order_by("pk")[: MPR_SERIES_LIMIT + 1])
    if not rows:
        raise NotFound("No such series.")
    if len(rows) > MPR_SERIES_LIMIT:
        raise volume.VolumeTooLarge(f"A volume is made of at most {MPR_SERIES_LIMIT} instances.")
    if any(not row.rows or not row.columns for row in rows):
        raise volume.NotAStack("The series holds instances without an image: it cannot be reformatted.")
    if any((row.number_of_frames or 1) != 1 for row in rows):
        raise volume.NotAStack("Multi-frame instances cannot be reformatted yet.")
    unknown = [row.pk for row in rows if GEOMETRY.get(row.sha256) is None]
    for start in range(0, len(unknown), 500):
        chunk = unknown[start : start + 500]
        for sha256, metadata in access.instances_in(series=series).filter(pk__in=chunk).values_list("sha256", "metadata"):
            try:
                GEOMETRY.put(sha256, volume.slice_geometry(metadata))
            except volume.NotAStack as refusal:
                GEOMETRY.put(sha256, refusal)
    geometries = []
    for row in rows:
        found_geometry = GEOMETRY.get(row.sha256)
        if isinstance(found_geometry, volume.NotAStack):
            raise volume.NotAStack(found_geometry.detail)
        if found_geometry is None:  # evicted meanwhile (a very busy process): read on the next request
            raise volume.NotAStack("The series' geometry could not be read; try again.")
        geometries.append(found_geometry)
    stack = volume.build_stack(geometries)
    volume.check_size(stack, option("MPR_MAX_VOLUME_BYTES"))
    images = tuple(StoredImage.of(row) for row in rows)
    key = hashlib.sha256("|".join(images[i].sha256 for i in stack.order).encode()).hexdigest()[:32]
    found = SeriesVolume(project_id, images, stack, key)
    if not access.hides_quarantine and not any(row.quarantined for row in rows):
        STACKS.put((project_id, series), found)  # what every member sees: the memory path may answer
    return found


def check_plane(series: SeriesVolume, plane: str, index: int) -> volume.PlaneLayout:
    """The plane's layout, or a refusal (an unknown plane, an index out of range) before any work."""
    layout = series.layout(plane)
    if not 0 <= index < layout.count:
        raise volume.PlaneOutOfRange(
            f"The {plane} plane {index} does not exist; there are {layout.count} (0 to {layout.count - 1}).")
    return layout


def plane_etag(series: SeriesVolume, plane: str, index: int, options: RenderOptions) -> str:
    """The strong ETag of a rendered plane: the volume's slices, the plane and the options."""
    return tag_of(series.key, "mpr", plane, index, options=options)


def _volume_key(series: SeriesVolume) -> tuple[object, ...]:
    return ("volume", series.project_id, series.key)


def volume_of(series: SeriesVolume) -> volume.Volume:
    """The volume from the cache, or assembled once (other callers wait for it)."""
    key = _volume_key(series)
    found = VOLUME_CACHE.get(key)
    if found is not None:
        return found
    return IN_FLIGHT.run(key, lambda: VOLUME_CACHE.get(key) or _assemble(series, key))


#: One thread that assembles the volume of a series whose planes were just described: the viewer asks
#: for the description first, then for planes, so their first request finds the volume ready or under
#: way (it waits for it, :data:`IN_FLIGHT`) instead of starting it one round trip later.
_WARMING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mpr-warm")


def warm(series: SeriesVolume) -> None:
    """Assemble ``series``' volume in the background unless it is cached (no database, no access
    decision: the volume is reached only through a request that passed the gate for the series)."""
    if _volume_key(series) in VOLUME_CACHE:
        return

    def run() -> None:
        try:
            volume_of(series)
        except Exception:  # noqa: BLE001 - a plane request reports the failure itself
            return

    _WARMING.submit(run)


def _assemble(series: SeriesVolume, key: Hashable) -> volume.Volume:
    frames = [prepared_frame(image, 1) for image in series.images]  # decoded ones from the frame cache
    found = volume.assemble(frames, series.stack)
    VOLUME_CACHE.put(key, found)
    return found


def _plane_key(series: SeriesVolume, plane: str, index: int) -> tuple[object, ...]:
    return ("mpr", series.project_id, series.key, plane, index)


def plane_frame(series: SeriesVolume, plane: str, index: int) -> PreparedFrame:
    """The plane, resliced, ready to be windowed: kept with the decoded frames, so a new window or
    size does not reslice. Planes across the volume's last axis are cut a block at a time
    (:func:`viewer.volume.block_of`): scrolling sagittal planes finds the next ones ready."""
    key = _plane_key(series, plane, index)
    found = FRAME_CACHE.get(key)
    if found is not None:
        return found
    start, stop = volume.block_of(series.layout(plane), index)
    block_key = ("mpr-block", series.project_id, series.key, plane, start)
    return IN_FLIGHT.run(block_key, lambda: FRAME_CACHE.get(key) or _cut(series, plane, index, start, stop))


def _cut(series: SeriesVolume, plane: str, index: int, start: int, stop: int) -> PreparedFrame:
    frames = volume_of(series).prepared_block(plane, start, stop)
    for number, frame in enumerate(frames, start):
        FRAME_CACHE.put(_plane_key(series, plane, number), frame)
    return frames[index - start]


def renders_quickly(series: SeriesVolume, plane: str, index: int, options: RenderOptions) -> bool:
    """True when the plane renders about as quickly as a decoded frame does
    (:func:`viewer.rendering.engine.renders_quickly`): resliced already, or one plane to cut from a
    cached volume along its contiguous memory (an axial or coronal plane of an axial volume: well
    under a millisecond). Then on the event loop, without a thread hop."""
    if options.media_type != "image/jpeg" or options.viewport is not None:
        return False
    found = FRAME_CACHE.get(_plane_key(series, plane, index))
    if found is not None:
        return found.pixels.size <= QUICK_MAX_PIXELS
    layout = series.layout(plane)
    return (volume.block_of(layout, index) == (index, index + 1) and layout.rows * layout.columns <= QUICK_MAX_PIXELS
            and _volume_key(series) in VOLUME_CACHE)


def render_plane(series: SeriesVolume, plane: str, index: int, options: RenderOptions, tag: str) -> bytes:
    """The encoded plane: from the output cache, or rendered once per ETag at a time."""
    return IN_FLIGHT.run(tag, lambda: OUTPUT_CACHE.get(tag) or _render(series, plane, index, options, tag))


def _render(series: SeriesVolume, plane: str, index: int, options: RenderOptions, tag: str) -> bytes:
    frame = plane_frame(series, plane, index)
    pixels = imaging.render_prepared(frame, window=options.window, viewport=options.viewport)
    auto = None if options.window is not None else imaging.auto_window(frame)
    return remember(tag, imaging.encode(pixels, options.media_type, options.quality), auto_window=auto)


def _number(value: float) -> str:
    return f"{value:.10g}"


def plane_headers(layout: volume.PlaneLayout, index: int) -> dict[str, str]:
    """The geometry of plane ``index`` for the viewer, as response headers (comma-separated numbers:
    patient coordinates in mm, DICOM's order and conventions)."""
    return {
        "X-Crossread-Plane": f"{layout.plane} {index} of {layout.count}",
        "X-Crossread-Plane-Position": ",".join(map(_number, layout.position(index))),
        "X-Crossread-Plane-Orientation": ",".join(map(_number, layout.row_cosines + layout.column_cosines)),
        "X-Crossread-Plane-Pixel-Spacing": ",".join(map(_number, layout.pixel_spacing)),
        "X-Crossread-Plane-Spacing": _number(layout.spacing),
        "X-Crossread-Plane-Normal": ",".join(map(_number, layout.normal)),
    }


def describe(series: SeriesVolume, plane: str) -> dict[str, object]:
    """The JSON description of a plane's stack: its layout, the volume it comes from, and its slices."""
    rows, columns = series.stack.shape[1:]
    return {
        **series.layout(plane).describe(),
        "volume": {
            "acquisition": series.stack.acquisition,
            "slices": series.stack.shape[0],
            "slice_spacing": series.stack.slice_spacing,
            "rows": rows,
            "columns": columns,
            "sop_instance_uids": series.sop_instance_uids(),
        },
    }
