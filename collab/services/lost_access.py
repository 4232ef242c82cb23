"""Lost access reaches open connections at once.

However a seat, a membership or an account is taken away (these services, the admin, a script), the
ORM sends these signals and the session's hubs close the user's connections when the change commits.
The hubs also re-check every connected seat at least once a second (``SessionHub.verify``), which
covers changes made outside the ORM. The receivers are connected when ``collab.services`` is imported
(``collab.apps``).

A seat or a session saved or deleted also sends the one :data:`viewer.grants.access_changed` (as
memberships, projects, tokens and users do there), which empties this process's memory of granted
decisions: no live write goes on using a grant read before the change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from collab import events
from collab.models import Participant, ReadingSession
from crossread.errors import ErrorCode
from viewer.grants import access_changed
from viewer.models import Membership


def _revoke(session_ids: Iterable[int], user_id: int, code: ErrorCode) -> None:
    username = get_user_model().objects.filter(pk=user_id).values_list(get_user_model().USERNAME_FIELD, flat=True).first()
    if username is None:
        return
    for session_id in set(session_ids):
        events.broadcast(session_id, events.hub_message("revoke", user=username, code=str(code)))


def _seated_sessions(user_id: int, **where: Any) -> list[int]:
    return list(Participant.objects.filter(user_id=user_id, **where).values_list("session_id", flat=True))


@receiver(post_delete, sender=Participant, dispatch_uid="collab.seat_deleted")
def _on_seat_deleted(sender: Any, instance: Participant, **kwargs: Any) -> None:
    _revoke([instance.session_id], instance.user_id, ErrorCode.FORBIDDEN)


@receiver(post_delete, sender=Membership, dispatch_uid="collab.membership_deleted")
def _on_membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    _revoke(_seated_sessions(instance.user_id, session__project_id=instance.project_id), instance.user_id,
            ErrorCode.NOT_FOUND)


@receiver(post_save, sender=Membership, dispatch_uid="collab.membership_saved")
def _on_membership_saved(sender: Any, instance: Membership, created: bool, **kwargs: Any) -> None:
    if created:
        return
    # The project role decides whether the seat organizes and may annotate: a fresh snapshot.
    username = instance.user.get_username()
    for session_id in set(_seated_sessions(instance.user_id, session__project_id=instance.project_id)):
        events.broadcast(session_id, events.hub_message("seat", user=username))


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="collab.user_saved")
def _on_user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created and not instance.is_active:
        _revoke(_seated_sessions(instance.pk), instance.pk, ErrorCode.NOT_AUTHENTICATED)


def _access_changed(sender: Any, **kwargs: Any) -> None:
    access_changed.send(sender=sender)


for _model in (Participant, ReadingSession):
    post_save.connect(_access_changed, sender=_model, dispatch_uid=f"collab.access-changed-save-{_model.__name__}")
    post_delete.connect(_access_changed, sender=_model, dispatch_uid=f"collab.access-changed-delete-{_model.__name__}")
