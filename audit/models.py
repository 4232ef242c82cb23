"""The append-only audit trail: who did what to which object, when, from where, with what outcome.

Rows are written by :func:`audit.services.record` and never changed or deleted through the app:
``save`` refuses an update, ``delete`` and the queryset's ``update``/``delete`` refuse to run.
Values are identifiers (usernames, UIDs, ids), never patient names or IDs.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGOUT = "logout"
    STUDY_OPENED = "study.opened"
    SERIES_VIEWED = "series.viewed"
    DOWNLOAD = "download"
    UPLOAD = "upload"
    EXPORT = "export"
    ANNOTATION_CREATED = "annotation.created"
    ANNOTATION_CHANGED = "annotation.changed"
    ANNOTATION_DELETED = "annotation.deleted"
    MEMBERSHIP_CHANGED = "membership.changed"
    SESSION_JOINED = "session.joined"
    SESSION_LEFT = "session.left"
    SESSION_CREATED = "session.created"
    SESSION_CHANGED = "session.changed"
    SESSION_CLOSED = "session.closed"
    SESSION_SEATED = "session.seated"
    SESSION_UNSEATED = "session.unseated"
    CALL_JOINED = "session.call.joined"
    CALL_LEFT = "session.call.left"
    INVITATION_CREATED = "session.invitation.created"
    INVITATION_REVOKED = "session.invitation.revoked"
    INVITATION_ACCEPTED = "session.invitation.accepted"
    DEIDENTIFIED = "deidentification.applied"
    QUARANTINE_DECISION = "quarantine.decision"
    ACCESS_DENIED = "access.denied"
    AUDIT_EXPORTED = "audit.exported"
    # trials: the acts a RECIST read's validity rests on (who set the trial up, who read, signed, decided)
    TRIAL_CREATED = "trial.created"
    TRIAL_SUBJECT_ADDED = "trial.subject_added"
    TRIAL_READERS_ASSIGNED = "trial.readers_assigned"
    TRIAL_READ_SIGNED = "trial.read_signed"
    TRIAL_ADJUDICATED = "trial.adjudicated"


class Outcome(models.TextChoices):
    SUCCESS = "success"
    FAILURE = "failure"


class AppendOnly(Exception):
    pass


class AuditQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnly("Audit events cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnly("Audit events cannot be deleted.")


class AuditEvent(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    #: The username at the time (kept if the user is renamed or removed; an attempted name for failed logins).
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    #: The project's slug (not a foreign key: the trail outlives the project).
    project = models.CharField(max_length=64, blank=True, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=200, blank=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["project", "at"])]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnly("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnly("Audit events cannot be deleted.")
