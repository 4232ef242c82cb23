"""Reading sessions: a project's cases read together, their participants, invitations and live connections.

A :class:`ReadingSession` belongs to one :class:`viewer.models.Project`; its cases are an ordered list of
the project's studies. Participants are project members with a session role. Who sees what is decided by
:mod:`collab.visibility` (pure) and who reaches what by :func:`collab.access.access_session`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from viewer.models import Project, Study


class Mode(models.TextChoices):
    OPEN = "open", "Open"
    BLINDED = "blinded", "Blinded"


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    CLOSED = "closed", "Closed"


class SessionRole(models.TextChoices):
    PRESENTER = "presenter", "Presenter"
    READER = "reader", "Reader"
    ADJUDICATOR = "adjudicator", "Adjudicator"
    OBSERVER = "observer", "Observer"


#: Distinct, readable on a dark image; a participant keeps its colour for the whole session.
PALETTE = (
    "#f5c542", "#4dd0e1", "#ef5350", "#66bb6a", "#ab47bc", "#ff7043",
    "#29b6f6", "#d4e157", "#ec407a", "#8d6e63", "#26a69a", "#7e57c2",
)


class ReadingSession(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reading_sessions")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    organizer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="organized_sessions")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.OPEN)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    #: Whether a blinded session allows voice and video (an open session always does): the organizer's
    #: choice, off by default (docs/collaboration.md, "Talking while reading").
    voice_when_blinded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def voice(self) -> bool:
        """May the participants talk (WebRTC) in this session's mode?"""
        return self.mode != Mode.BLINDED or self.voice_when_blinded

    def __str__(self) -> str:
        return f"{self.title} ({self.project.slug})"


class SessionCase(models.Model):
    """One case of a session: a study of the session's project, at a position in the reading order."""

    session = models.ForeignKey(ReadingSession, on_delete=models.CASCADE, related_name="cases")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "study"], name="case_once_per_session"),
            models.UniqueConstraint(fields=["session", "position"], name="case_position_unique"),
        ]


class Participant(models.Model):
    session = models.ForeignKey(ReadingSession, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="session_seats")
    role = models.CharField(max_length=16, choices=SessionRole.choices)
    colour = models.CharField(max_length=7)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [models.UniqueConstraint(fields=["session", "user"], name="one_seat_per_user")]


class Invitation(models.Model):
    """A signed, expiring, revocable link that seats a project member in a session with a role.

    The link carries a signature of the row's id (``django.core.signing``); the row says whether it is
    still valid, so revoking is a write and expiry a comparison. ``username`` restricts it to one member.
    """

    session = models.ForeignKey(ReadingSession, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=16, choices=SessionRole.choices)
    username = models.CharField(max_length=150, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]


class Connection(models.Model):
    """One open websocket. Presence is "has a connection seen in the last minute or two".

    Rows are written at connect, deleted at disconnect and refreshed by the process's hub, so a process
    that dies leaves rows that stop counting as online once ``seen_at`` is old.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    session = models.ForeignKey(ReadingSession, on_delete=models.CASCADE, related_name="connections")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField()
    #: In the session's call (voice, and video when ``video``): the roster every participant is sent.
    in_call = models.BooleanField(default=False)
    video = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["session", "seen_at"])]


class ChatMessage(models.Model):
    """A text message of the session's chat: its author, time and text, and optionally the view the
    author was looking at ("look here": a case's study, series, instance, frame, window, point).
    Who reads it is :func:`collab.visibility.may_see` with ``What.CHAT``."""

    session = models.ForeignKey(ReadingSession, on_delete=models.CASCADE, related_name="chat")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    text = models.TextField()
    view = models.JSONField(null=True, blank=True)
    #: The sender's ``ref``: the same ref from the same author again is the same message.
    client_ref = models.CharField(max_length=64)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["session", "created_at"])]
        constraints = [models.UniqueConstraint(fields=["session", "author", "client_ref"], name="chat_ref_once")]
