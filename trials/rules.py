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
