"""Server-rendered pages of a trial under ``/projects/<slug>/trial/``. Thin: access, one service call, render.

The read page is driven by ``static/trials/read.js`` over the REST API; the adjudication page posts
a plain form; the dashboard is server-rendered SVG.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import ensure_csrf_cookie

from crossread.errors import DomainError, ErrorCode, log_refusal
from trials.services import reports, signing
from trials.services.access import TrialAccess, access_read, access_subject, access_trial


def _access(request: HttpRequest, slug: str) -> TrialAccess:
    try:
        return access_trial(request.user, slug)
    except DomainError as error:
        log_refusal(request, error)  # someone may be guessing identifiers: audited
        if error.code == ErrorCode.NOT_FOUND:
            raise Http404(error.detail) from None
        raise


def _context(access: TrialAccess) -> dict[str, object]:
    return {"project": access.trial.project, "trial": access.trial, "role": access.project_access.role,
            "is_organizer": access.is_organizer, "is_adjudicator": access.is_adjudicator,
            "sees_results": access.sees_results}


def _or_404(request, call, *, hide_forbidden: bool = True):  # type: ignore[no-untyped-def]
    """``call()``, its refusals audited and answered 404; a forbidden one 403 where the user may know
    the thing exists (``hide_forbidden=False``, as for the trial's own dashboard)."""
    try:
        return call()
    except DomainError as error:
        log_refusal(request, error)
        if error.code == ErrorCode.FORBIDDEN and not hide_forbidden:
            raise PermissionDenied(error.detail) from None
        if error.code in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN):
            raise Http404(error.detail) from None
        raise


@login_required
@ensure_csrf_cookie
def worklist(request: HttpRequest, slug: str) -> HttpResponse:
    access = _access(request, slug)
    return render(request, "trials/worklist.html", _context(access) | {"reads": reports.worklist(access)})


@login_required
@ensure_csrf_cookie
def read(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    access = _access(request, slug)
    found = _or_404(request, lambda: access_read(access, pk))
    boot = {"project": slug, "read": found.pk, "api": f"/api/trials/{slug}/reads/{found.pk}/",
            "viewer": f"/projects/{slug}/studies/", "dicomweb": f"/projects/{slug}/dicomweb/",
            "user": request.user.get_username(), "organizer": access.is_organizer}
    return render(request, "trials/read.html", _context(access) | {"read": found, "boot": boot})


@login_required
@ensure_csrf_cookie
def adjudicate(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    access = _access(request, slug)
    subject = _or_404(request, lambda: access_subject(access, pk))
    error, status = None, 200
    if request.method == "POST":
        try:
            chosen = request.POST.get("read", "")
            signing.adjudicate(access, subject, read=int(chosen) if chosen.isdigit() else None,
                               reason=request.POST.get("reason", ""))
            return redirect("trial-adjudicate-page", slug=slug, pk=subject.pk)
        except DomainError as exc:
            # the form shows the reason; the status is the error's (403 for a non-adjudicator, 409, ...)
            log_refusal(request, exc)
            error, status = exc.detail, exc.status
    view = signing.adjudication_view(access, subject)
    return render(request, "trials/adjudicate.html", _context(access) | {"view": view, "error": error},
                  status=status)


@login_required
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    access = _access(request, slug)
    # a member without the role knows the trial exists: 403, as from its API
    data = _or_404(request, lambda: reports.dashboard(access), hide_forbidden=False)
    return render(request, "trials/dashboard.html", _context(access) | {
        "data": data, "waterfall": mark_safe(data["waterfall_svg"]),  # built with every text escaped
        "spider": mark_safe(data["spider_svg"])})
