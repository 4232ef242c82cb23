"""REST endpoints of trials (DRF). Thin: resolve through :mod:`trials.services.access`, call one action.

- ``GET|POST /api/trials/<slug>/``: the trial (any member) / create it (organizer) ``{"name", "double_read"?,
  "confirmation_required"?, "targets_by_length"?, "adjudicators"?}``
- ``POST /api/trials/<slug>/subjects/`` ``{"label", "patient_id"}`` (organizer)
- ``POST /api/trials/<slug>/assign/`` ``{"readers": [username, ...]}`` (organizer)
- ``GET /api/trials/<slug>/reads/``: the caller's worklist (readers: own reads, random order)
- ``GET /api/trials/<slug>/reads/<id>/``: a read with its RECIST table
- ``POST /api/trials/<slug>/reads/<id>/lesions/`` ``{"role", "organ", "nodal", "mark"?}`` (``mark``: name a mark drawn for the read)
- ``PATCH|DELETE /api/trials/<slug>/reads/<id>/lesions/<lid>/``
- ``PUT /api/trials/<slug>/reads/<id>/assessments/`` ``{"lesion", "timepoint", "status", "annotation"?}``
- ``GET|POST /api/trials/<slug>/reads/<id>/marks/``: the read's marks / draw one ``{"instance", "frame", "kind",
  "points", "client_ref", "lesion"?}`` (the lesion's at the image's time point in one gesture)
- ``PATCH|DELETE /api/trials/<slug>/reads/<id>/marks/<annotation>/`` ``{"version", "points"?, "label"?}``
- ``POST /api/trials/<slug>/reads/<id>/sign/``
- ``POST /api/trials/<slug>/reads/<id>/sr/``: store the SR of a locked read (organizer)
- ``GET|POST /api/trials/<slug>/subjects/<id>/adjudication/`` ``{"read", "reason"}`` (adjudicator)
- ``GET /api/trials/<slug>/subjects/<id>/adjudication/marks/``: both signed reads' marks, each with its side (A, B)
- ``GET /api/trials/<slug>/dashboard/``; ``GET /api/trials/<slug>/export.csv`` (organizer)
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crossread.errors import BadRequest
from trials.services import evaluation, exports, reading, reports, setup, signing
from trials.services.access import TrialAccess, access_read, access_subject, access_trial


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise BadRequest("The body must be a JSON object.")
    return request.data


def trial_json(access: TrialAccess) -> dict[str, Any]:
    trial = access.trial
    return {
        "name": trial.name,
        "double_read": trial.double_read,
        "confirmation_required": trial.confirmation_required,
        "targets_by_length": trial.targets_by_length,
        "adjudicators": setup.usernames(trial.adjudicators.all()),
        "subjects": trial.subjects.count(),
        "you": {"organizer": access.is_organizer, "adjudicator": access.is_adjudicator},
    }


class TrialView(APIView):
    def get(self, request: Request, slug: str) -> Response:
        return Response(trial_json(access_trial(request.user, slug)))

    def post(self, request: Request, slug: str) -> Response:
        body = _body(request)
        setup.create_trial(
            request.user, slug, name=body.get("name"), double_read=body.get("double_read", True),
            confirmation_required=body.get("confirmation_required", True),
            targets_by_length=body.get("targets_by_length", False), adjudicators=body.get("adjudicators", []))
        return Response(trial_json(access_trial(request.user, slug)), status=201)


class SubjectsView(APIView):
    def post(self, request: Request, slug: str) -> Response:
        access = access_trial(request.user, slug)
        body = _body(request)
        subject = setup.add_subject(access, label=body.get("label"), patient_id=body.get("patient_id"))
        return Response({"id": subject.pk, "label": subject.label,
                         "timepoints": [{"id": t.pk, "label": t.label, "date": t.date.isoformat()}
                                        for t in subject.timepoints.all()]}, status=201)


class AssignView(APIView):
    def post(self, request: Request, slug: str) -> Response:
        access = access_trial(request.user, slug)
        created = setup.assign_readers(access, readers=_body(request).get("readers"))
        return Response({"created": len(created)}, status=201)


class ReadListView(APIView):
    def get(self, request: Request, slug: str) -> Response:
        return Response({"reads": reports.worklist(access_trial(request.user, slug))})


class ReadDetailView(APIView):
    def get(self, request: Request, slug: str, pk: int) -> Response:
        access = access_trial(request.user, slug)
        return Response(evaluation.serialize_read(access, access_read(access, pk)))


class LesionListView(APIView):
    def post(self, request: Request, slug: str, pk: int) -> Response:
        access = access_trial(request.user, slug)
        read = access_read(access, pk)
        body = _body(request)
        lesion = reading.add_lesion(access, read, role=body.get("role"), organ=body.get("organ"),
                                    nodal=body.get("nodal", False), mark=body.get("mark"))
        return Response({"id": lesion.pk, "identifier": lesion.identifier, "tracking_uid": lesion.tracking_uid},
                        status=201)


class LesionDetailView(APIView):
    def patch(self, request: Request, slug: str, pk: int, lesion: int) -> Response:
        access = access_trial(request.user, slug)
        read = access_read(access, pk)
        body = _body(request)
        reading.update_lesion(access, reading.access_lesion(read, lesion), organ=body.get("organ"),
                              nodal=body.get("nodal"))
        return Response(evaluation.serialize_read(access, read))

    def delete(self, request: Request, slug: str, pk: int, lesion: int) -> Response:
        access = access_trial(request.user, slug)
        read = access_read(access, pk)
        reading.delete_lesion(access, reading.access_lesion(read, lesion))
        return Response(status=204)


class AssessmentView(APIView):
    def put(self, request: Request, slug: str, pk: int) -> Response:
        access = access_trial(request.user, slug)
        read = access_read(access, pk)
        body = _body(request)
        reading.set_assessment(access, read, lesion=body.get("lesion"), timepoint=body.get("timepoint"),
                               status=body.get("status"), annotation=body.get("annotation"))
        return Response(evaluation.serialize_read(access, read))


class MarkListView(APIView):
    def get(self, request: Request, slug: str, pk: int) -> Response:
        access = access_trial(request.user, slug)
        read = access_read(access, pk)
        return Response({"annotations": [reading.serialize_mark(a, m) for a, m in reading.read_marks(access, read)]})

    def post(self, request: Request, slug: str, pk: int) -> Response:
        access = access_trial(request.user, slug)
        read = access_read(access, pk)
        body = _body(request)
        mark = reading.create_mark(access, read, instance=body.get("instance"), frame=body.get("frame", 1),
                                   kind=body.get("kind"), points=body.get("points"),
                                   client_ref=body.get("client_ref", ""), lesion=body.get("lesion"))
        mark = reading.access_mark(read, mark.annotation_id)
        return Response(reading.serialize_mark(mark.annotation, mark), status=201)


class MarkDetailView(APIView):
    def patch(self, request: Request, slug: str, pk: int, annotation: int) -> Response:
        access = access_trial(request.user, slug)
        read = access_read(access, pk)
        body = _body(request)
        mark = reading.update_mark(access, read, reading.access_mark(read, annotation), version=body.get("version"),
                                   points=body.get("points"), label=body.get("label"))
        return Response(reading.serialize_mark(mark.annotation, mark))

    def delete(self, request: Request, slug: str, pk: int, annotation: int) -> Response:
        access = access_trial(request.user, slug)
        read = access_read(access, pk)
        reading.delete_mark(access, read, reading.access_mark(read, annotation))
        return Response(status=204)


class SignView(APIView):
    def post(self, request: Request, slug: str, pk: int) -> Response:
        access = access_trial(request.user, slug)
        read = signing.sign_read(access, access_read(access, pk))
        return Response(evaluation.serialize_read(access, read))


class SRExportView(APIView):
    def post(self, request: Request, slug: str, pk: int) -> Response:
        access = access_trial(request.user, slug)
        return Response({"instances": exports.export_sr(access, access_read(access, pk))})


class AdjudicationView(APIView):
    def get(self, request: Request, slug: str, pk: int) -> Response:
        access = access_trial(request.user, slug)
        return Response(signing.adjudication_view(access, access_subject(access, pk)))

    def post(self, request: Request, slug: str, pk: int) -> Response:
        access = access_trial(request.user, slug)
        subject = access_subject(access, pk)
        body = _body(request)
        signing.adjudicate(access, subject, read=body.get("read"), reason=body.get("reason"))
        return Response(signing.adjudication_view(access, subject), status=201)


class AdjudicationMarksView(APIView):
    def get(self, request: Request, slug: str, pk: int) -> Response:
        access = access_trial(request.user, slug)
        return Response(signing.adjudication_marks(access, access_subject(access, pk)))


class DashboardView(APIView):
    def get(self, request: Request, slug: str) -> Response:
        return Response(reports.dashboard(access_trial(request.user, slug)))


class CsvExportView(APIView):
    def get(self, request: Request, slug: str) -> HttpResponse:
        access = access_trial(request.user, slug)
        response = HttpResponse(exports.export_csv(access), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{slug}-recist.csv"'
        return response
