"""Server-rendered pages of a trial under ``/projects/<slug>/trial/``. Thin: access, one service call, render.

A read opens in the viewer (``trials/read_viewer.html`` over ``viewer/viewer.html``): the viewer's
start-up data with the subject's time points as its studies (blinded: the subject's label, the time
point and the day instead of patient, dates and descriptions), and the read's panel
(``static/trials/read_panel.js``) over the REST API. The read's summary (every lesion at every time
point as a table, ``static/trials/read.js``) is the page under ``summary/``. The adjudication page posts
a plain form; the adjudication on the images (``adjudicate/images/``) is the viewer again, with both reads'
marks side by side and the adjudication's panel (``static/trials/adjudicate_panel.js``). The dashboard is
server-rendered SVG.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import ensure_csrf_cookie

from crossread.errors import DomainError, ErrorCode, log_refusal
from trials import rules
from trials.models import Read, Subject
from trials.services import evaluation, reports, signing
from trials.services.access import TrialAccess, access_read, access_subject, access_trial
from viewer import imaging
from viewer.pages import first_frame_url, study_outline


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


def _current_timepoint(read: Read, asked: str | None) -> int:
    """The time point to read first: the one asked for (``?timepoint=``), else the baseline while the
    read has no lesion, else the first time point where a lesion is not assessed yet, else the last."""
    rows = evaluation.read_rows(read)
    ids = [tp.pk for tp in rows.timepoints]
    if asked and asked.isdigit() and int(asked) in ids:
        return int(asked)
    if not rows.lesions or read.is_signed:
        return ids[0] if not rows.lesions else ids[-1]
    for tp in rows.timepoints:
        if any(rows.at(lesion, tp) is None for lesion in rows.lesions if lesion.role != "new" or tp.order > 0):
            return tp.pk
    return ids[-1]


def _read_outlines(access: TrialAccess, read: Read) -> list[dict[str, Any]]:
    return _subject_outlines(access, read.subject)


def _subject_outlines(access: TrialAccess, subject: Subject) -> list[dict[str, Any]]:
    """The viewer's outline of each time point's study, baseline first, blinded: the subject's label for
    the patient, the time point and its day for the date and description (the corner text and the series
    panel show these)."""
    timepoints = list(subject.timepoints.select_related("study").order_by("order"))
    outlines = []
    for tp in timepoints:
        outline = study_outline(access.project_access, tp.study.study_instance_uid)
        day = (tp.date - timepoints[0].date).days
        outline.update(patientName=f"Subject {subject.label}", patientId="", studyDate="",
                       studyDescription=f"{tp.label} · day {day}", timepoint=tp.pk, label=tp.label, day=day,
                       documents=[])  # a read shows the images only: no SR or SEG of other reads beside them
        outlines.append(outline)
    return outlines


@login_required
@ensure_csrf_cookie
def read(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The read in the viewer: its time points hung side by side, its panel beside the images."""
    access = _access(request, slug)
    found = _or_404(request, lambda: access_read(access, pk))
    outlines = _or_404(request, lambda: _read_outlines(access, found))
    if not outlines:
        raise Http404("The subject has no studies.")
    current = _current_timepoint(found, request.GET.get("timepoint"))
    # the study read first is the viewer's own (its first image is preloaded); the others follow in order
    outlines.sort(key=lambda o: o["timepoint"] != current)
    editable = rules.decide_write(access.role, own=found.reader_id == access.user.pk, status=found.status) is None
    modalities = sorted({s["modality"] for o in outlines for s in o["series"] if s["modality"]})
    boot = {
        "project": slug, "user": request.user.get_username(), "role": access.role, "canWrite": editable,
        "outline": outlines[0], "related": outlines[1:], "presets": [p for m in modalities for p in imaging.presets_for(m)],
        "session": None,
        "read": {"id": found.pk, "api": f"/api/trials/{slug}/reads/{found.pk}/", "subject": found.subject.label,
                 "worklist": f"/projects/{slug}/trial/", "summary": f"/projects/{slug}/trial/reads/{found.pk}/summary/",
                 "organizer": access.is_organizer, "current": current, "lesion": request.GET.get("lesion", "")[:12]},
    }
    return render(request, "trials/read_viewer.html", _context(access) | {
        "read": found, "boot": boot, "outline": outlines[0], "session": None,
        "first_frame": first_frame_url(access.project_access, outlines[0])})


@login_required
@ensure_csrf_cookie
def read_summary(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The read as a table: every lesion at every time point with its key image, the RECIST table."""
    access = _access(request, slug)
    found = _or_404(request, lambda: access_read(access, pk))
    boot = {"project": slug, "read": found.pk, "api": f"/api/trials/{slug}/reads/{found.pk}/",
            "viewer": f"/projects/{slug}/trial/reads/{found.pk}/", "dicomweb": f"/projects/{slug}/dicomweb/",
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


def _disputed_timepoint(view: dict[str, Any], asked: str | None) -> int | None:
    """The time point shown first: the one asked for (``?timepoint=``), else the first where the reads'
    overall responses differ, else the last."""
    ids = [tp["id"] for tp in view["timepoints"]]
    if asked and asked.isdigit() and int(asked) in ids:
        return int(asked)
    return next((tp["id"] for tp in view["timepoints"] if tp["agree"] is False), ids[-1] if ids else None)


@login_required
@ensure_csrf_cookie
def adjudicate_images(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The adjudication on the images: the viewer with both signed reads of a subject side by side (reader
    A's marks on the left, B's on the right, the same time point, linked), and the adjudication's panel."""
    access = _access(request, slug)
    subject = _or_404(request, lambda: access_subject(access, pk))
    view = _or_404(request, lambda: signing.adjudication_view(access, subject))
    outlines = _subject_outlines(access, subject)
    if not outlines:
        raise Http404("The subject has no studies.")
    current = _disputed_timepoint(view, request.GET.get("timepoint"))
    outlines.sort(key=lambda o: o["timepoint"] != current)
    modalities = sorted({s["modality"] for o in outlines for s in o["series"] if s["modality"]})
    base = f"/api/trials/{slug}/subjects/{subject.pk}/adjudication/"
    boot = {
        "project": slug, "user": request.user.get_username(), "role": access.role, "canWrite": False,
        "outline": outlines[0], "related": outlines[1:], "presets": [p for m in modalities for p in imaging.presets_for(m)],
        "session": None,
        "adjudication": {"subject": subject.label, "api": base, "marks": f"{base}marks/", "current": current,
                         "page": f"/projects/{slug}/trial/subjects/{subject.pk}/adjudicate/",
                         "worklist": f"/projects/{slug}/trial/", "reads": f"/projects/{slug}/trial/reads/"},
    }
    return render(request, "trials/adjudicate_viewer.html", _context(access) | {
        "subject": subject, "boot": boot, "outline": outlines[0], "session": None,
        "first_frame": first_frame_url(access.project_access, outlines[0])})


@login_required
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    access = _access(request, slug)
    # a member without the role knows the trial exists: 403, as from its API
    data = _or_404(request, lambda: reports.dashboard(access), hide_forbidden=False)
    return render(request, "trials/dashboard.html", _context(access) | {
        "data": data, "waterfall": mark_safe(data["waterfall_svg"]),  # built with every text escaped
        "spider": mark_safe(data["spider_svg"])})
