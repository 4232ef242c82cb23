"""The audit log for organizers: ``GET /api/projects/<slug>/audit/[?export=csv|fhir]`` as JSON, CSV or a FHIR Bundle,
and the page ``/projects/<slug>/audit/``. Read-only: there is no way to change an entry."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import fhir, ratelimit
from audit.models import Action, AuditEvent
from audit.services import record
from crossread import csvsafe
from crossread.errors import BadRequest, DomainError, ErrorCode, NotFound, log_refusal
from viewer.access import ProjectAccess, access_project
from viewer.models import Role

FIELDS = ["id", "at", "actor_name", "action", "outcome", "project", "object_type", "object_id", "source_ip", "detail"]
PAGE_SIZE = 200


def filtered(slug: str, params: Any) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(project=slug)
    if params.get("action"):
        if params["action"] not in Action.values:
            raise BadRequest(f"Unknown action; use one of {', '.join(Action.values)}.")
        events = events.filter(action=params["action"])
    if params.get("actor"):
        events = events.filter(actor_name=params["actor"])
    if params.get("object"):
        events = events.filter(object_id=params["object"])
    for name, lookup in (("since", "at__gte"), ("until", "at__lte")):
        if params.get(name):
            moment = parse_datetime(params[name]) or _day(params[name])
            if moment is None:
                raise BadRequest(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 date-time.")
            events = events.filter(**{lookup: moment})
    return events


def _day(text: str) -> datetime | None:
    day = parse_date(text)
    return datetime(day.year, day.month, day.day) if day else None


def rows(events: QuerySet[AuditEvent]) -> list[dict[str, Any]]:
    return list(events.values(*FIELDS))


class AuditLogView(APIView):
    def get(self, request: Request, slug: str) -> Response | HttpResponse:
        access = access_project(request.user, slug, minimum=Role.ORGANIZER)
        events = filtered(slug, request.query_params)
        fmt = request.query_params.get("export", "json")  # not "format": DRF reserves it
        if fmt not in ("json", "csv", "fhir"):
            raise BadRequest("export must be json, csv or fhir.")
        if fmt == "json":
            return Response({"events": rows(events[:PAGE_SIZE]), "count": events.count()})
        record(Action.AUDIT_EXPORTED, actor=request.user, request=request, project=access.project, format=fmt)
        if fmt == "fhir":
            response = Response(fhir.bundle(rows(events)))
            response["Content-Type"] = "application/fhir+json"
            return response
        return csv_response(rows(events), f"audit-{slug}.csv")


#: Series (or study openings) in one viewing report. The viewer sends what it saw in 30 s.
MAX_VIEWS_PER_REPORT = 100
#: Viewing events one user may record per window, and the window (seconds): a reader who looks
#: at a new series every second stays far below; a script posting thousands of fake views does not.
VIEWS_PER_WINDOW = 200
VIEWS_WINDOW_SECONDS = 60


class ViewingReportSerializer(serializers.Serializer):
    """What a reader looked at, reported by the viewer in batches."""

    study = serializers.CharField(max_length=64)
    series = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    first_slice = serializers.IntegerField(min_value=1, required=False)
    last_slice = serializers.IntegerField(min_value=1, required=False)
    seconds = serializers.FloatField(min_value=0, max_value=86400, required=False, default=0)
    opened = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("first_slice", 1) > attrs.get("last_slice", attrs.get("first_slice", 1)):
            raise serializers.ValidationError("first_slice must not be after last_slice.")
        return attrs


def unseen(access: ProjectAccess, views: list[dict[str, Any]]) -> list[str]:
    """The studies and series of ``views`` that this user cannot see in the project (none exist, a
    series of another study, or only quarantined images for someone who is not an organizer)."""
    instances = access.instances()
    studies = set(instances.filter(series__study__study_instance_uid__in={v["study"] for v in views})
                  .values_list("series__study__study_instance_uid", flat=True).distinct())
    series = set(instances.filter(series__series_instance_uid__in={v["series"] for v in views if v["series"]})
                 .values_list("series__series_instance_uid", "series__study__study_instance_uid").distinct())
    missing = {v["series"] or v["study"] for v in views
               if v["study"] not in studies or (v["series"] and (v["series"], v["study"]) not in series)}
    return sorted(missing)


class ViewingReportView(APIView):
    """``POST /api/projects/<slug>/audit/views/``: ``{"views": [{study, series, first_slice, last_slice,
    seconds, opened}, ...]}`` → one ``study.opened`` or ``series.viewed`` event each (any member).

    A report is all or nothing, and refused (nothing recorded) when it holds more than
    :data:`MAX_VIEWS_PER_REPORT` items (413), a study or series the user cannot see (404: it may be a
    guess, and is audited as a refused access), or more than the user's budget of
    :data:`VIEWS_PER_WINDOW` events per :data:`VIEWS_WINDOW_SECONDS` (429, ``retry_after``).
    """

    def post(self, request: Request, slug: str) -> Response:
        access = access_project(request.user, slug)
        items = request.data.get("views") if isinstance(request.data, dict) else None
        if not isinstance(items, list) or not items:
            raise BadRequest(f"Send {{\"views\": [...]}} with 1 to {MAX_VIEWS_PER_REPORT} items.")
        if len(items) > MAX_VIEWS_PER_REPORT:
            raise DomainError(f"A viewing report holds at most {MAX_VIEWS_PER_REPORT} items.",
                              code=ErrorCode.TOO_LARGE, limit=MAX_VIEWS_PER_REPORT)
        batch = ViewingReportSerializer(data=items, many=True)
        batch.is_valid(raise_exception=True)
        views = batch.validated_data
        # spent before the existence check: a refused guess is audited, and those entries count too
        if not ratelimit.take(f"audit-views:user:{request.user.pk}", len(views), limit=VIEWS_PER_WINDOW,
                              window=VIEWS_WINDOW_SECONDS):
            error = DomainError(f"Too many viewing events: at most {VIEWS_PER_WINDOW} per "
                                f"{VIEWS_WINDOW_SECONDS} s. Send them again later.",
                                code=ErrorCode.RATE_LIMITED, retry_after=VIEWS_WINDOW_SECONDS)
            return Response(error.as_dict(), status=error.status, headers={"Retry-After": str(VIEWS_WINDOW_SECONDS)})
        missing = unseen(access, views)
        if missing:
            raise NotFound("No such study or series in this project.", unknown=missing[:5])
        for view in views:
            opened = view.pop("opened")
            record(
                Action.STUDY_OPENED if opened else Action.SERIES_VIEWED,
                actor=request.user, request=request, project=access.project,
                object_type="series" if view["series"] else "study",
                object_id=view["series"] or view["study"], **view,
            )
        return Response({"recorded": len(views)}, status=201)


def csv_response(data: list[dict[str, Any]], filename: str) -> HttpResponse:
    buffer = io.StringIO()
    writer = csvsafe.DictWriter(buffer, fieldnames=FIELDS)  # names, reasons, paths: no formulas
    writer.writeheader()
    writer.writerows(data)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def audit_page(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        access = access_project(request.user, slug, minimum=Role.ORGANIZER)
        events = filtered(slug, request.GET)
    except DomainError as error:
        log_refusal(request, error)
        return render(request, "audit/error.html", {"error": error}, status=error.status)
    return render(
        request,
        "audit/log.html",
        {"project": access.project, "events": events[:PAGE_SIZE], "count": events.count(), "actions": Action.values,
         "query": request.GET.urlencode(), "params": request.GET},
    )
