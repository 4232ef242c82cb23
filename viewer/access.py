"""The access gate: the one place that decides who reaches a project and its studies, series and
instances.

Every page, REST view, DICOMweb endpoint, rendered image and websocket starts from
:func:`access_project`, which loads the facts once (the caller's membership and role), and reaches
the archive's rows only through the :class:`ProjectAccess` it returns: :meth:`~ProjectAccess.instances`,
:meth:`~ProjectAccess.instance`, :meth:`~ProjectAccess.studies`, :meth:`~ProjectAccess.study` and
:meth:`~ProjectAccess.series`. The decisions themselves are the pure rules of :mod:`viewer.rules`
(quarantine: :func:`~viewer.rules.sees_instance`). ``tests/test_gate.py`` fails when a module outside
the gate queries ``Study``, ``Series`` or ``Instance`` for a caller.

Anything a user may not see answers "not found", exactly as what does not exist, so the existence of
other projects' data and of quarantined images does not leak.

Blinded readers (:mod:`viewer.blinding`): apps that blind readers (``trials``) register a loader of
the facts (:func:`register_blinding`); the gate asks it once per access, hides those studies from
listings, lets the member reach the ones they read, and masks what is said of them
(:meth:`ProjectAccess.masked`).
"""

from __future__ import annotations

from collections.abc import Callable
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, QuerySet

from crossread.errors import DomainError, ErrorCode, NotAuthenticated, NotFound
from viewer import rules
from viewer.blinding import Blinding, Mask, mask_metadata, serves_files
from viewer.models import Instance, Membership, Project, Role, Series, Study


