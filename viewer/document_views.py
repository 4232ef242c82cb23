"""Non-image objects for the viewer, through the gate: SR documents as report trees, SEG segments as
coloured masks on their source images, RT Structure Set contours (see docs/viewer.md).

- ``GET /projects/<slug>/instances/<sop>/report``: an SR document (:mod:`viewer.structured`).
- ``GET /projects/<slug>/instances/<sop>/segments``: a SEG's segments and the source frames they cover.
- ``GET /projects/<slug>/instances/<sop>/segments/<n>/<source sop>/<frame>``: segment ``n`` on that
  source frame, an RGBA PNG (the segment's colour, alpha the mask), the size of the source image.
- ``GET /projects/<slug>/instances/<sop>/contours``: an RTSTRUCT's ROIs and contours.

Thin: the instance (and a SEG's source image) through :meth:`ProjectAccess.instance`, so a hidden or
held object answers as a missing one; a blinded reader's masked study gets the masked forms (no
names, dates or free text: :func:`viewer.structured.report_tree`, the ``masked`` arguments of
:mod:`viewer.segmentation`).
"""

from __future__ import annotations

import functools
import io
import warnings
from typing import Any

import pydicom
from django.http import HttpRequest, HttpResponse, JsonResponse
from pydicom.dataset import Dataset

from crossread.errors import DomainError, ErrorCode, NotFound
from viewer import segmentation, structured
from viewer.access import ProjectAccess
from viewer.http import project_endpoint
from viewer.models import Instance
from viewer.storage import object_store


@functools.lru_cache(maxsize=8)
def _dataset(project_id: int, sha256: str) -> Dataset:
    """The stored object parsed once (a few recent ones kept), read-only: SR and RTSTRUCT answers and a
    SEG's description."""
    return _parse(object_store().read(project_id, sha256))


def _parse(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data))


@functools.lru_cache(maxsize=8)
def _described(project_id: int, sha256: str) -> dict[str, Any]:
    """A SEG's segments and the source frames they cover, once checked that highdicom decodes it."""
    segmentation.read_segmentation(_parse(object_store().read(project_id, sha256)))  # refuses what cannot be drawn
    return segmentation.describe_segmentation(_dataset(project_id, sha256))


@functools.lru_cache(maxsize=256)
def _overlay(project_id: int, sha256: str, number: int, source: str, frame: int, multiframe: bool) -> bytes:
    """One segment on one source frame as a PNG. highdicom's Segmentation is made here, in this thread,
    from the stored bytes (its index is an SQLite database bound to the thread that made it); the PNGs
    are what is kept."""
    ds = _parse(object_store().read(project_id, sha256))
    item = next(s for s in ds.SegmentSequence if int(s.SegmentNumber) == number)
    colour = segmentation.segment_colour(item, number)
    seg = segmentation.read_segmentation(ds)
    return segmentation.overlay_png(segmentation.segment_mask(seg, number, source, frame, multiframe=multiframe), colour)


def _object(access: ProjectAccess, sop: str) -> tuple[Instance, Dataset, bool]:
    instance = access.instance(sop)
    masked = access.mask(instance.series.study_id) is not None
    return instance, _dataset(instance.project_id, instance.sha256), masked


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, max-age=60"
    return response


@project_endpoint(("GET",))
def report(request: HttpRequest, access: ProjectAccess, sop: str) -> HttpResponse:
    _instance, ds, masked = _object(access, sop)
    if not structured.is_structured_report(ds):
        raise DomainError("This instance is not a structured report.", code=ErrorCode.UNPROCESSABLE)
    try:
        tree = structured.report_tree(ds, masked=masked)
    except structured.NotAReport as exc:
        raise DomainError(str(exc), code=ErrorCode.UNPROCESSABLE) from None
    return _private(JsonResponse(tree))


@project_endpoint(("GET",))
def segments(request: HttpRequest, access: ProjectAccess, sop: str) -> HttpResponse:
    instance, _ds, masked = _object(access, sop)
    try:
        description = _described(instance.project_id, instance.sha256)
    except segmentation.TooLarge as exc:
        raise DomainError(str(exc), code=ErrorCode.TOO_LARGE) from None
    except segmentation.NotAnOverlay as exc:
        raise DomainError(str(exc), code=ErrorCode.UNPROCESSABLE) from None
    if masked:  # free text left out for a blinded reader
        description = {**description, "segments": [{k: v for k, v in s.items() if k != "description"}
                                                   for s in description["segments"]]}
    return _private(JsonResponse(description))


@project_endpoint(("GET",))
def segment_overlay(request: HttpRequest, access: ProjectAccess, sop: str, number: int, source: str,
                    frame: int) -> HttpResponse:
    instance = access.instance(sop)
    target = access.instance(source)  # the source image through the gate too
    frames = target.number_of_frames or 1
    if not 1 <= frame <= frames:
        raise NotFound("No such frame.")
    try:
        covered = _described(instance.project_id, instance.sha256)["frames"]
    except (segmentation.NotAnOverlay, segmentation.TooLarge) as exc:
        raise NotFound(str(exc)) from None
    if number not in covered.get(f"{source}/{frame}", []):
        raise NotFound("The segment has no frame on that image.")
    try:
        png = _overlay(instance.project_id, instance.sha256, number, source, frame, frames > 1)
    except segmentation.NotAnOverlay as exc:
        raise NotFound(str(exc)) from None
    return _private(HttpResponse(png, content_type="image/png"))


@project_endpoint(("GET",))
def contours(request: HttpRequest, access: ProjectAccess, sop: str) -> HttpResponse:
    _instance, ds, masked = _object(access, sop)
    try:
        description = segmentation.describe_structure_set(ds, masked=masked)
    except segmentation.TooLarge as exc:
        raise DomainError(str(exc), code=ErrorCode.TOO_LARGE) from None
    except segmentation.NotAnOverlay as exc:
        raise DomainError(str(exc), code=ErrorCode.UNPROCESSABLE) from None
    return _private(JsonResponse(description))
