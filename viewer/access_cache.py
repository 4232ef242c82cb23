"""A short-lived, in-process memory of access decisions, for the rendered-image hot path.

Scrolling a stack sends one request per slice, 50-150 a second per reader. Deciding access for each
(authenticate the token or session, then read the membership) is two or three queries and a
thread hop, which cost more than sending a cached frame. :data:`RECENT_ACCESS` remembers, for a
second, that the credentials a request presented reached a project with a given role, so that the
next requests within that second are answered without the database.

Why this is safe:

- The key is everything authentication reads for a GET: the whole ``Authorization`` header and
  the session cookie, plus the project slug. Requests with other credentials miss. Only
  successful decisions are kept; refusals always take the full path (and are audited there).
- An entry lives at most :data:`TTL_SECONDS` (``CROSSREAD["ACCESS_CACHE_SECONDS"]``, default 1 s):
  that is the bound on how long a removed member, a deleted token, a deactivated user or an
  expired session keeps reaching images served by *another* process.
- In this process, every change that can revoke access clears the memory at once (signals below):
  a membership saved or deleted, a project saved or deleted, a token deleted or saved, a user
  saved (deactivated, password changed), a session deleted, a logout. Writes that send no signal
  (``QuerySet.update``) are bounded by the TTL.
- A decision computed before a revocation is not stored after it: :meth:`RecentAccess.remember`
  takes the generation read before the check and drops the entry if the memory was cleared since.
- Only the GET image views use it, which all need the viewer role (the lowest); the role is kept
  so a caller can still check :meth:`ProjectAccess.can`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.models import Session
from django.db.models.signals import post_delete, post_save
from rest_framework.authtoken.models import Token

from crossread.conf import option
from viewer.access import ProjectAccess
from viewer.models import Membership, Project

Key = tuple[str, str, str]


def credentials_key(request: Any, slug: str) -> Key | None:
    """What authentication reads from a GET request, and the project; None for no credentials."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
    if not header and not cookie:
        return None
    return (header, cookie, slug)


class RecentAccess:
    """(credentials, project slug) → :class:`ProjectAccess`, for ``ttl`` seconds."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._items: dict[Key, tuple[float, ProjectAccess]] = {}
        self._lock = threading.Lock()
        self.generation = 0  # bumped by every clear()

    def get(self, request: Any, slug: str) -> ProjectAccess | None:
        key = credentials_key(request, slug)
        found = self._items.get(key) if key is not None else None
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def remember(self, request: Any, slug: str, access: ProjectAccess, generation: int) -> None:
        """Keep a decision that was made after reading ``generation``, unless cleared since."""
        key = credentials_key(request, slug)
        if key is None or self.ttl <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            if len(self._items) >= self.size:
                now = time.monotonic()
                self._items = {k: v for k, v in self._items.items() if v[0] >= now}
                if len(self._items) >= self.size:
                    self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl, access)

    def clear(self, **_: Any) -> None:
        with self._lock:
            self.generation += 1
            self._items = {}


TTL_SECONDS: float = option("ACCESS_CACHE_SECONDS")
RECENT_ACCESS = RecentAccess(TTL_SECONDS)

for _model in (Membership, Project, Token, get_user_model()):
    post_save.connect(RECENT_ACCESS.clear, sender=_model, dispatch_uid=f"recent-access-save-{_model.__name__}")
    post_delete.connect(RECENT_ACCESS.clear, sender=_model, dispatch_uid=f"recent-access-delete-{_model.__name__}")
post_delete.connect(RECENT_ACCESS.clear, sender=Session, dispatch_uid="recent-access-delete-Session")
user_logged_out.connect(RECENT_ACCESS.clear, dispatch_uid="recent-access-logout")
