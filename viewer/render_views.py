"""Rendered images over HTTP: WADO-RS ``rendered`` and ``thumbnail`` (PS3.18 8.3.5, 10.4.1.1.3),
and Deep Zoom tiles for large images.

Each view is thin: authorise, find the instance, parse options, answer 304 if the client already
has the bytes, else render through :mod:`viewer.rendering`. Repeats are answered from memory on
the event loop; renders run in the thread pool (:func:`rendered_view`), not in Django's single
thread for synchronous code, so several frames render at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.utils.cache import patch_vary_headers

from crossread.conf import option
from crossread.errors import DomainError, ErrorCode, NotFound, error_response
from viewer import imaging, rendering, slides, wsi
from viewer.access import ProjectAccess
from viewer import grants
from viewer.fastpath import fast_path, run_sync
from viewer.http import project_endpoint
from viewer.rendering import RenderOptions, StoredImage, mpr

THUMBNAIL_VIEWPORT = imaging.Viewport(128, 128)
TILE_SIZE, TILE_OVERLAP = 254, 1


@dataclass(frozen=True)
class Plan:
    """What a rendered request resolved to: its ETag, its media type, and how to make its bytes
    (called in the thread pool, unless the bytes are already in the output cache or ``quick``)."""

    etag: str
    media_type: str
    produce: Callable[[], bytes]
    quick: bool = False  # about a millisecond of work: done on the event loop
    shown: Callable[[], None] | None = None  # called when the bytes come from the output cache
    headers: Mapping[str, str] | None = None  # added to the answer (a reformatted plane's geometry)

    @classmethod
    def frame(cls, instance: StoredImage, frame: int, options: RenderOptions) -> Plan:
        tag = rendering.etag(instance, frame, options)
        return cls(
            tag,
            options.media_type,
            functools.partial(rendering.render, instance, frame, options, tag),
            quick=rendering.renders_quickly(instance, frame, options),
            shown=functools.partial(rendering.read_ahead, instance, frame, options),
        )


class _Planned(HttpResponse):
    """Carries a :class:`Plan` (and its render, when already cached) out of the synchronous part."""

    def __init__(self, plan: Plan, cached: bytes | None) -> None:
        super().__init__()
        self.plan = plan
        self.cached = cached


def rendered_view(resolve: Callable[..., Plan]) -> Callable[..., Any]:
    """Make an async view from ``resolve(request, access, **kwargs) -> Plan``.

    First from memory, on the event loop: if this process decided within the last second that these
    credentials reach the project (:mod:`viewer.grants`) and ``resolve`` needs no query (the
    instance is in the lookup cache), the plan is made without a thread hop, and a repeated output
    is sent straight from the output cache. Otherwise authentication, access and the lookups run in
    Django's thread for synchronous code, as for any view (and refusals are answered and audited
    there, never from memory). Decoding and encoding run in the thread pool, so several frames
    render at once, except a quick render (a 512x512 JPEG of a decoded frame, about 1 ms), which
    costs less on the event loop than the hop to a thread and back.
    """

    @project_endpoint(("GET",), remember_access=True)
    @functools.wraps(resolve)
    def planned(request: HttpRequest, access: ProjectAccess, **kwargs: Any) -> HttpResponse:
        try:
            plan = resolve(request, access, **kwargs)
            return _Planned(plan, rendering.cached_render(plan.etag))
        except imaging.RenderError as exc:
            raise DomainError(exc.detail, code=_code_for(exc.status)) from None

    def from_memory(request: HttpRequest, slug: str, kwargs: dict[str, Any]) -> _Planned | None:
        """The plan from in-process memory alone, or None when the full path must decide.

        Safe because the access decision is one the full path made for the same credentials and
        project less than a TTL ago and not revoked since, and ``resolve`` reads only immutable facts
        (the lookup cache) under :func:`rendering.memory_only`. Any error is left to the full path,
        so error answers (and their audit records) are exactly the full path's.
        """
        access = grants.recent_access(request, slug)
        if access is None or request.method not in ("GET", "HEAD"):
            return None
        try:
            with rendering.memory_only():
                plan = resolve(request, access, **kwargs)
        except (rendering.NotInMemory, SynchronousOnlyOperation, DomainError, imaging.RenderError):
            return None
        return _Planned(plan, rendering.cached_render(plan.etag))

    @functools.wraps(resolve)
    async def view(request: HttpRequest, slug: str, **kwargs: Any) -> HttpResponse:
        answer = from_memory(request, slug, kwargs)
        if answer is None:
            answer = await run_sync(planned, request, slug, **kwargs)
            if not isinstance(answer, _Planned):
                return answer
        plan = answer.plan
        tag = plan.etag
        if tag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            response: HttpResponse = HttpResponseNotModified()
        elif answer.cached is not None:  # a repeat, or rendered ahead: no second thread hop
            response = HttpResponse(answer.cached, content_type=plan.media_type)
            _window_headers(response, answer.cached)
            if plan.shown is not None:
                plan.shown()
        else:
            try:
                if plan.quick:  # cheaper than the two thread switches of a hop (rendering.renders_quickly)
                    body = plan.produce()
                else:
                    body = await sync_to_async(plan.produce, thread_sensitive=False)()
            except imaging.RenderError as exc:
                return error_response(DomainError(exc.detail, code=_code_for(exc.status)))
            response = HttpResponse(body, content_type=plan.media_type)
            _window_headers(response, body)
        response["ETag"] = tag
        response["Cache-Control"] = option("RENDER_CACHE_CONTROL")
        for name, value in (plan.headers or {}).items():
            response[name] = value
        patch_vary_headers(response, ["Accept", "Authorization", "Cookie"])
        return response

    view.csrf_exempt = True  # type: ignore[attr-defined]
    return fast_path(view)


def _window_headers(response: HttpResponse, body: bytes) -> None:
    for name, value in rendering.window_headers(body).items():
        response[name] = value


def _code_for(status: int) -> ErrorCode:
    return {
        400: ErrorCode.BAD_REQUEST,
        404: ErrorCode.NOT_FOUND,
        406: ErrorCode.NOT_ACCEPTABLE,
        413: ErrorCode.TOO_LARGE,
        415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    }.get(status, ErrorCode.UNPROCESSABLE)


def _instance(access: ProjectAccess, study: str, series: str, instance: str) -> StoredImage:
    found = rendering.find_image(access, instance, study, series)
    if found is None:
        raise NotFound("No such instance.")
    return found


def _frame_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise DomainError("The frame number must be a positive integer.", code=ErrorCode.BAD_REQUEST) from None
    if number < 1:
        raise DomainError("The frame number must be a positive integer.", code=ErrorCode.BAD_REQUEST)
    return number


def _options(request: HttpRequest, viewport: imaging.Viewport | None = None) -> RenderOptions:
    return rendering.parse_options(request.GET, request.headers.get("Accept", ""), viewport=viewport)


@rendered_view
def instance_rendered(request: HttpRequest, access: ProjectAccess, study: str, series: str, instance: str) -> Plan:
    return Plan.frame(_instance(access, study, series, instance), 1, _options(request))


@rendered_view
def frame_rendered(
    request: HttpRequest, access: ProjectAccess, study: str, series: str, instance: str, frame: str
) -> Plan:
    return Plan.frame(_instance(access, study, series, instance), _frame_number(frame), _options(request))


# --------------------------------------------------------------------------- thumbnails


def _representative(access: ProjectAccess, series_qs: Any) -> StoredImage:
    """The middle image of the first series (by SeriesNumber) that has images. Thumbnails are shown in
    lists every member sees, so they never show a quarantined image, to organizers neither."""
    rendering.needs_database()
    for series_row in series_qs.order_by("series_number", "pk"):
        images = list(
            access.instances().filter(series=series_row, rows__isnull=False, quarantined=False).order_by(
                "instance_number", "pk"
            )
        )
        if images:
            return StoredImage.of(images[len(images) // 2])
    raise NotFound("There is no image to make a thumbnail of.")


def _thumbnail(request: HttpRequest, instance: StoredImage) -> Plan:
    return Plan.frame(instance, (instance.number_of_frames + 1) // 2, _options(request, THUMBNAIL_VIEWPORT))


@rendered_view
def study_thumbnail(request: HttpRequest, access: ProjectAccess, study: str) -> Plan:
    series_qs = access.series().filter(study__study_instance_uid=study, study__project=access.project)
    return _thumbnail(request, _representative(access, series_qs))


@rendered_view
def series_thumbnail(request: HttpRequest, access: ProjectAccess, study: str, series: str) -> Plan:
    series_qs = access.series().filter(study__study_instance_uid=study, series_instance_uid=series)
    return _thumbnail(request, _representative(access, series_qs))


@rendered_view
def instance_thumbnail(request: HttpRequest, access: ProjectAccess, study: str, series: str, instance: str) -> Plan:
    return _thumbnail(request, _instance(access, study, series, instance))


# --------------------------------------------------------------------------- Deep Zoom tiles


def _tile_instance(access: ProjectAccess, sop: str) -> StoredImage:
    found = rendering.find_image(access, sop)
    if found is None:
        raise NotFound("No such instance.")
    return found


@project_endpoint(("GET",))
def dzi(request: HttpRequest, access: ProjectAccess, sop: str, frame: str) -> HttpResponse:
    found = _tile_instance(access, sop)
    number = _frame_number(frame)
    try:
        if found.is_slide:
            if number != 1:
                raise imaging.FrameNotFound("A slide has one Deep Zoom image (frame 1).")
            pyramid = slides.pyramid_for(access, found)
            width, height = pyramid.base.width, pyramid.base.height
            body = imaging.dzi_xml(width, height, pyramid.tile_size, 0, "jpeg")
        else:
            if number > found.number_of_frames:
                raise imaging.FrameNotFound(f"Frame {number} does not exist.")
            columns, rows = rendering.frame_size(found)
            body = imaging.dzi_xml(columns, rows, TILE_SIZE, TILE_OVERLAP, request.GET.get("format", "jpeg"))
    except imaging.RenderError as exc:
        raise DomainError(exc.detail, code=_code_for(exc.status)) from None
    except wsi.SlideError as exc:
        raise DomainError(str(exc), code=ErrorCode.UNPROCESSABLE) from None
    response = HttpResponse(body, content_type="application/xml")
    response["Cache-Control"] = option("RENDER_CACHE_CONTROL")
    return response


TILE_MEDIA_TYPES = {"jpeg": "image/jpeg", "jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@rendered_view
def tile(
    request: HttpRequest, access: ProjectAccess, sop: str, frame: str, level: int, col: int, row: int, ext: str
) -> Plan:
    found = _tile_instance(access, sop)
    media_type = TILE_MEDIA_TYPES.get(ext)
    if media_type is None:
        raise imaging.UnsupportedMediaType("Tiles are jpeg, png or webp.")
    params = request.GET.copy()
    params["accept"] = media_type
    if found.is_slide:
        options = rendering.parse_options(params)
        try:
            pyramid = slides.pyramid_for(access, found)
            tag, produce = slides.tile_source(pyramid, level, col, row, options)
            return Plan(tag, options.media_type, produce)
        except wsi.SlideError as exc:
            raise imaging.InvalidParameter(str(exc)) from None
    pyramid = imaging.DeepZoom(*rendering.frame_size(found), TILE_SIZE, TILE_OVERLAP)
    piece = pyramid.tile(level, col, row)
    return Plan.frame(found, _frame_number(frame), rendering.parse_options(params, viewport=piece.viewport))


# --------------------------------------------------------------------------- reformatted planes (MPR)


def _plane_index(text: str) -> int:
    if not text.isdigit() or len(text) > 6:
        raise DomainError("The plane index must be a whole number from 0.", code=ErrorCode.BAD_REQUEST)
    return int(text)


@rendered_view
def mpr_plane(request: HttpRequest, access: ProjectAccess, series: str, plane: str, index: str) -> Plan:
    """``GET /projects/<slug>/series/<series>/mpr/<plane>/<index>``: a reformatted plane of the series
    (:mod:`viewer.rendering.mpr`), with the options and ETag rules of a rendered frame and the plane's
    geometry in ``X-Crossread-Plane-*`` headers."""
    found = mpr.series_volume(access, series)
    number = _plane_index(index)
    layout = mpr.check_plane(found, plane, number)
    options = _options(request)
    tag = mpr.plane_etag(found, plane, number, options)
    return Plan(tag, options.media_type, functools.partial(mpr.render_plane, found, plane, number, options, tag),
                quick=mpr.renders_quickly(found, plane, number, options), headers=mpr.plane_headers(layout, number))


@project_endpoint(("GET",))
def mpr_description(request: HttpRequest, access: ProjectAccess, series: str, plane: str) -> HttpResponse:
    """``GET /projects/<slug>/series/<series>/mpr/<plane>``: the plane's stack as JSON (its count and
    spacing, each plane's size, pixel spacing, direction cosines and first pixel's position, and the
    volume's slices), for reference lines, crosshairs and measurements on reformatted planes."""
    try:
        found = mpr.series_volume(access, series)
        described = mpr.describe(found, plane)
        mpr.warm(found)  # the planes are asked for next: their volume is assembled meanwhile
        return JsonResponse(described)
    except imaging.RenderError as exc:
        raise DomainError(exc.detail, code=_code_for(exc.status)) from None
