"""Signing a read, settling a subject (locking its reads once final), adjudication."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations import recist
from audit.models import Action
from audit.services import record
from crossread.errors import BadRequest, Conflict, DomainError, ErrorCode
from trials import rules
from trials.models import Adjudication, Assessment, Read, ReadStatus, Subject
from trials.services.access import TrialAccess, require_results, visible_reads
from trials.services.evaluation import (
    assessment_axes,
    read_assessments,
    recist_timepoints,
    serialize_read,
    trial_settings,
)
from trials.services.reading import MAX_MARKS_PER_READ, check_draft_owner, lock_draft, read_marks, serialize_mark

MAX_REASON_LENGTH = 2000


def sign_read(access: TrialAccess, read: Read) -> Read:
    """Sign: refused (400, every reason) unless complete and valid; then nothing can change."""
    check_draft_owner(access, read)
    with transaction.atomic():
        read = lock_draft(read)
        timepoints, missing = recist_timepoints(access, read)
        reasons = list(missing)
        evaluation = None
        if not missing:
            try:
                evaluation = recist.evaluate(timepoints, trial_settings(read.trial))
            except recist.RecistInputError as exc:
                reasons += list(exc.reasons)
        if evaluation is not None:
            reasons += [f"baseline: {p.lesion_id}: {p.detail}" for p in evaluation.baseline_problems]
        if reasons:
            raise BadRequest("The read cannot be signed yet.", errors=reasons)
        assert evaluation is not None
        for assessment in read_assessments(read):
            axes = assessment_axes(access, assessment)
            if axes is not None:
                Assessment.objects.filter(pk=assessment.pk).update(
                    long_axis_mm=axes.long_mm, short_axis_mm=axes.short_mm, points=axes.points,
                    sop_instance_uid=axes.sop_instance_uid, sop_class_uid=axes.sop_class_uid, frame=axes.frame)
        read.status = ReadStatus.SIGNED
        read.signed_at = timezone.now()
        read.result = recist.evaluation_to_json(evaluation)
        read.save(update_fields=["status", "signed_at", "result"])
        _settle(read.subject)
        record(Action.TRIAL_READ_SIGNED, actor=access.user, project=access.trial.project, object_type="read",
               object_id=str(read.pk), subject=read.subject.label,
               best_overall_response=read.result["best_overall_response"],
               locked=Read.objects.filter(pk=read.pk, status=ReadStatus.LOCKED).exists())
    read.refresh_from_db()
    return read


def overall_responses(read: Read) -> dict[str, str | None]:
    """Overall response per follow-up label of a signed read."""
    return {tp["label"]: tp["overall_response"] for tp in (read.result or {}).get("timepoints", [])[1:]}


def disagreements(reads: Sequence[Read]) -> list[str]:
    """Time point labels where two signed reads' overall responses differ (best overall included)."""
    if len(reads) != 2 or any(r.result is None for r in reads):
        return []
    first, second = (overall_responses(r) for r in reads)
    labels = [label for label in first if first.get(label) != second.get(label)]
    if reads[0].result["best_overall_response"] != reads[1].result["best_overall_response"]:  # type: ignore[index]
        labels.append("best overall response")
    return labels


def subject_reads(subject: Subject) -> list[Read]:
    return list(subject.reads.select_related("reader").order_by("reader_id"))


def _settle(subject: Subject) -> None:
    """Lock the subject's reads once its result is final: single read, agreement, or adjudication."""
    reads = subject_reads(subject)
    if any(not r.is_signed for r in reads):
        return
    final = (not subject.trial.double_read or not disagreements(reads)
             or Adjudication.objects.filter(subject=subject).exists())
    if final:
        Read.objects.filter(pk__in=[r.pk for r in reads]).update(status=ReadStatus.LOCKED)


def subject_state(subject: Subject) -> str:
    """``reading``, ``agreed``, ``needs_adjudication``, ``adjudicated`` (or ``done`` for a single read)."""
    reads = subject_reads(subject)
    if not reads or any(not r.is_signed for r in reads):
        return "reading"
    if not subject.trial.double_read:
        return "done"
    if Adjudication.objects.filter(subject=subject).exists():
        return "adjudicated"
    return "needs_adjudication" if disagreements(reads) else "agreed"


