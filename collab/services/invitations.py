"""Invitations: signed links that seat whoever follows them (or one named user) with a role."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core import signing
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from collab.access import SessionAccess
from collab.models import Invitation, Participant, ReadingSession, SessionRole, Status
from collab.services.seats import give_seat
from collab.services.sessions import audit_session, check_choice, check_seat_role, check_user
from crossread.errors import BadRequest, Conflict, NotFound
from viewer.access import access_project

INVITATION_SALT = "crossread.collab.invitation"
DEFAULT_INVITATION_HOURS = 72
MAX_INVITATION_HOURS = 24 * 30


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "s": invitation.session_id}, salt=INVITATION_SALT)


def invitation_payload(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.pk,
        "role": invitation.role,
        "username": invitation.username,
        "url": f"/sessions/join/{invitation_token(invitation)}",
        "expires_at": invitation.expires_at.isoformat(),
        "revoked": invitation.revoked_at is not None,
        "uses": invitation.uses,
    }


def create_invitation(access: SessionAccess, *, role: Any = SessionRole.READER, username: Any = "", hours: Any = DEFAULT_INVITATION_HOURS) -> Invitation:
    access.require_manager()
    if access.session.status == Status.CLOSED:
        raise Conflict("The session is closed.")
    role = check_choice(role, SessionRole, "role")
    if username:
        check_seat_role(access.project, check_user(username), role)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_INVITATION_HOURS:
        raise BadRequest(f"hours must be an integer from 1 to {MAX_INVITATION_HOURS}.")
    with transaction.atomic():
        invitation = Invitation.objects.create(
            session=access.session, role=role, username=username or "", created_by=access.user,
            expires_at=timezone.now() + dt.timedelta(hours=hours),
        )
        audit_session(Action.INVITATION_CREATED, access.user, access.session, invitation=invitation.pk, role=role,
               username=invitation.username, hours=hours)
    return invitation


def invitations_of(access: SessionAccess) -> list[Invitation]:
    access.require_manager()
    return list(Invitation.objects.filter(session=access.session))


def revoke_invitation(access: SessionAccess, invitation_id: Any) -> Invitation:
    access.require_manager()
    invitation = Invitation.objects.filter(session=access.session, pk=_int_or_none(invitation_id)).first()
    if invitation is None:
        raise NotFound("No such invitation.")
    if invitation.revoked_at is None:
        with transaction.atomic():
            invitation.revoked_at = timezone.now()
            invitation.save(update_fields=["revoked_at"])
            audit_session(Action.INVITATION_REVOKED, access.user, access.session, invitation=invitation.pk)
    return invitation


def check_invitation(user: Any, token: Any) -> Invitation:
    """The valid invitation behind ``token`` for ``user``; anything wrong is "not found"."""
    invalid = NotFound("This invitation link is not valid (expired, revoked or not for you).")
    try:
        data = signing.loads(str(token), salt=INVITATION_SALT)
    except signing.BadSignature:
        raise invalid from None
    invitation = Invitation.objects.select_related("session__project").filter(
        pk=_int_or_none(data.get("i")), session_id=_int_or_none(data.get("s"))
    ).first()
    if invitation is None:
        raise invalid
    if invitation.revoked_at is not None:
        raise invalid
    if invitation.expires_at <= timezone.now():
        raise invalid
    if invitation.session.status == Status.CLOSED:
        raise invalid
    if invitation.username and invitation.username != user.get_username():
        raise invalid
    try:
        access_project(user, invitation.session.project.slug)
    except NotFound:
        raise invalid from None
    return invitation


def accept_invitation(user: Any, token: Any) -> ReadingSession:
    """Seat ``user`` with the invitation's role (an existing seat keeps its role)."""
    invitation = check_invitation(user, token)
    session = invitation.session
    project_access = access_project(user, session.project.slug)
    with transaction.atomic():
        if not Participant.objects.filter(session=session, user=user).exists():
            give_seat(session, project_access, user, invitation.role, user)
        Invitation.objects.filter(pk=invitation.pk).update(uses=invitation.uses + 1)
        audit_session(Action.INVITATION_ACCEPTED, user, session, invitation=invitation.pk, role=invitation.role)
    return session


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
