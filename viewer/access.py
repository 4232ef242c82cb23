"""Access functions: the one place that decides whether a user may reach a project or study.

Every page, REST view, DICOMweb endpoint and websocket calls these. Anything a user may not see
answers "not found", so the existence of other projects' data does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from crossread.errors import DomainError, ErrorCode, NotAuthenticated, NotFound
from viewer.models import Membership, Project, Role, Study


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    membership: Membership

    @property
    def role(self) -> str:
        return self.membership.role

    def can(self, minimum: str) -> bool:
        return self.membership.has_role(minimum)

    @property
    def sees_quarantine(self) -> bool:
        """Quarantined instances (possible burned-in text) are shown to organizers only."""
        return self.can(Role.ORGANIZER)


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


def access_study(access: ProjectAccess, study_instance_uid: str) -> Study:
    study = Study.objects.filter(project=access.project, study_instance_uid=study_instance_uid).first()
    if study is None:
        raise NotFound("No such study.")
    return study
