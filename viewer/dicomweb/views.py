"""DICOMweb endpoints under ``/projects/<slug>/dicomweb/`` (PS3.18): QIDO-RS, WADO-RS and STOW-RS.

Views parse the request, call the ingest service or the index, and serialise; authentication and
project access come from :func:`viewer.http.project_endpoint`.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson
import pydicom
from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from pydicom.uid import ExplicitVRLittleEndian

from audit.models import Action
from audit.services import record
from crossread.bodies import declared_length, request_too_large
from crossread.conf import option
from crossread.errors import DomainError, ErrorCode, NotFound
from viewer import dicomfile, ingest
from viewer.access import ProjectAccess
from viewer.dicomweb import pixels, qido
from viewer.dicomweb.multipart import (
    MediaType,
    MultipartError,
    Part,
    TooManyParts,
    check_accept,
    count_multipart_related,
    encode_multipart_related,
    iter_multipart_related,
    new_boundary,
    parse_accept,
)
from viewer.dicomweb.streaming import multipart_stream
from viewer.http import fast_endpoint, project_endpoint
from viewer.models import Instance, Role
from viewer.storage import object_store

DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"


def base_url(request: HttpRequest, access: ProjectAccess) -> str:
    path = f"/projects/{access.project.slug}/dicomweb"
    public = option("PUBLIC_URL")
    return f"{public}{path}" if public else request.build_absolute_uri(path)


#: A ``Warning`` header says at most this many things, each at most this long: details that can
#: grow with a request (one per refused instance) belong in the body.
MAX_WARNINGS = 4
MAX_WARNING_CHARS = 200


def dicom_json_response(data: Any, status: int = 200, warnings: list[str] | None = None) -> HttpResponse:
    response = HttpResponse(encode_json(data), content_type=DICOM_JSON, status=status)
    if warnings:
        response["Warning"] = warning_header(warnings)
    return response


def encode_json(data: Any) -> bytes:
    """Compact JSON (orjson: a page of 1,000 studies in a few ms rather than tens); what orjson does
    not encode (an integer beyond 64 bits, a type it does not know) is left to ``json``, as before."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":")).encode()


def warning_header(warnings: list[str]) -> str:
    """``299 crossread "..."`` for each of the first :data:`MAX_WARNINGS` texts, each cut short."""
    texts = [_shorten(w.replace('"', "'")) for w in warnings[:MAX_WARNINGS]]
    return ", ".join(f'299 crossread "{text}"' for text in texts)


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 3] + "..."


def _accept(request: HttpRequest) -> list[MediaType]:
    """The Accept header's media ranges (``*/*`` when absent); 400 when longer than clients send."""
    accept = request.headers.get("Accept", "") or "*/*"
    try:
        check_accept(accept)
    except MultipartError as exc:
        raise DomainError(str(exc), code=ErrorCode.BAD_REQUEST) from None
    return parse_accept(accept)


# --------------------------------------------------------------------------- QIDO-RS


def _search(request: HttpRequest, access: ProjectAccess, level: str, **scope: str) -> HttpResponse:
    try:
        params = request.GET
    except TooManyFieldsSent:
        raise DomainError(
            f"A search takes at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} parameters.", code=ErrorCode.BAD_REQUEST
        ) from None
    query = qido.parse_query(params, level)
    found = qido.search(access, query, scope)
    if not found.rows and scope:  # nothing in the study or series of the URL: is it there at all?
        _require_scope(access, **scope)
    url = base_url(request, access)
    render = {qido.STUDY: qido.study_results, qido.SERIES: qido.series_results, qido.INSTANCE: qido.instance_results}
    warnings = list(query.warnings)
    if found.more_than:
        warnings.append(f"There are at least {found.remaining} additional results that can be requested.")
    elif found.remaining:
        warnings.append(f"There are {found.remaining} additional results that can be requested.")
    return dicom_json_response(render[level](found.rows, query, url, access), warnings=warnings)


