"""Server-rendered pages: project list, worklist, upload and the viewer.

Pages are thin: they require a login, resolve the project through
:func:`viewer.access.access_project` (a project the user is not a member of does not exist: 404)
and hand the browser what it needs to start without extra round trips. Everything else the page
shows comes from the browser's own calls to DICOMweb and the REST API (see docs/viewer.md).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from django.core.exceptions import PermissionDenied

from crossread.errors import DomainError, ErrorCode, log_refusal
from viewer import imaging, user_presets
from viewer.access import ProjectAccess, access_project
from viewer.blinding import mask_outline
from viewer.models import Membership, Role
from viewer.wsi import WSI_SOP_CLASS

#: SOP Classes the viewer shows other than as images (PS3.4 B.5), by the reader that opens them.
DOCUMENT_KINDS = {
    "1.2.840.10008.5.1.4.1.1.66.4": "seg",  # Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.66.7": "seg",  # Label Map Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.481.3": "rtstruct",  # RT Structure Set Storage
    "1.2.840.10008.5.1.4.1.1.88.59": "sr",  # Key Object Selection Document: a report of its images
}
#: Listed instances of one non-image series.
MAX_DOCUMENTS = 200


def document_kind(sop_class_uid: str) -> str | None:
    """``"sr"``, ``"seg"``, ``"rtstruct"``, ``"pr"`` or ``"other"`` for an object the viewer does not show
    as an image; ``None`` for an image."""
    if sop_class_uid in DOCUMENT_KINDS:
        return DOCUMENT_KINDS[sop_class_uid]
    if sop_class_uid.startswith("1.2.840.10008.5.1.4.1.1.88."):
        return "sr"
    if sop_class_uid.startswith("1.2.840.10008.5.1.4.1.1.11."):
        return "pr"  # presentation states
    return None


#: Other studies of the same patient offered for comparison in the viewer (newest first).
MAX_RELATED_STUDIES = 4


def _access(request: HttpRequest, slug: str, minimum: str = Role.VIEWER) -> ProjectAccess:
    try:
        return access_project(request.user, slug, minimum=minimum)
    except DomainError as error:
        log_refusal(request, error)  # someone may be guessing identifiers: audited
        if error.code == ErrorCode.NOT_FOUND:
            raise Http404(error.detail) from None
        raise


def _page_context(access: ProjectAccess) -> dict[str, Any]:
    return {
        "project": access.project,
        "role": access.role,
        "can_write": access.can(Role.READER),
        "can_organize": access.can(Role.ORGANIZER),
    }


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The user's projects, each with the number of studies the user may see in it (through the gate: a
    study whose every image is held in quarantine is not counted for a reader)."""
    memberships = Membership.objects.filter(user=request.user).select_related("project").order_by("project__name")
    projects = []
    for membership in memberships:
        project = membership.project
        project.study_count = ProjectAccess(project, membership).studies().count()
        projects.append(project)
    return render(request, "viewer/home.html", {"projects": projects})


@login_required
@ensure_csrf_cookie
def worklist(request: HttpRequest, slug: str) -> HttpResponse:
    access = _access(request, slug)
    # The distinct values, from the (project, modality) index: not every series of the archive.
    modalities = list(
        access.series().exclude(modality="").order_by("modality").values_list("modality", flat=True).distinct()
    )
    return render(request, "viewer/worklist.html", _page_context(access) | {"modalities": modalities})


@login_required
@ensure_csrf_cookie
def upload(request: HttpRequest, slug: str) -> HttpResponse:
    access = _access(request, slug)
    if not access.can(Role.READER):
        # A member without the role knows the project exists: 403, as access_project answers.
        error = DomainError("Uploading needs the reader role.", code=ErrorCode.FORBIDDEN)
        log_refusal(request, error)
        raise PermissionDenied(error.detail)
    return render(request, "viewer/upload.html", _page_context(access))