def adjudicate(access: TrialAccess, subject: Subject, *, read: Any, reason: Any) -> Adjudication:
    adjudicator = access.is_adjudicator
    if not rules.adjudicates(access.role, adjudicator=adjudicator):
        raise DomainError("Only the trial's adjudicators adjudicate.", code=ErrorCode.FORBIDDEN)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise BadRequest(f"reason must be 1-{MAX_REASON_LENGTH} characters.")
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        reads = subject_reads(subject)
        state = subject_state(subject)
        if not rules.may_adjudicate(access.role, adjudicator=adjudicator, state=state):
            raise Conflict("This subject is already adjudicated." if state == "adjudicated"
                           else "Only subjects whose two signed reads disagree are adjudicated.")
        chosen = next((r for r in reads if isinstance(read, int) and not isinstance(read, bool) and r.pk == read), None)
        if chosen is None:
            raise BadRequest("read must be one of the subject's two reads.")
        adjudication = Adjudication.objects.create(subject=subject, chosen_read=chosen, reason=reason.strip(),
                                                   adjudicator=access.user)
        _settle(subject)
        record(Action.TRIAL_ADJUDICATED, actor=access.user, project=access.trial.project, object_type="subject",
               object_id=str(subject.pk), label=subject.label, chosen_read=chosen.pk,
               reads=[r.pk for r in reads], reason=reason.strip()[:500])
    return adjudication


def adjudication_of(subject: Subject) -> Adjudication | None:
    """The subject's adjudication, with its adjudicator; None before one."""
    return Adjudication.objects.filter(subject=subject).select_related("adjudicator").first()


def final_read(subject: Subject) -> Read | None:
    """The read that stands for the subject: the adjudicated choice, else the agreeing first read."""
    state = subject_state(subject)
    if state == "adjudicated":
        return subject.adjudication.chosen_read
    if state in ("agreed", "done"):
        return subject_reads(subject)[0]
    return None


#: The names the adjudication calls the subject's two reads by: its first reader's (by account) is A.
SIDES = ("A", "B")


def sides(subject: Subject) -> dict[int, str]:
    """Each read of the subject's side, ``{read id: "A" | "B"}``: in the order of ``subject_reads``, so a
    read keeps its side whether or not the other is signed yet."""
    return {read.pk: side for read, side in zip(subject_reads(subject), SIDES, strict=False)}


def compare_timepoints(subject: Subject, reads: Sequence[Read]) -> list[dict[str, Any]]:
    """Per time point of the subject (baseline first), each signed read's overall response and whether
    they agree (``agree`` is None until both reads are signed, and at the baseline, which has none)."""
    results = [{tp["label"]: tp for tp in (r.result or {}).get("timepoints", [])} for r in reads]
    both = len(reads) == 2 and all(r.result is not None for r in reads)
    rows = []
    for tp in subject.timepoints.order_by("order"):
        responses = [(found.get(tp.label) or {}).get("overall_response") for found in results]
        rows.append({"id": tp.pk, "label": tp.label, "order": tp.order, "responses": responses,
                     "agree": None if not both or tp.order == 0 else responses[0] == responses[1]})
    return rows


def adjudication_view(access: TrialAccess, subject: Subject) -> dict[str, Any]:
    """Both signed reads of a subject side by side, where they differ, and the decision if any."""
    require_results(access)
    reads = [r for r in subject_reads(subject) if r.is_signed]
    decision = adjudication_of(subject)
    side = sides(subject)
    return {
        "subject": {"id": subject.pk, "label": subject.label},
        "state": subject_state(subject),
        "disagreements": disagreements(reads),
        "timepoints": compare_timepoints(subject, reads),
        "reads": [serialize_read(access, r) | {"side": side[r.pk]} for r in reads],
        "adjudication": None if decision is None else {
            "read": decision.chosen_read_id, "reason": decision.reason,
            "adjudicator": decision.adjudicator.get_username(), "created_at": decision.created_at.isoformat()},
        "can_adjudicate": rules.may_adjudicate(access.role, adjudicator=access.is_adjudicator,
                                               state=subject_state(subject)),
    }


def adjudication_marks(access: TrialAccess, subject: Subject) -> dict[str, Any]:
    """The marks of the subject's signed reads, for the adjudication on the images: each read's live
    marks (``read_marks``: on images the caller reaches through the gate) with its side, A or B. The
    reads are those the caller sees (``visible_reads``: an adjudicator the signed ones); at most
    ``MAX_MARKS_PER_READ`` a read, as a read holds."""
    require_results(access)
    side = sides(subject)
    reads = [r for r in visible_reads(access).filter(subject=subject).order_by("reader_id") if r.is_signed]
    marks = []
    for read in reads:
        for annotation, mark in read_marks(access, read)[:MAX_MARKS_PER_READ]:
            marks.append(serialize_mark(annotation, mark) | {"side": side[read.pk]})
    return {"subject": subject.pk, "reads": [{"id": r.pk, "side": side[r.pk]} for r in reads], "annotations": marks}