@fast_endpoint(("GET", "POST"), minimum={"POST": Role.READER})
def studies(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    if request.method == "POST":
        return _store(request, access, None)
    return _search(request, access, qido.STUDY)


@fast_endpoint()
def all_series(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    return _search(request, access, qido.SERIES)


@fast_endpoint()
def all_instances(request: HttpRequest, access: ProjectAccess) -> HttpResponse:
    return _search(request, access, qido.INSTANCE)


@fast_endpoint()
def study_series(request: HttpRequest, access: ProjectAccess, study: str) -> HttpResponse:
    return _search(request, access, qido.SERIES, study=study)


@fast_endpoint()
def study_instances(request: HttpRequest, access: ProjectAccess, study: str) -> HttpResponse:
    return _search(request, access, qido.INSTANCE, study=study)


@fast_endpoint()
def series_instances(request: HttpRequest, access: ProjectAccess, study: str, series: str) -> HttpResponse:
    return _search(request, access, qido.INSTANCE, study=study, series=series)


def _require_scope(access: ProjectAccess, study: str, series: str = "") -> None:
    """"No such study" (or series) for one this member may not see: a search within it that finds
    nothing says whether it is there (one that finds something needs no other query)."""
    if not series:
        _require_study(access, study)
    elif not access.instances_in(study=study, series=series).exists():
        raise NotFound("No such series.")


def _require_study(access: ProjectAccess, study: str) -> None:
    access.study(study)  # "No such study." for one this member may not see


# --------------------------------------------------------------------------- WADO-RS


def _instances(access: ProjectAccess, study: str, series: str | None = None, instance: str | None = None) -> list[Instance]:
    qs = access.instances_in(study=study, series=series or "")
    if instance is not None:
        qs = qs.filter(sop_instance_uid=instance)
    found = list(qs.select_related("series", "series__study").order_by("series__series_number", "series_id", "instance_number", "pk"))
    if not found:
        what = "instance" if instance else "series" if series else "study"
        raise NotFound(f"No such {what}.")
    return found


def _read(instance: Instance) -> bytes:
    return object_store().read(instance.project_id, instance.sha256)


def _dicom_syntax_choice(request: HttpRequest) -> list[str]:
    """The transfer syntaxes the client accepts for application/dicom, in order; ``*`` means any.

    Without a transfer-syntax parameter the default is Explicit VR Little Endian (PS3.18 8.7.3.5.2).
    """
    choices: list[str] = []
    for media in _accept(request):
        is_dicom = media.type == "application/dicom" or (
            media.type == "multipart/related" and media.params.get("type", "application/dicom") == "application/dicom"
        )
        if is_dicom:
            choices.append(media.params.get("transfer-syntax", ExplicitVRLittleEndian))
        elif media.type in ("*/*", "multipart/*"):
            choices.append(ExplicitVRLittleEndian)
    if not choices:
        raise DomainError(
            'This resource is served as multipart/related; type="application/dicom".',
            code=ErrorCode.NOT_ACCEPTABLE,
        )
    return choices


def _encode_for(instance: Instance, data: bytes, choices: list[str]) -> tuple[bytes, str]:
    for syntax in choices:
        if syntax == "*" or syntax == instance.transfer_syntax_uid:
            return data, instance.transfer_syntax_uid
        if syntax == ExplicitVRLittleEndian:
            try:
                return pixels.to_explicit_vr_little_endian(data), ExplicitVRLittleEndian
            except Exception:  # a file pydicom cannot transcode is offered as stored if the client allows
                continue
    raise DomainError(
        "The instance cannot be served in the requested transfer syntax; ask for transfer-syntax=*.",
        code=ErrorCode.NOT_ACCEPTABLE,
        sop_instance_uid=instance.sop_instance_uid,
    )


def _refuse_files_to_blinded(access: ProjectAccess, found: list[Instance]) -> None:
    """A blinded reader reads masked metadata, frames and rendered images; a stored file carries the
    patient's name, dates and everything else in its bytes (viewer.blinding)."""
    if not all(access.serves_files(study_id) for study_id in {item.series.study_id for item in found}):
        raise DomainError(
            "This study is read blinded: its files are not handed out; read its metadata, frames and rendered images.",
            code=ErrorCode.FORBIDDEN,
        )


def _retrieve(request: HttpRequest, access: ProjectAccess, found: list[Instance], level: str) -> HttpResponse:
    _refuse_files_to_blinded(access, found)
    choices = _dicom_syntax_choice(request)
    first = _encode_for(found[0], _read(found[0]), choices)  # here: a refusal is a 406, not a cut-off stream
    uid = {"study": found[0].series.study.study_instance_uid, "series": found[0].series.series_instance_uid}.get(
        level, found[0].sop_instance_uid
    )
    record(
        Action.DOWNLOAD, actor=request.user, request=request, project=access.project,
        object_type=level, object_id=uid, instances=len(found),
    )
    if len(found) == 1:
        boundary = new_boundary()
        return HttpResponse(
            b"".join(encode_multipart_related([_dicom_part(*first)], boundary)),
            content_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
        )
    return multipart_stream(request, _dicom_parts(found, choices, first), "application/dicom")


def _dicom_part(data: bytes, syntax: str) -> tuple[bytes, str]:
    return data, f"application/dicom; transfer-syntax={syntax}"


def _dicom_parts(found: list[Instance], choices: list[str], first: tuple[bytes, str]) -> Iterator[tuple[bytes, str]]:
    """The instances of a study or series, read and transcoded one at a time as they are sent."""
    yield _dicom_part(*first)
    del first
    for instance in found[1:]:
        yield _dicom_part(*_encode_for(instance, _read(instance), choices))


@project_endpoint(("GET", "POST"), minimum={"POST": Role.READER})
def study(request: HttpRequest, access: ProjectAccess, study: str) -> HttpResponse:
    if request.method == "POST":
        return _store(request, access, study)
    return _retrieve(request, access, _instances(access, study), "study")


@project_endpoint(("GET",))
def series(request: HttpRequest, access: ProjectAccess, study: str, series: str) -> HttpResponse:
    return _retrieve(request, access, _instances(access, study, series), "series")


@project_endpoint(("GET",))
def instance(request: HttpRequest, access: ProjectAccess, study: str, series: str, instance: str) -> HttpResponse:
    return _retrieve(request, access, _instances(access, study, series, instance), "instance")


def _metadata(request: HttpRequest, access: ProjectAccess, found: list[Instance]) -> HttpResponse:
    url = base_url(request, access)
    results = []
    for item in found:
        instance_url = (
            f"{url}/studies/{item.series.study.study_instance_uid}/series/{item.series.series_instance_uid}"
            f"/instances/{item.sop_instance_uid}"
        )
        results.append(_absolute_bulk_uris(access.masked(item.metadata, item.series.study_id), instance_url))
    return dicom_json_response(results)


def _absolute_bulk_uris(node: Any, instance_url: str) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                f"{instance_url}/{value}"
                if key == "BulkDataURI" and isinstance(value, str) and value.startswith(dicomfile.BULK_DATA_PLACEHOLDER)
                else _absolute_bulk_uris(value, instance_url)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_absolute_bulk_uris(value, instance_url) for value in node]
    return node


@project_endpoint(("GET",))
def study_metadata(request: HttpRequest, access: ProjectAccess, study: str) -> HttpResponse:
    return _metadata(request, access, _instances(access, study))


@project_endpoint(("GET",))
def series_metadata(request: HttpRequest, access: ProjectAccess, study: str, series: str) -> HttpResponse:
    return _metadata(request, access, _instances(access, study, series))


@project_endpoint(("GET",))
def instance_metadata(request: HttpRequest, access: ProjectAccess, study: str, series: str, instance: str) -> HttpResponse:
    return _metadata(request, access, _instances(access, study, series, instance))


def _octet_stream_response(chunks: list[bytes]) -> HttpResponse:
    boundary = new_boundary()
    body = b"".join(encode_multipart_related(((c, OCTET_STREAM) for c in chunks), boundary))
    return HttpResponse(body, content_type=f'multipart/related; type="application/octet-stream"; boundary={boundary}')


def _accepts_octet_stream(request: HttpRequest) -> None:
    for media in _accept(request):
        if media.type in ("*/*", "multipart/*", "application/octet-stream", "application/*"):
            return
        if media.type == "multipart/related" and media.params.get("type", "application/octet-stream") in (
            "application/octet-stream",
            "*/*",
        ):
            return
    raise DomainError(
        'Frames are served uncompressed as multipart/related; type="application/octet-stream".',
        code=ErrorCode.NOT_ACCEPTABLE,
    )


def _load(found: Instance) -> Any:
    return pydicom.dcmread(io.BytesIO(_read(found)))


def _frame_error(exc: pixels.FrameError) -> DomainError:
    code = {404: ErrorCode.NOT_FOUND, 422: ErrorCode.UNPROCESSABLE}.get(exc.status, ErrorCode.BAD_REQUEST)
    return DomainError(str(exc), code=code)


@project_endpoint(("GET",))
def frames(request: HttpRequest, access: ProjectAccess, study: str, series: str, instance: str, frames: str) -> HttpResponse:
    _accepts_octet_stream(request)
    (found,) = _instances(access, study, series, instance)
    ds = _load(found)
    try:
        numbers = pixels.parse_frame_list(frames, pixels.number_of_frames(ds))
        first = pixels.frame_bytes(ds, numbers[0])  # here: an undecodable image is a 422, not a cut-off stream
    except pixels.FrameError as exc:
        raise _frame_error(exc) from None
    if len(numbers) == 1:
        return _octet_stream_response([first])
    return multipart_stream(request, _frame_parts(ds, numbers, first), OCTET_STREAM)


def _frame_parts(ds: Any, numbers: list[int], first: bytes) -> Iterator[tuple[bytes, str]]:
    """The frames of a frame list, made one at a time as they are sent."""
    yield first, OCTET_STREAM
    del first
    for number in numbers[1:]:
        yield pixels.frame_bytes(ds, number), OCTET_STREAM


@project_endpoint(("GET",))
def bulkdata(request: HttpRequest, access: ProjectAccess, study: str, series: str, instance: str, tag: str) -> HttpResponse:
    _accepts_octet_stream(request)
    (found,) = _instances(access, study, series, instance)
    try:
        tag_number = int(tag, 16)
    except ValueError:
        raise NotFound("No such bulk data.") from None
    if not access.serves_files(found.series.study_id) and f"{tag_number:08X}" not in access.masked(
        found.metadata, found.series.study_id
    ):  # a blinded reader reaches only the bulk data of elements their masked metadata shows
        raise NotFound("No such bulk data.")
    ds = _load(found)
    try:
        if tag_number == pixels.PIXEL_DATA and pixels.number_of_frames(ds) > 1:
            frames = pixels.pixel_data_frames(ds)
            first = next(frames)  # here: an undecodable image is a 422, not a cut-off stream
            return multipart_stream(request, iter([(itertools.chain([first], frames), OCTET_STREAM)]), OCTET_STREAM)
        value = pixels.element_bytes(ds, tag_number)
    except pixels.FrameError as exc:
        raise _frame_error(exc) from None
    if value is None:
        raise NotFound("No such bulk data.")
    return _octet_stream_response([value])


# --------------------------------------------------------------------------- STOW-RS


def _store(request: HttpRequest, access: ProjectAccess, study_uid: str | None) -> HttpResponse:
    content_type = request.headers.get("Content-Type", "")
    try:
        media = MediaType.parse(content_type) if content_type else None
    except MultipartError:
        media = None
    if media is None or media.type != "multipart/related":
        raise DomainError(
            'STOW-RS takes multipart/related; type="application/dicom".', code=ErrorCode.UNSUPPORTED_MEDIA_TYPE
        )
    part_type = media.params.get("type", "application/dicom").lower()
    if part_type != "application/dicom":
        raise DomainError(
            f"Only application/dicom parts are accepted (not {part_type[:64]}).", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE
        )
    with _request_body(request) as body:
        # The structure first, holding no part: a malformed body, or one with too many parts, is
        # refused before anything is stored. Then the parts one at a time, into the ingest.
        start = body.tell()
        try:
            count = count_multipart_related(body, content_type, max_parts=_max_parts(), chunk_bytes=STOW_CHUNK_BYTES)
        except TooManyParts as exc:
            raise DomainError(f"{exc} Send the instances in several requests.", code=ErrorCode.TOO_LARGE) from None
        except MultipartError as exc:
            raise DomainError(str(exc), code=ErrorCode.BAD_REQUEST) from None
        if not count:
            raise DomainError("The request holds no instances.", code=ErrorCode.BAD_REQUEST)
        body.seek(start)
        # The same bytes read the same way: this pass cannot find the structure malformed.
        parts = iter_multipart_related(
            body, content_type, max_parts=_max_parts(), max_part_bytes=option("MAX_INSTANCE_BYTES"),
            chunk_bytes=STOW_CHUNK_BYTES,
        )
        results = ingest.ingest_many(access.project, _stow_parts(parts), expected_study_uid=study_uid)
    ingest.record_upload(request, access.project, results, via="STOW-RS")
    return _stow_response(request, access, results, study_uid)


#: How much of a STOW-RS body is read at a time.
STOW_CHUNK_BYTES = 256 * 1024
#: A body the server's request stream cannot re-read is copied to a temporary file, in memory up to
#: this size (or ``FILE_UPLOAD_MAX_MEMORY_SIZE`` if smaller), on disk in ``FILE_UPLOAD_TEMP_DIR`` beyond.
STOW_SPOOL_MEMORY_BYTES = 1024 * 1024


@contextlib.contextmanager
def _request_body(request: HttpRequest) -> Iterator[IO[bytes]]:
    """The request body as a file that can be read twice, never as one bytes object, bounded by
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413 beyond it).

    Under ASGI, Django has already spooled the body to a temporary file (the request's stream):
    that file is used as it is. Under WSGI the stream reads from the socket once: it is copied in
    chunks to a temporary file first. ``request.body`` is never touched: it would hold the whole body.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and declared_length(request.META) > limit:
        raise request_too_large()
    spooled = getattr(request, "_stream", None)  # Django's: a SpooledTemporaryFile under ASGI
    if spooled is not None and getattr(spooled, "seekable", lambda: False)():
        start = spooled.tell()
        size = spooled.seek(0, io.SEEK_END) - start
        spooled.seek(start)
        if limit is not None and size > limit:
            raise request_too_large()
        yield spooled
        return
    with _copied(request, limit) as copy:
        yield copy


@contextlib.contextmanager
def _copied(request: HttpRequest, limit: int | None) -> Iterator[IO[bytes]]:
    """The request's stream copied in chunks to a temporary file (413 beyond ``limit``)."""
    memory = min(STOW_SPOOL_MEMORY_BYTES, settings.FILE_UPLOAD_MAX_MEMORY_SIZE)
    with tempfile.SpooledTemporaryFile(max_size=memory, dir=settings.FILE_UPLOAD_TEMP_DIR) as copy:
        copied = 0
        while chunk := request.read(STOW_CHUNK_BYTES):
            copied += len(chunk)
            if limit is not None and copied > limit:
                raise request_too_large()
            copy.write(chunk)
        copy.seek(0)
        yield copy


def _stow_parts(parts: Iterable[Part]) -> Iterator[tuple[str, bytes | ingest.IngestResult]]:
    """Each part named by its position; a part of another type than application/dicom, or larger than
    ``MAX_INSTANCE_BYTES`` (read past, not held), is refused on its own."""
    for index, part in enumerate(parts, start=1):
        name = f"part {index}"
        declared = (part.content_type or "application/dicom").split(";", 1)[0].strip().lower()
        if part.too_large:  # its bytes were discarded as they were read
            yield name, ingest.too_large(name)
        elif declared != "application/dicom":
            yield name, ingest.failed(name, f"Part {index} is {declared[:64]}, not application/dicom.")
        else:
            yield name, part.body


def _max_parts() -> int | None:
    """Instances one STOW-RS request may carry: Django's bound on the files of one form upload
    (``DATA_UPLOAD_MAX_NUMBER_FILES``), so that both ways of uploading take as many."""
    return settings.DATA_UPLOAD_MAX_NUMBER_FILES


def _stow_response(
    request: HttpRequest, access: ProjectAccess, results: list[ingest.IngestResult], study_uid: str | None
) -> HttpResponse:
    url = base_url(request, access)
    referenced, failed = [], []
    for result in results:
        if result.ok:
            referenced.append(
                {
                    "00081150": {"vr": "UI", "Value": [result.sop_class_uid]},
                    "00081155": {"vr": "UI", "Value": [result.sop_instance_uid]},
                    "00081190": {
                        "vr": "UR",
                        "Value": [
                            f"{url}/studies/{result.study_instance_uid}/series/{result.series_instance_uid}"
                            f"/instances/{result.sop_instance_uid}"
                        ],
                    },
                }
            )
        else:
            item: dict[str, Any] = {"00081197": {"vr": "US", "Value": [result.failure_code]}}
            if result.sop_class_uid:
                item["00081150"] = {"vr": "UI", "Value": [result.sop_class_uid]}
            if result.sop_instance_uid:
                item["00081155"] = {"vr": "UI", "Value": [result.sop_instance_uid]}
            failed.append(dict(sorted(item.items())))
    body: dict[str, Any] = {}
    study_uids = {r.study_instance_uid for r in results if r.ok}
    if study_uid or len(study_uids) == 1:
        body["00081190"] = {"vr": "UR", "Value": [f"{url}/studies/{study_uid or study_uids.pop()}"]}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        body["00081199"] = {"vr": "SQ", "Value": referenced}
    status = 200 if not failed else 202 if referenced else 409
    return dicom_json_response(body, status=status, warnings=_stow_warnings(results))


def _stow_warnings(results: list[ingest.IngestResult]) -> list[str]:
    """How many instances were refused, and why the first few were: the header stays short however
    many parts fail, and each refused instance is in the body's FailedSOPSequence."""
    refused = [r for r in results if not r.ok]
    if not refused:
        return []
    summary = f"{len(refused)} of {len(results)} instances were refused; see FailedSOPSequence."
    return [summary] + [f"{r.name}: {r.reason}" for r in refused[: MAX_WARNINGS - 1]]
