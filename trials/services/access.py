"""Who reaches what in a trial, and the one blinding rule.

Who may do what
---------------
- **Organizers** (project role) set the trial up, see every read, the dashboard and the exports.
- **Readers** see their own reads only, with dates relative to the baseline (never the scan
  dates), in their own random order. They write only their own draft reads.
- **Adjudicators** (listed on the trial; never readers of it) see signed reads and choose one
  read of each subject whose two reads disagree, with a reason. They see no draft.
- Anyone else: "not found". Blinding lives in :func:`visible_reads` and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, QuerySet

from crossread.errors import DomainError, ErrorCode, NotFound
from trials.models import Read, ReadStatus, Subject, Trial
from viewer.access import ProjectAccess, access_project
from viewer.models import Role

User = AbstractBaseUser | AnonymousUser
Row = TypeVar("Row", bound=Model)


@dataclass(frozen=True)
class TrialAccess:
    project_access: ProjectAccess
    trial: Trial
    user: Any

    @property
    def is_organizer(self) -> bool:
        return self.project_access.can(Role.ORGANIZER)

    @property
    def is_adjudicator(self) -> bool:
        return self.trial.adjudicators.filter(pk=self.user.pk).exists()

    @property
    def sees_dates(self) -> bool:
        """Readers see days from baseline only; organizers and adjudicators see scan dates."""
        return self.is_organizer or self.is_adjudicator

    @property
    def sees_results(self) -> bool:
        """Dashboard, agreement and exports: organizers and adjudicators."""
        return self.is_organizer or self.is_adjudicator


def access_trial(user: User, slug: str) -> TrialAccess:
    """The project's trial for any member of the project; "not found" for anyone else."""
    project_access = access_project(user, slug, minimum=Role.VIEWER)
    trial = Trial.objects.filter(project=project_access.project).first()
    if trial is None:
        raise NotFound("This project has no trial.")
    return TrialAccess(project_access, trial, user)


def visible_reads(access: TrialAccess) -> QuerySet[Read]:
    """The one blinding rule: organizers see all reads, adjudicators the signed ones, readers their own."""
    reads = Read.objects.filter(trial=access.trial).select_related("subject", "reader")
    if access.is_organizer:
        return reads
    if access.is_adjudicator:
        return reads.exclude(status=ReadStatus.DRAFT)
    return reads.filter(reader=access.user)


def row_by_key(rows: QuerySet[Row], key: Any, refusal: DomainError) -> Row:
    """The row of ``rows`` whose primary key is ``key`` (a number, or text of one); else ``refusal``,
    for a key that is no number as for one that names no row of ``rows``."""
    try:
        pk = int(key)
    except (TypeError, ValueError):
        raise refusal from None
    row = rows.filter(pk=pk).first()
    if row is None:
        raise refusal
    return row


def access_read(access: TrialAccess, read_id: Any) -> Read:
    return row_by_key(visible_reads(access), read_id, NotFound("No such read."))


def access_subject(access: TrialAccess, subject_id: Any) -> Subject:
    """Subjects are reachable by organizers and adjudicators (readers reach them through reads)."""
    if not access.sees_results:
        raise NotFound("No such subject.")
    return row_by_key(Subject.objects.filter(trial=access.trial), subject_id, NotFound("No such subject."))


def require_organizer(access: TrialAccess) -> None:
    if not access.is_organizer:
        raise DomainError("This needs the organizer role in the project.", code=ErrorCode.FORBIDDEN)


def require_results(access: TrialAccess) -> None:
    if not access.sees_results:
        raise DomainError("Only organizers and adjudicators see trial results.", code=ErrorCode.FORBIDDEN)
