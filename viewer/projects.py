"""Actions on projects and memberships: every write goes through here (REST, commands, pages)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from audit.models import Action
from audit.services import record
from crossread.errors import BadRequest, DomainError, ErrorCode, NotFound
from viewer import deid
from viewer.access import ProjectAccess
from viewer.ingest import discard_unreferenced
from viewer.models import Membership, Project, Role


def check_deidentification(value: Any) -> dict[str, Any] | None:
    """A project's de-identification setting: null, or a valid PS3.15 profile (normalised)."""
    if value is None:
        return None
    try:
        profile = deid.Profile.from_json(value)
    except ValueError as exc:
        raise BadRequest(f"Invalid de-identification setting: {exc}.") from None
    return {"profile": "basic", "options": sorted(option.value for option in profile.options)}


@transaction.atomic
def create_project(creator: Any, *, slug: str, name: str, description: str = "", deidentification: Any = None) -> Project:
    if not creator.is_staff:
        raise DomainError("Only staff users create projects.", code=ErrorCode.FORBIDDEN)
    if Project.objects.filter(slug=slug).exists():
        raise DomainError("A project with this slug exists.", code=ErrorCode.CONFLICT)
    project = Project.objects.create(
        slug=slug, name=name, description=description, deidentification=check_deidentification(deidentification)
    )
    Membership.objects.create(project=project, user=creator, role=Role.ORGANIZER)
    return project


def update_project(access: ProjectAccess, changes: dict[str, Any]) -> Project:
    """Change name, description, de-identification (for files ingested from now on) or link keeping."""
    if not access.can(Role.ORGANIZER):
        raise DomainError("Only organizers change a project.", code=ErrorCode.FORBIDDEN)
    project = access.project
    for field in ("name", "description", "keep_pseudonym_links"):
        if field in changes:
            setattr(project, field, changes[field])
    if "deidentification" in changes:
        project.deidentification = check_deidentification(changes["deidentification"])
    project.save()
    return project


def set_membership(access: ProjectAccess, *, username: str, role: str) -> Membership:
    if not access.can(Role.ORGANIZER):
        raise DomainError("Only organizers manage members.", code=ErrorCode.FORBIDDEN)
    if role not in Role.values:
        raise BadRequest(f"Unknown role {role!r}; use one of {', '.join(Role.values)}.")
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound("No such user.")
    membership, _ = Membership.objects.update_or_create(project=access.project, user=user, defaults={"role": role})
    record(
        Action.MEMBERSHIP_CHANGED, actor=access.membership.user, project=access.project,
        object_type="user", object_id=username, role=role,
    )
    return membership


def remove_membership(access: ProjectAccess, *, username: str) -> None:
    if not access.can(Role.ORGANIZER):
        raise DomainError("Only organizers manage members.", code=ErrorCode.FORBIDDEN)
    if username == access.membership.user.get_username():
        raise BadRequest("Organizers cannot remove themselves; ask another organizer.")
    deleted, _ = Membership.objects.filter(project=access.project, user__username=username).delete()
    if not deleted:
        raise NotFound("No such member.")
    record(
        Action.MEMBERSHIP_CHANGED, actor=access.membership.user, project=access.project,
        object_type="user", object_id=username, role=None,
    )


def decide_quarantine(access: ProjectAccess, sop_instance_uid: str, *, decision: str, reason: str) -> None:
    """An organizer releases a quarantined instance to readers, or rejects it (removed from the archive)."""
    if not access.can(Role.ORGANIZER):
        raise DomainError("Only organizers review quarantined images.", code=ErrorCode.FORBIDDEN)
    if decision not in ("release", "reject"):
        raise BadRequest("decision must be release or reject.")
    if not reason.strip():
        raise BadRequest("Give a reason for the decision.")
    with transaction.atomic():
        instance = access.instances().select_for_update().filter(
            sop_instance_uid=sop_instance_uid, quarantined=True
        ).first()
        if instance is None:
            raise NotFound("No such quarantined instance.")
        if decision == "release":
            instance.quarantined = False
            instance.save(update_fields=["quarantined"])
        else:
            digest = instance.sha256
            instance.delete()
            transaction.on_commit(lambda: discard_unreferenced(access.project, digest))
        record(
            Action.QUARANTINE_DECISION, actor=access.membership.user, project=access.project,
            object_type="instance", object_id=sop_instance_uid, decision=decision, reason=reason[:500],
        )
