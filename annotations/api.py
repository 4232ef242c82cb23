"""REST endpoints of annotations (DRF). Thin: authorise through viewer.access, call annotations.services.

- ``GET  /api/projects/<slug>/annotations/[?instance=<SOPInstanceUID>|?series=..|?study=..]``
- ``POST /api/projects/<slug>/annotations/`` ``{"instance", "frame", "kind", "points", "label"?,
  "client_ref"?, "session"?}`` → 201 (200 when ``client_ref`` repeats an earlier create); on a
  reformatted plane ``{"plane": {"series", "plane", "index"}, "kind", "points", ...}`` instead of
  ``instance`` and ``frame``
- ``GET | PATCH | DELETE /api/projects/<slug>/annotations/<id>/``; PATCH ``{"version", "points"?,
  "label"?}``, a stale version → 409 ``{"code": "conflict", "detail", "annotation": {...current}}``.
- ``GET  /api/projects/<slug>/annotations/export/?study=<uid>&as=csv|sr``: the study's marks that the
  member sees, as the measurement table (CSV) or a DICOM SR TID 1500 file, downloaded
  (:mod:`annotations.exports`); ``POST`` ``{"study"}`` stores that SR in the archive (readers) → 201.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import exports, services
from crossread.errors import BadRequest
from viewer.access import access_project
from viewer.models import Role


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise BadRequest("The body must be a JSON object.")
    return request.data


def _no_session(values: Any) -> None:
    if values.get("session") not in (None, ""):
        raise BadRequest("A reading session's annotations go through /api/sessions/<id>/annotations/ and its websocket.")


class AnnotationListView(APIView):
    def get(self, request: Request, slug: str) -> Response:
        _no_session(request.query_params)
        access = access_project(request.user, slug, minimum=Role.VIEWER)
        params = request.query_params
        found = services.visible_annotations(
            access,
            instance_uid=params.get("instance") or None,
            series_uid=params.get("series") or None,
            study_uid=params.get("study") or None,
        )
        return Response({"annotations": [services.serialize(a) for a in found]})

    def post(self, request: Request, slug: str) -> Response:
        access = access_project(request.user, slug, minimum=Role.READER)
        body = _body(request)
        _no_session(body)
        client_ref = body.get("client_ref", "")
        repeated = isinstance(client_ref, str) and bool(client_ref) and (
            services.by_client_ref(request.user, client_ref, access.project) is not None
        )
        annotation = services.create_annotation(
            request.user,
            access.project,
            instance_uid=body.get("instance"),
            frame=body.get("frame", 1),
            plane=body.get("plane"),
            kind=body.get("kind"),
            points=body.get("points"),
            label=body.get("label", ""),
            client_ref=client_ref,
        )
        return Response(services.serialize(annotation), status=200 if repeated else 201)


class AnnotationDetailView(APIView):
    def get(self, request: Request, slug: str, pk: int) -> Response:
        access = access_project(request.user, slug, minimum=Role.VIEWER)
        return Response(services.serialize(services.access_annotation(access, pk)))

    def patch(self, request: Request, slug: str, pk: int) -> Response:
        access = access_project(request.user, slug, minimum=Role.VIEWER)
        annotation = services.access_annotation(access, pk)
        body = _body(request)
        if "version" not in body:
            raise BadRequest("version is required: the version the change is based on.")
        updated = services.update_annotation(
            request.user, annotation, version=body["version"], points=body.get("points"), label=body.get("label")
        )
        return Response(services.serialize(updated))

    def delete(self, request: Request, slug: str, pk: int) -> Response:
        access = access_project(request.user, slug, minimum=Role.VIEWER)
        annotation = services.access_annotation(access, pk)
        version = request.query_params.get("version")
        services.delete_annotation(request.user, annotation, version=int(version) if version and version.isdigit() else None)
        return Response(status=204)


class AnnotationExportView(APIView):
    def get(self, request: Request, slug: str) -> HttpResponse:
        access = access_project(request.user, slug, minimum=Role.VIEWER)
        study = request.query_params.get("study")
        fmt = request.query_params.get("as", "csv")
        if fmt == "csv":
            response = HttpResponse(exports.marks_csv(access, study), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="measurements.csv"'
        elif fmt == "sr":
            report = exports.marks_sr(access, study)
            response = HttpResponse(report.data, content_type="application/dicom")
            response["Content-Disposition"] = 'attachment; filename="measurements-sr.dcm"'
            response["X-Marks"] = str(report.marks)
            response["X-Marks-Skipped"] = str(report.skipped)
        else:
            raise BadRequest("as must be csv or sr.")
        response["Cache-Control"] = "private, no-store"
        return response

    def post(self, request: Request, slug: str) -> Response:
        access = access_project(request.user, slug, minimum=Role.READER)
        return Response(exports.store_marks_sr(access, _body(request).get("study")), status=201)
