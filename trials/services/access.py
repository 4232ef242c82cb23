"""Who reaches what in a trial: the facts loaded here, the decisions the pure rules of :mod:`trials.rules`.

Who may do what (``trials.rules``, tested as a matrix in ``tests/test_gate.py``)
-------------------------------------------------------------------------------
- **Organizers** (project role) set the trial up, see every read, the dashboard and the exports.
- **Readers** see their own reads only, with dates relative to the baseline (never the scan
  dates), in their own random order. They write only their own draft reads (``decide_write``).
- **Adjudicators** (listed on the trial; never readers of it) see signed reads and choose one
  read of each subject whose two reads disagree, with a reason (``may_adjudicate``). They see no draft.
- Anyone else: "not found".

Which reads a caller sees is ``trials.rules.sees_read``; :func:`visible_reads` is its ORM expression
(the filter built by asking the rule), and every read is reached through it (:func:`access_read`).
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, Q, QuerySet

from crossread.errors import DomainError, ErrorCode, NotFound
from trials import rules
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
    def role(self) -> str:
        """The caller's role in the trial's project."""
        return self.project_access.role

    @property
    def is_organizer(self) -> bool:
        return rules.organizes(self.role)

    @cached_property
    def is_adjudicator(self) -> bool:
        """Listed among the trial's adjudicators: a fact read once per access (a request)."""
        return self.trial.adjudicators.filter(pk=self.user.pk).exists()

    @property
    def sees_dates(self) -> bool:
        """Readers see days from baseline only; organizers and adjudicators see scan dates."""
        return rules.sees_scan_dates(self.role, adjudicator=self.is_adjudicator)

    @property
    def sees_results(self) -> bool:
        """Dashboard, agreement and exports: organizers and adjudicators."""
        return rules.sees_results(self.role, adjudicator=self.is_adjudicator)


def access_trial(user: User, slug: str) -> TrialAccess:
    """The project's trial for any member of the project; "not found" for anyone else."""
    project_access = access_project(user, slug, minimum=Role.VIEWER)
    trial = Trial.objects.filter(project=project_access.project).first()
    if trial is None:
        raise NotFound("This project has no trial.")
    return TrialAccess(project_access, trial, user)


def visible_reads(access: TrialAccess) -> QuerySet[Read]:
    """The reads ``trials.rules.sees_read`` admits, as one queryset: the rule is asked for each case
    of the caller's (a read of their own or another's, in each status) and the filter admits those."""
    reads = Read.objects.filter(trial=access.trial).select_related("subject", "reader")
    adjudicator = access.is_adjudicator
    admitted, every_case = [], True
    for own in (True, False):
        whose = Q(reader=access.user) if own else ~Q(reader=access.user)
        statuses = [status for status in ReadStatus.values
                    if rules.sees_read(access.role, adjudicator=adjudicator, own=own, status=status)]
        if len(statuses) == len(ReadStatus.values):
            admitted.append(whose)
        else:
            every_case = False
            if statuses:
                admitted.append(whose & Q(status__in=statuses))
    if every_case:
        return reads  # an organizer's: no condition to write
    if not admitted:
        return reads.none()
    return reads.filter(functools.reduce(operator.or_, admitted))


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
    if not rules.sees_subject(access.role, adjudicator=access.is_adjudicator):
        raise NotFound("No such subject.")
    return row_by_key(Subject.objects.filter(trial=access.trial), subject_id, NotFound("No such subject."))


def require_organizer(access: TrialAccess) -> None:
    if not access.is_organizer:
        raise DomainError("This needs the organizer role in the project.", code=ErrorCode.FORBIDDEN)


def require_results(access: TrialAccess) -> None:
    if not access.sees_results:
        raise DomainError("Only organizers and adjudicators see trial results.", code=ErrorCode.FORBIDDEN)