@dataclass(frozen=True)
class ProjectAccess:
    """A member's access to one project: the facts, and the only way to the project's rows."""

    project: Project
    membership: Membership
    #: ``[(when, answer)]``: when :attr:`hides_quarantine` last asked the database, and its answer.
    _quarantine_asked: list[tuple[float, bool]] = field(default_factory=list, compare=False, repr=False)

    @property
    def role(self) -> str:
        return self.membership.role

    def can(self, minimum: str) -> bool:
        return rules.has_role(self.role, minimum)

    @property
    def sees_quarantine(self) -> bool:
        """Quarantined instances (possible burned-in text) are shown to organizers only."""
        return rules.sees_quarantine(self.role)

    @property
    def hides_quarantine(self) -> bool:
        """Whether studies and series must be checked for visible instances: only when the project
        holds quarantined instances (most hold none, and then no listing pays for the check). Asked
        at most once a second per access (one lookup in the (project, quarantined) index): a request
        asks once, and an access that outlives a request (a session's socket) learns of an image
        quarantined since within a second (its images are hidden at once: :meth:`instances`)."""
        if self.sees_quarantine:
            return False
        now = time.monotonic()
        if not self._quarantine_asked or now - self._quarantine_asked[0][0] >= 1.0:
            self._quarantine_asked[:] = [(now, Instance.objects.filter(project=self.project, quarantined=True).exists())]
        return self._quarantine_asked[0][1]

    def sees(self, instance: Instance) -> bool:
        """May this member reach ``instance`` (a row of this project already read)?"""
        return (
            instance.project_id == self.project.pk
            and rules.sees_instance(self.role, quarantined=instance.quarantined)
            and (self.blinding is None or self.blinding.reaches(instance.series.study_id))
        )

    # ----------------------------------------------------------------------------- blinding

    @cached_property
    def blinding(self) -> Blinding | None:
        """The member's blinding (:mod:`viewer.blinding`), loaded once per access; ``None`` for most."""
        user_id = self.membership.user_id
        if user_id is None or rules.has_role(self.role, "organizer"):
            return None
        found = [b for loader in _BLINDING_LOADERS if (b := loader(self.project, user_id)) is not None]
        if not found:
            return None
        masks: dict[int, Mask] = {}
        for blinding in found:
            masks.update(blinding.masks)
        return Blinding(frozenset().union(*(b.hidden for b in found)), masks)

    @cached_property
    def _unreachable_series(self) -> frozenset[int]:
        blinding = self.blinding
        if blinding is None or not blinding.unreachable:
            return frozenset()
        return frozenset(Series.objects.filter(study_id__in=blinding.unreachable).values_list("pk", flat=True))

    def reaches_series(self, series_id: int) -> bool:
        """May the member reach images of the series (for memory that does not know the member)?"""
        return series_id not in self._unreachable_series

    def masked(self, metadata: dict[str, Any], study_id: int) -> dict[str, Any]:
        """DICOM JSON of the study ``study_id`` as this member may read it."""
        mask = self.blinding.mask(study_id) if self.blinding is not None else None
        return metadata if mask is None else mask_metadata(metadata, mask)

    def mask(self, study_id: int) -> Mask | None:
        return self.blinding.mask(study_id) if self.blinding is not None else None

    def serves_files(self, study_id: int) -> bool:
        """May the stored files of the study be handed out as they are (not to a blinded reader)?"""
        return serves_files(self.blinding, study_id)

    def unlisted(self) -> frozenset[int]:
        """Ids of studies no listing shows this member (they may still reach some by UID)."""
        return self.blinding.hidden if self.blinding is not None else frozenset()

    # ----------------------------------------------------------------------------- the rows

    def rows_key(self) -> tuple[Any, ...]:
        """What the querysets below depend on besides the project's rows: two accesses with equal keys
        build the same SQL with the same parameters from them. Searches compiled once per shape
        (:mod:`crossread.compiled`, :func:`viewer.dicomweb.qido.search`) are kept under this key, so a
        condition added to those querysets must add what it depends on here
        (``tests/viewer/test_compiled_searches.py`` compares the SQL of accesses of every kind)."""
        blinding = self.blinding
        hidden = (blinding.hidden, blinding.unreachable) if blinding is not None else None
        return (self.project.pk, self.sees_quarantine, self.hides_quarantine, hidden)

    def instances(self) -> QuerySet[Instance]:
        """The project's instances this member may reach."""
        queryset = Instance.objects.filter(project=self.project)
        if self.blinding is not None and self.blinding.unreachable:
            queryset = queryset.exclude(series__study_id__in=self.blinding.unreachable)
        return queryset if self.sees_quarantine else queryset.filter(quarantined=False)

    def series(self) -> QuerySet[Series]:
        """The project's series holding at least one instance this member may reach (or none yet)."""
        queryset = Series.objects.filter(project=self.project)
        if self.blinding is not None and self.blinding.unreachable:
            queryset = queryset.exclude(study_id__in=self.blinding.unreachable)
        if self.hides_quarantine:  # a series whose every instance is held is hidden with them
            queryset = queryset.filter(Exists(Instance.objects.filter(series=OuterRef("pk"), quarantined=False)))
        return queryset

    def studies(self, *, listed: bool = True) -> QuerySet[Study]:
        """The project's studies holding at least one instance this member may reach; ``listed``: only
        those a listing may show (a blinded reader reaches the studies they read, unlisted)."""
        queryset = Study.objects.filter(project=self.project)
        if self.blinding is not None:
            queryset = queryset.exclude(pk__in=self.blinding.hidden if listed else self.blinding.unreachable)
        if self.hides_quarantine:
            queryset = queryset.filter(
                Exists(Instance.objects.filter(series__study=OuterRef("pk"), quarantined=False))
            )
        return queryset

    def study(self, study_instance_uid: object) -> Study:
        """The study ``study_instance_uid``, or "not found"."""
        found = self.studies(listed=False).filter(study_instance_uid=_uid(study_instance_uid, "study")).first()
        if found is None:
            raise NotFound("No such study.")
        return found

    def instances_in(self, *, study: str = "", series: str = "") -> QuerySet[Instance]:
        """:meth:`instances`, narrowed to the study and series with these UIDs when given."""
        queryset = self.instances()
        # Each UID with its project: the (project, UID) unique indexes serve the lookup.
        if series:
            queryset = queryset.filter(series__series_instance_uid=series, series__project=self.project)
        if study:
            queryset = queryset.filter(series__study__study_instance_uid=study, series__study__project=self.project)
        return queryset

    def instance(self, sop_instance_uid: object, *, study: str = "", series: str = "") -> Instance:
        """The instance ``sop_instance_uid`` with its series and study (checked to be in ``study`` and
        ``series`` when given), or "not found": unknown and hidden instances answer alike."""
        uid = _uid(sop_instance_uid, "instance")
        found = self.instances_in(study=study, series=series).select_related("series__study").filter(
            sop_instance_uid=uid).first()
        if found is None:
            raise NotFound("No such instance.")
        return found