def study_outline(access: ProjectAccess, study_uid: str) -> dict[str, Any]:
    """The study, its series, and each series' images ``[SOPInstanceUID, frames, rows, columns]``
    in display order (InstanceNumber), so the viewer can request its first frame before any
    metadata has arrived."""
    study = access.study(study_uid)
    series_rows = list(access.series().filter(study=study).order_by("series_number", "pk"))
    instances: dict[int, list[list[Any]]] = {row.pk: [] for row in series_rows}
    documents: dict[int, list[tuple[str, str]]] = {row.pk: [] for row in series_rows}
    visible = access.instances().filter(series__study=study)
    for series_id, sop, sop_class, frames, rows, columns in (
        visible.exclude(sop_class_uid=WSI_SOP_CLASS)
        .order_by("instance_number", "pk")
        .values_list("series_id", "sop_instance_uid", "sop_class_uid", "number_of_frames", "rows", "columns")
    ):
        kind = document_kind(sop_class)
        if kind is None and rows and columns:
            instances[series_id].append([sop, frames or 1, rows, columns])
        else:  # SR, SEG, RTSTRUCT, ...: listed after the images, opened by the viewer's reader for their kind
            documents[series_id].append((sop, kind or "other"))
    # A whole-slide image is one picture whatever its levels and tiles: its finest level, the size
    # of the total pixel matrix, drawn from Deep Zoom tiles.
    slides: dict[int, list[Any]] = {}
    for series_id, sop, rows, columns, metadata in visible.filter(sop_class_uid=WSI_SOP_CLASS).values_list(
        "series_id", "sop_instance_uid", "rows", "columns", "metadata"
    ):
        size = [_first_value(metadata, "00480007") or rows, _first_value(metadata, "00480006") or columns]
        if size[0] and size[1] and (series_id not in slides or size[0] * size[1] > slides[series_id][2] * slides[series_id][3]):
            slides[series_id] = [sop, 1, *size]
    for series_id, entry in slides.items():
        instances[series_id] = [entry]
    outline = {
        "study": study.study_instance_uid,
        "patientName": study.patient_name,
        "patientId": study.patient_id,
        "studyDate": study.study_date,
        "studyDescription": study.study_description,
        "series": [
            {
                "uid": row.series_instance_uid,
                "number": row.series_number,
                "description": row.series_description,
                "modality": row.modality,
                # the body region its presets are ordered for (imaging.body_region), before any mask
                "region": imaging.body_region(_first_value(row.metadata, "00180015"), row.series_description,
                                              study.study_description),
                "instances": instances[row.pk],
            }
            for row in series_rows
            if instances[row.pk]
        ],
        "documents": [
            {
                "uid": row.series_instance_uid,
                "number": row.series_number,
                "description": row.series_description,
                "modality": row.modality,
                "kind": documents[row.pk][0][1],
                "instances": [sop for sop, _kind in documents[row.pk][:MAX_DOCUMENTS]],
            }
            for row in series_rows
            if documents[row.pk] and not instances[row.pk]
        ],
    }
    mask = access.mask(study.pk)
    return outline if mask is None else mask_outline(outline, mask)


def _first_value(metadata: dict[str, Any], tag: str) -> Any:
    values = (metadata.get(tag) or {}).get("Value") or [None]
    return values[0]


@login_required
@ensure_csrf_cookie
def viewer(request: HttpRequest, slug: str, study_uid: str) -> HttpResponse:
    access = _access(request, slug)
    try:
        outline = study_outline(access, study_uid)
    except DomainError as error:
        log_refusal(request, error)
        raise Http404("No such study.") from None
    related = [study_outline(access, uid) for uid in _related_studies(access, study_uid)]
    outlines = [outline, *related]
    modalities = sorted({s["modality"] for o in outlines for s in o["series"] if s["modality"]})
    presets = [p for m in modalities for p in imaging.presets_for(m)]
    boot = {
        "project": access.project.slug,
        "user": request.user.get_username(),
        "role": access.role,
        "canWrite": access.can(Role.READER),
        "outline": outline,
        "related": related,
        "presets": presets,
        "presetOrders": imaging.preset_orders(),
        "userPresets": user_presets.list_presets(request.user),
        "session": request.GET.get("session") or None,
    }
    return render(
        request,
        "viewer/viewer.html",
        _page_context(access)
        | {"boot": boot, "outline": outline, "session": boot["session"], "first_frame": first_frame_url(access, outline)},
    )


#: The viewer draws larger images from Deep Zoom tiles (static/viewer/viewport/tiles.js TILE_THRESHOLD).
TILE_THRESHOLD = 1024


def _related_studies(access: ProjectAccess, study_uid: str) -> list[str]:
    """The UIDs of the patient's other studies the member may list, newest first; for a study a blinded
    reader reads masked, the other masked studies of that subject only (no listed study of the same
    patient may sit beside a masked one: its name and dates would undo the mask)."""
    study = access.study(study_uid)
    if not study.patient_id:
        return []
    others = access.studies(listed=False).filter(patient_id=study.patient_id).exclude(pk=study.pk)
    if access.blinding is not None and access.mask(study.pk) is not None:
        others = others.filter(pk__in=access.blinding.same_subject(study.pk))
    else:
        others = others.exclude(pk__in=access.unlisted())
    return list(others.order_by("-study_date", "-study_time").values_list("study_instance_uid", flat=True)[:MAX_RELATED_STUDIES])


def first_frame_url(access: ProjectAccess, outline: dict[str, Any]) -> str | None:
    """The URL the viewer asks first (frame 1 of the first image, the file's window), exactly as
    static/viewer/api.js builds it, so the page can preload it while the scripts load."""
    if not outline["series"]:
        return None
    series = outline["series"][0]
    sop, _frames, rows, columns = series["instances"][0]
    if max(rows, columns) > TILE_THRESHOLD:
        return None
    return (
        f"/projects/{access.project.slug}/dicomweb/studies/{outline['study']}/series/{series['uid']}"
        f"/instances/{sop}/frames/1/rendered?accept=image%2Fjpeg"
    )
