"""Server-rendered pages of reading sessions: list, new session (from the worklist), lobby, invitation."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from collab import services
from collab.access import access_session
from collab.models import Mode, SessionRole
from crossread.errors import DomainError, log_refusal
from viewer.access import access_project
from viewer.models import Membership, Role


def _error(request: HttpRequest, error: DomainError) -> HttpResponse:
    log_refusal(request, error)  # 403 and 404 may be someone guessing identifiers: audited
    return render(request, "collab/error.html", {"error": error}, status=error.status)


@login_required
def session_list(request: HttpRequest) -> HttpResponse:
    return render(request, "collab/list.html", {"sessions": services.sessions_for(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def new_session(request: HttpRequest) -> HttpResponse:
    """``/sessions/new?project=<slug>&studies=<uid,...>``: the worklist's "read together" link."""
    slug = request.GET.get("project") or request.POST.get("project") or ""
    try:
        access = access_project(request.user, slug, minimum=Role.ORGANIZER)
    except DomainError as error:
        return _error(request, error)
    chosen = [u for u in (request.GET.get("studies") or "").split(",") if u]
    form: dict[str, Any] = {"title": "", "description": "", "mode": Mode.OPEN, "studies": chosen, "start": True, "seats": {}}
    error = None
    if request.method == "POST":
        form = {
            "title": request.POST.get("title", ""),
            "description": request.POST.get("description", ""),
            "mode": request.POST.get("mode", Mode.OPEN),
            "studies": request.POST.getlist("studies"),
            "start": request.POST.get("start") == "on",
            "seats": {k[5:]: v for k, v in request.POST.items() if k.startswith("seat:") and v},
        }
        try:
            session = services.create_session(
                request.user, project=slug, title=form["title"], description=form["description"],
                studies=form["studies"], mode=form["mode"], status="active" if form["start"] else "draft",
                participants=list(form["seats"].items()),
            )
        except DomainError as exc:
            error = exc
        else:
            return redirect("session-lobby", session_id=session.pk)
    studies = list(access.studies().order_by("study_date", "id"))
    order = {uid: i for i, uid in enumerate(form["studies"])}
    studies.sort(key=lambda s: order.get(s.study_instance_uid, len(order)))
    members = Membership.objects.filter(project=access.project).exclude(user=request.user).select_related("user")
    seats = [
        {
            "username": m.user.get_username(),
            "project_role": m.role,
            "choice": form["seats"].get(m.user.get_username(), SessionRole.READER if request.method == "GET" and m.role == Role.READER else ""),
        }
        for m in members.order_by("user__username")
    ]
    return render(request, "collab/new.html", {
        "project": access.project, "studies": studies, "form": form, "seats": seats, "error": error,
        "roles": SessionRole.choices, "modes": Mode.choices,
    }, status=400 if error else 200)


@login_required
def lobby(request: HttpRequest, session_id: int) -> HttpResponse:
    try:
        access = access_session(request.user, session_id)
    except DomainError as error:
        return _error(request, error)
    return render(request, "collab/lobby.html", {
        "access": access,
        "session": services.session_payload(access.session, access.project),
        "participants": services.participants_payload(access.session),
        "roles": SessionRole.choices,
        "members": Membership.objects.filter(project=access.session.project).select_related("user").order_by("user__username"),
    })


@login_required
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation link: one click on "Join" seats the member and opens the lobby."""
    try:
        if request.method == "POST":
            session = services.accept_invitation(request.user, token)
            return redirect("session-lobby", session_id=session.pk)
        invitation = services.check_invitation(request.user, token)
    except DomainError as error:
        return _error(request, error)
    return render(request, "collab/join.html", {"invitation": invitation, "session": invitation.session})