#: Loaders of blinding facts: ``loader(project, user_id)`` gives the member's :class:`Blinding` in the
#: project, or ``None``. Registered by the apps that blind readers (``trials.apps``).
BlindingLoader = Callable[[Project, int], Blinding | None]
_BLINDING_LOADERS: list[BlindingLoader] = []


def register_blinding(loader: BlindingLoader) -> None:
    if loader not in _BLINDING_LOADERS:
        _BLINDING_LOADERS.append(loader)


#: At most this many held UIDs are kept per project by :func:`held_instance_uids` (quarantine is rare;
#: past this, the set is cut and the hubs treat every instance they do not know as held).
MAX_HELD_UIDS = 100_000


def held_instance_uids(project_id: int) -> frozenset[str] | None:
    """The SOP Instance UIDs of the project held in quarantine and the Series Instance UIDs of their
    series (UIDs are unique, so one set holds both), or ``None`` when there are more than
    :data:`MAX_HELD_UIDS`. A reading session's hub keeps cursors, viewports and drafts on these from
    everyone but the project's organizers, as the images themselves (``rules.sees_instance``): an entry
    on a reformatted plane names its series, and a series holding a held image counts as held."""
    rows = (Instance.objects.filter(project_id=project_id, quarantined=True)
            .values_list("sop_instance_uid", "series__series_instance_uid")[: MAX_HELD_UIDS + 1])
    found = frozenset(uid for row in rows for uid in row)
    return None if len(found) > MAX_HELD_UIDS else found


def _uid(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise NotFound(f"No such {what}.")
    return value


def access_project(
    user: AbstractBaseUser | AnonymousUser, slug: str, *, minimum: str = Role.VIEWER
) -> ProjectAccess:
    if not user.is_authenticated:
        raise NotAuthenticated("Authentication credentials were not provided.")
    membership = (
        Membership.objects.select_related("project").filter(project__slug=slug, user=user).first()
    )
    if membership is None:
        raise NotFound("No such project.")
    if not membership.has_role(minimum):
        # A member without the role knows that the project exists, so 403 is honest here.
        raise DomainError(f"This needs the {minimum} role in the project.", code=ErrorCode.FORBIDDEN)
    return ProjectAccess(project=membership.project, membership=membership)


def access_node(project: Project, kind: str, *, minimum: str = Role.VIEWER) -> ProjectAccess:
    """The access of a remote DICOM node (DIMSE: C-FIND, C-GET, C-MOVE) of ``kind`` to ``project``.

    A node is not a user: it was identified by its AE title and address (``viewer.dimse.nodes``), and
    acts with the fixed role :func:`viewer.rules.node_role` gives its kind, as a member without
    blinding. The role stands in for a membership that is never saved.
    """
    role = rules.node_role(kind)
    if role is None or not rules.has_role(role, minimum):
        raise DomainError("This DICOM node may not read the project.", code=ErrorCode.FORBIDDEN)
    return ProjectAccess(project=project, membership=Membership(project=project, role=role))
