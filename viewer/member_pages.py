"""The members page: organizers add members, change their roles and remove them."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from crossread.errors import DomainError, log_refusal
from viewer import projects
from viewer.access import access_project
from viewer.models import Role


@login_required
def members(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        access = access_project(request.user, slug, minimum=Role.ORGANIZER)
        if request.method == "POST":
            username = request.POST.get("username", "").strip()
            if request.POST.get("action") == "remove":
                projects.remove_membership(access, username=username)
                messages.success(request, f"{username} is no longer a member.")
            else:
                projects.set_membership(access, username=username, role=request.POST.get("role", ""))
                messages.success(request, f"{username} is now {request.POST.get('role')}.")
            return redirect("members-page", slug=slug)
    except DomainError as error:
        if request.method == "POST" and error.status in (400, 404) and "access" in locals():
            messages.error(request, error.detail)
            return redirect("members-page", slug=slug)
        log_refusal(request, error)
        return render(request, "audit/error.html", {"error": error}, status=error.status)
    rows = access.project.memberships.select_related("user").order_by("user__username")
    return render(request, "viewer/members.html", {"project": access.project, "members": rows, "roles": Role.values})
