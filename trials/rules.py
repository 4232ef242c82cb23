"""Trial blinding: who sees and writes which reads of a trial, as pure functions. No Django.

:mod:`trials.services.access` loads the facts (the caller's role in the project, whether the trial lists
them as an adjudicator; for each read, whether it is theirs and its status) and asks these rules; the
queryset of the reads a caller sees (``visible_reads``) is built from :func:`sees_read` itself.

``project_role`` is the role in the trial's project (``viewer < reader < organizer``, see
:mod:`viewer.rules`); ``None`` is somebody who is not a member, for whom the trial does not exist.
``adjudicator``: listed among the trial's adjudicators (who never read its subjects). A read's
``status`` is ``draft``, ``signed`` or ``locked`` (signed, and the subject's result final).
"""

from __future__ import annotations

from viewer.rules import has_role

DRAFT, SIGNED, LOCKED = "draft", "signed", "locked"
STATUSES = (DRAFT, SIGNED, LOCKED)

#: A subject whose two signed reads disagree, awaiting an adjudicator's choice.
NEEDS_ADJUDICATION = "needs_adjudication"


def is_signed(status: str) -> bool:
    """A read that is no longer a draft (signed or locked): nothing of it changes any more."""
    return status != DRAFT


def organizes(project_role: str | None) -> bool:
    """The project's organizers set the trial up and see every read, the dashboard and the exports."""
    return has_role(project_role, "organizer")


def adjudicates(project_role: str | None, *, adjudicator: bool) -> bool:
    """A member the trial lists as an adjudicator (whatever their role in the project)."""
    return adjudicator and has_role(project_role, "viewer")


def sees_read(project_role: str | None, *, adjudicator: bool, own: bool, status: str) -> bool:
    """The one blinding rule: may this member see a read (its lesions, measurements and table)?

    Organizers see every read; adjudicators the signed ones (no draft, not even one of their own);
    anyone else their own reads only, whatever their status (a reader demoted to viewer keeps them).
    """
    if not has_role(project_role, "viewer"):
        return False
    if organizes(project_role):
        return True
    if adjudicator:
        return is_signed(status)
    return own


def sees_results(project_role: str | None, *, adjudicator: bool) -> bool:
    """The dashboard, the agreement, the adjudication pages, the subjects' ids and states: organizers
    and adjudicators."""
    return organizes(project_role) or adjudicates(project_role, adjudicator=adjudicator)


def sees_scan_dates(project_role: str | None, *, adjudicator: bool) -> bool:
    """Scan dates: organizers and adjudicators. Readers see days from the baseline only."""
    return organizes(project_role) or adjudicates(project_role, adjudicator=adjudicator)


def sees_subject(project_role: str | None, *, adjudicator: bool) -> bool:
    """A subject by its id: organizers and adjudicators (readers reach theirs through their reads)."""
    return organizes(project_role) or adjudicates(project_role, adjudicator=adjudicator)


def decide_write(project_role: str | None, *, own: bool, status: str) -> str | None:
    """May a read change (its lesions, assessments, signing)? ``None`` when it may, else the refusal:
    ``forbidden`` for a read of somebody else's, or for its reader when they no longer hold the reader
    role in the project (an organizer demoted them to viewer: they still see their reads, but their
    reading is over); ``signed`` for one signed already. Only the reader of a draft writes it; the read
    must also be one they see (:func:`sees_read`)."""
    if not own or not has_role(project_role, "reader"):
        return "forbidden"
    if is_signed(status):
        return "signed"
    return None


def may_adjudicate(project_role: str | None, *, adjudicator: bool, state: str) -> bool:
    """Adjudicators choose a read of a subject whose two signed reads disagree, once."""
    return adjudicates(project_role, adjudicator=adjudicator) and state == NEEDS_ADJUDICATION


# --------------------------------------------------------------------------------------------
# Which marks measure a lesion
# --------------------------------------------------------------------------------------------

BIDIRECTIONAL, LENGTH, POINT = "bidirectional", "length", "point"
#: The kinds a read's mark may be.
MARK_KINDS = (BIDIRECTIONAL, LENGTH, POINT)
TARGET, NON_TARGET, NEW = "target", "non_target", "new"


def measuring_kinds(role: str, *, nodal: bool, targets_by_length: bool) -> tuple[str, ...]:
    """The kinds of mark that are a lesion's measurement (its RECIST diameter), in the order offered.

    A bidirectional always measures a target or a new lesion (long and short axis). RECIST 1.1 measures a
    non-nodal lesion by its longest diameter (§3.1.1), so a trial that allows it (``targets_by_length``)
    also takes a length, the long axis alone, for a non-nodal target and a non-nodal new lesion. A lymph
    node is measured by its short axis: the bidirectional only, whatever the trial. Non-targets are not
    measured (a mark says where they are): none.
    """
    if role == NON_TARGET:
        return ()
    if targets_by_length and not nodal:
        return (BIDIRECTIONAL, LENGTH)
    return (BIDIRECTIONAL,)


def mark_refusal(role: str, *, nodal: bool, targets_by_length: bool, kind: str, baseline: bool) -> str | None:
    """Why a mark of ``kind`` cannot be a lesion's at a time point (``baseline``: the first), in words;
    ``None`` when it can. A target's mark must be its measurement (:func:`measuring_kinds`); a new
    lesion's may be any kind (one that does not measure it says where it is), but never at baseline; a
    non-target's any kind (where it is)."""
    if role == NEW and baseline:
        return "New lesions are recorded at follow-ups only."
    if role != TARGET or kind in measuring_kinds(role, nodal=nodal, targets_by_length=targets_by_length):
        return None
    if nodal:
        return ("A lymph node target is measured with the bidirectional tool: its RECIST diameter is the "
                "short axis.")
    if targets_by_length:
        return "A target is measured with the bidirectional or the length tool."
    if kind == LENGTH:
        return ("This trial measures targets with the bidirectional tool (long and short axis), not with a "
                "length.")
    return "A target is measured with the bidirectional tool (long and short axis)."
