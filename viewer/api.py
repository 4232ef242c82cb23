"""REST endpoints of the archive (DRF). Thin: authorise through viewer.access, call a service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crossread.conf import option
from crossread.errors import BadRequest
from viewer import imaging, projects, user_presets
from viewer.access import access_project
from viewer.ingest import IngestResult, ingest_files, record_upload, too_large
from viewer.models import Membership, Project, Role


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["slug", "name", "description", "deidentification", "keep_pseudonym_links", "created_at"]
        read_only_fields = ["created_at"]


class ProjectWriteSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    deidentification = serializers.JSONField(required=False, allow_null=True, default=None)


class ProjectChangeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    deidentification = serializers.JSONField(required=False, allow_null=True)
    keep_pseudonym_links = serializers.BooleanField(required=False)


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.values)


def _member(membership: Membership) -> dict[str, str]:
    return {"username": membership.user.get_username(), "role": membership.role}


class ProjectListView(APIView):
    """``GET /api/projects/`` (mine) and ``POST /api/projects/`` (staff; the creator becomes organizer)."""

    def get(self, request: Request) -> Response:
        mine = Project.objects.filter(memberships__user=request.user).order_by("slug")
        return Response({"projects": ProjectSerializer(mine, many=True).data})

    def post(self, request: Request) -> Response:
        data = ProjectWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = projects.create_project(request.user, **data.validated_data)
        return Response(ProjectSerializer(project).data, status=201)


class ProjectDetailView(APIView):
    """``GET`` and ``PATCH /api/projects/<slug>/``."""

    def get(self, request: Request, slug: str) -> Response:
        return Response(ProjectSerializer(access_project(request.user, slug).project).data)

    def patch(self, request: Request, slug: str) -> Response:
        changes = ProjectChangeSerializer(data=request.data, partial=True)
        changes.is_valid(raise_exception=True)
        project = projects.update_project(access_project(request.user, slug), changes.validated_data)
        return Response(ProjectSerializer(project).data)


class MembersView(APIView):
    """``GET`` and ``POST /api/projects/<slug>/members/`` (``username``, ``role``; organizers)."""

    def get(self, request: Request, slug: str) -> Response:
        access = access_project(request.user, slug)
        members = access.project.memberships.select_related("user").order_by("user__username")
        return Response({"members": [_member(m) for m in members]})

    def post(self, request: Request, slug: str) -> Response:
        data = MemberSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = projects.set_membership(access_project(request.user, slug), **data.validated_data)
        return Response(_member(membership), status=201)


class UploadView(APIView):
    """``POST /api/projects/<slug>/upload/``: files and zip archives as multipart/form-data (any field name).

    Answers 200 with a report per file (stored, already stored, or failed with a reason) when at least
    one file was accepted, 400 with the same report when none was.
    """

    parser_classes = [MultiPartParser]

    def post(self, request: Request, slug: str) -> Response:
        access = access_project(request.user, slug, minimum=Role.READER)
        uploads = [f for field in request.FILES for f in request.FILES.getlist(field)]
        if not uploads:
            raise BadRequest("No files in the upload (send multipart/form-data with one or more files).")
        report = ingest_files(access.project, _read_one_at_a_time(uploads))
        record_upload(request, access.project, report.results, via="web upload")
        status = 400 if report.results and not any(r.ok for r in report.results) else 200
        return Response(report.as_dict(), status=status)


def _read_one_at_a_time(uploads: list[Any]) -> Iterator[tuple[str, BinaryIO | IngestResult]]:
    """Each uploaded file as a file, read only when the ingest reaches it (Django spooled each large
    file to disk: a zip is read from there a member at a time); a file larger than any instance or zip
    archive is refused unread."""
    limit = max(option("MAX_INSTANCE_BYTES"), option("MAX_ZIP_BYTES"))
    for upload in uploads:
        if upload.size is not None and upload.size > limit:
            yield upload.name, too_large(upload.name)
        else:
            upload.seek(0)
            yield upload.name, upload.file


class PresetsView(APIView):
    """``GET /api/presets/[?modality=CT]``: the window presets the viewer offers (see viewer.imaging.presets)."""

    def get(self, request: Request) -> Response:
        return Response({"presets": imaging.presets_for(request.query_params.get("modality"))})


class MyPresetsView(APIView):
    """``GET /api/me/presets/`` (my window presets, in my order) and ``POST`` one
    (``modality``, ``label``, ``center``, ``width``); see :mod:`viewer.user_presets`."""

    def get(self, request: Request) -> Response:
        return Response({"presets": user_presets.list_presets(request.user)})

    def post(self, request: Request) -> Response:
        return Response(user_presets.create_preset(request.user, request.data), status=201)


class MyPresetView(APIView):
    """``PATCH`` (any of ``label``, ``modality``, ``center``, ``width``) and ``DELETE /api/me/presets/<id>/``: mine only."""

    def patch(self, request: Request, preset_id: int) -> Response:
        return Response(user_presets.update_preset(request.user, preset_id, request.data))

    def delete(self, request: Request, preset_id: int) -> Response:
        user_presets.delete_preset(request.user, preset_id)
        return Response(status=204)


class MyPresetsOrderView(APIView):
    """``POST /api/me/presets/order/`` with ``{"ids": [...]}``: those first, in that order."""

    def post(self, request: Request) -> Response:
        ids = request.data.get("ids") if isinstance(request.data, dict) else None
        return Response({"presets": user_presets.order_presets(request.user, ids)})


class QuarantineDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["release", "reject"])
    reason = serializers.CharField(max_length=500)


class QuarantineView(APIView):
    """``GET /api/projects/<slug>/quarantine/``: instances held for review (organizers);
    ``POST /api/projects/<slug>/quarantine/<sop>/`` with ``decision`` (release or reject) and ``reason``."""

    def get(self, request: Request, slug: str) -> Response:
        access = access_project(request.user, slug, minimum=Role.ORGANIZER)
        held = access.instances().filter(quarantined=True).select_related("series", "series__study")
        return Response({"instances": [
            {
                "study": i.series.study.study_instance_uid,
                "series": i.series.series_instance_uid,
                "instance": i.sop_instance_uid,
                "modality": i.series.modality,
                "reasons": i.quarantine_reasons,
            }
            for i in held.order_by("pk")
        ]})

    def post(self, request: Request, slug: str, sop: str) -> Response:
        data = QuarantineDecisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        projects.decide_quarantine(access_project(request.user, slug), sop, **data.validated_data)
        return Response({"instance": sop, "decision": data.validated_data["decision"]})


def health(request: Any) -> Any:
    """``GET /api/health/``: is the database reachable, and which transfer syntaxes can be decoded.

    Public (a load balancer calls it) and free of any project data.
    """
    from django.db import connection
    from django.http import JsonResponse

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception as exc:  # the point of a health check is to report, not raise
        database = f"error: {type(exc).__name__}"
    body = {"status": "ok" if database == "ok" else "degraded", "database": database, "codecs": imaging.capabilities()}
    return JsonResponse(body, status=200 if database == "ok" else 503)
