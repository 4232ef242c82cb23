"""REST endpoints of reading sessions (DRF). Thin: ``access_session``, one collab service, serialise.

- ``GET  /api/sessions/[?project=<slug>&status=<status>]``, ``POST /api/sessions/``
  ``{"project", "title", "studies": [StudyInstanceUID...], "mode"?, "description"?, "status"?,
  "participants"?: [{"username", "role"}]}`` → 201
- ``GET | PATCH /api/sessions/<id>/`` (PATCH: title, description, mode, status, studies, voice_when_blinded)
- ``POST /api/sessions/<id>/participants/`` ``{"username", "role"}``;
  ``DELETE /api/sessions/<id>/participants/<username>/``
- ``POST /api/sessions/<id>/close/``
- ``GET | POST /api/sessions/<id>/invitations/`` ``{"role", "username"?, "hours"?}``;
  ``DELETE /api/sessions/<id>/invitations/<invitation id>/`` (revoke)
- ``GET /api/sessions/<id>/annotations/``: the session's annotations this user may see (blinding applies)
- ``GET /api/sessions/<id>/chat/[?as=json|csv]``: the session's chat as this user may read it
  (blinding applies; the CSV through ``crossread.csvsafe``; audited as an export)
- ``DELETE /api/sessions/<id>/annotations/<annotation id>/[?version=<n>]``: the session's organizer or a
  project organizer deletes any of them (audited; sent to the session as a live delete), others their own
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collab import services
from collab.access import SessionAccess, access_session
from crossread.errors import BadRequest


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise BadRequest("The body must be a JSON object.")
    return dict(request.data)


def detail(access: SessionAccess) -> dict[str, Any]:
    seat = access.seat
    data = services.session_payload(access.session, access.project)
    data["participants"] = services.participants_payload(access.session)
    data["you"] = {
        "user": access.user.get_username(),
        "role": seat.role if seat else None,
        "manages": access.manages,
    }
    if access.manages:
        data["invitations"] = [services.invitation_payload(i) for i in services.invitations_of(access)]
    return data


class SessionListView(APIView):
    def get(self, request: Request) -> Response:
        found = services.sessions_for(
            request.user, project=request.query_params.get("project"), status=request.query_params.get("status")
        )
        return Response({"sessions": services.sessions_payload(request.user, found)})

    def post(self, request: Request) -> Response:
        body = _body(request)
        participants = body.get("participants", [])
        if not isinstance(participants, list) or not all(isinstance(p, dict) for p in participants):
            raise BadRequest("participants must be a list of {username, role}.")
        session = services.create_session(
            request.user,
            project=body.get("project"),
            title=body.get("title"),
            studies=body.get("studies"),
            mode=body.get("mode", "open"),
            description=body.get("description", ""),
            status=body.get("status", "draft"),
            participants=[(p.get("username"), p.get("role")) for p in participants],
            voice_when_blinded=body.get("voice_when_blinded", False),
        )
        return Response(detail(access_session(request.user, session.pk)), status=201)


class SessionDetailView(APIView):
    def get(self, request: Request, session_id: str) -> Response:
        return Response(detail(access_session(request.user, session_id)))

    def patch(self, request: Request, session_id: str) -> Response:
        access = access_session(request.user, session_id)
        session = services.update_session(access, **_body(request))
        return Response(detail(access_session(request.user, session.pk)))


class ParticipantsView(APIView):
    def get(self, request: Request, session_id: str) -> Response:
        access = access_session(request.user, session_id)
        return Response({"participants": services.participants_payload(access.session)})

    def post(self, request: Request, session_id: str) -> Response:
        access = access_session(request.user, session_id)
        body = _body(request)
        services.seat_participant(access, body.get("username"), body.get("role"))
        return Response({"participants": services.participants_payload(access.session)}, status=201)


class ParticipantDetailView(APIView):
    def delete(self, request: Request, session_id: str, username: str) -> Response:
        access = access_session(request.user, session_id)
        services.remove_participant(access, username)
        return Response(status=204)


class CloseView(APIView):
    def post(self, request: Request, session_id: str) -> Response:
        access = access_session(request.user, session_id)
        services.close_session(access)
        return Response(detail(access_session(request.user, access.session.pk)))


class InvitationsView(APIView):
    def get(self, request: Request, session_id: str) -> Response:
        access = access_session(request.user, session_id)
        return Response({"invitations": [services.invitation_payload(i) for i in services.invitations_of(access)]})

    def post(self, request: Request, session_id: str) -> Response:
        access = access_session(request.user, session_id)
        body = _body(request)
        invitation = services.create_invitation(
            access, role=body.get("role", "reader"), username=body.get("username", ""), hours=body.get("hours", 72)
        )
        return Response(services.invitation_payload(invitation), status=201)


class InvitationDetailView(APIView):
    def delete(self, request: Request, session_id: str, invitation_id: str) -> Response:
        access = access_session(request.user, session_id)
        services.revoke_invitation(access, invitation_id)
        return Response(status=204)


class SessionAnnotationsView(APIView):
    def get(self, request: Request, session_id: str) -> Response:
        access = access_session(request.user, session_id)
        return Response({"annotations": services.visible_session_annotations(access)})


class SessionAnnotationDetailView(APIView):
    def delete(self, request: Request, session_id: str, annotation_id: str) -> Response:
        access = access_session(request.user, session_id)
        version = request.query_params.get("version")
        services.delete_session_annotation(access, annotation_id, int(version) if version and version.isdigit() else None)
        return Response(status=204)


class SessionChatView(APIView):
    def get(self, request: Request, session_id: str) -> HttpResponse:
        access = access_session(request.user, session_id)
        fmt = request.query_params.get("as", "json")  # (DRF reserves ?format=)
        content_type, body = services.export_chat(access, fmt if fmt in ("json", "csv") else "")
        response = HttpResponse(body, content_type=content_type)
        if fmt == "csv":
            response["Content-Disposition"] = f'attachment; filename="session-{access.session.pk}-chat.csv"'
        return response
