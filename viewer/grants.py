"""One memory of granted access decisions, for the two hot paths: rendered images and live sessions.

Scrolling a stack sends one request per slice, 50-150 a second per reader, and a reading session's
sockets write annotations many times a second. Deciding access for each (authenticate, read the
membership, the seat, the session) costs more than the answer. :data:`GRANTS` remembers granted
decisions for a short time, keyed by everything the decision read:

- **images and searches** (:func:`recent_access`, :func:`remember_access`): the credentials a GET
  request presented (the whole ``Authorization`` header and the session cookie) and the project slug →
  the :class:`~viewer.access.ProjectAccess` the full path granted (``viewer.render_views``, and every
  view of ``viewer.http.project_endpoint`` with ``remember_access``: the QIDO-RS searches);
- **seats** (``("seat", session id, username)``): what a session hub's seat check read for a
  connected user → the :class:`collab.visibility.Grant` a live write may use without reading it
  again (``collab.hub.SessionHub.confirms``).

Why this is safe:

- Only successful decisions are kept; refusals always take the full path (and are audited there).
- An entry lives at most :data:`TTL_SECONDS` (``CROSSREAD["ACCESS_CACHE_SECONDS"]``, default 1 s) of
  the memory's clock: the bound on how long a removed member, seat, token or account keeps being
  served by a process that heard of no change (another process's change, a raw SQL write).
- In this process every change that can take access away sends the one :data:`access_changed`
  signal, which empties the memory at once: a membership, project, token, user or login session
  saved or deleted, a logout (below); a seat or a reading session saved or deleted, and a session
  hub hearing of a change in another process (``collab.services.lost_access``, ``collab.hub``).
- A decision computed before a change is not stored after it: :meth:`GrantMemory.remember` takes
  the generation read before the decision and drops the entry if the memory was emptied since.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.models import Session
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal
from rest_framework.authtoken.models import Token

from crossread.conf import option
from viewer.access import ProjectAccess
from viewer.models import Membership, Project

#: Sent (by anyone, with any keyword arguments) when something that decides access changed.
access_changed = Signal()


class GrantMemory:
    """Keys → granted decisions, each kept ``ttl`` seconds of ``clock``; at most ``size`` entries."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic, size: int = 10_000) -> None:
        self.ttl = ttl
        self.clock = clock
        self.size = size
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.generation = 0  # bumped by every clear()

    def get(self, key: Hashable) -> Any:
        """The decision remembered for ``key`` within the TTL, or None."""
        found = self._items.get(key)
        if found is None or found[0] <= self.clock():
            return None
        return found[1]

    def remember(self, key: Hashable, decision: Any, generation: int) -> None:
        """Keep a decision made after reading ``generation``, unless the memory was emptied since."""
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            now = self.clock()
            if len(self._items) >= self.size:
                self._items = {k: v for k, v in self._items.items() if v[0] > now}
                if len(self._items) >= self.size:
                    self._items.clear()
            self._items[key] = (now + self.ttl, decision)

    def clear(self, **_: Any) -> None:
        with self._lock:
            self.generation += 1
            self._items = {}


TTL_SECONDS: float = option("ACCESS_CACHE_SECONDS")
GRANTS = GrantMemory(TTL_SECONDS)
access_changed.connect(GRANTS.clear, dispatch_uid="grants-clear")


# -- images -----------------------------------------------------------------------------------------


def image_key(request: Any, slug: str) -> tuple[str, str, str, str] | None:
    """What authentication reads from a GET request, and the project; None for no credentials."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
    if not header and not cookie:
        return None
    return ("image", header, cookie, slug)


def recent_access(request: Any, slug: str) -> ProjectAccess | None:
    """The project access granted to these credentials within the TTL, or None."""
    key = image_key(request, slug)
    return GRANTS.get(key) if key is not None else None


def remember_access(request: Any, slug: str, access: ProjectAccess, generation: int) -> None:
    key = image_key(request, slug)
    if key is not None:
        GRANTS.remember(key, access, generation)


# -- what changes access ---------------------------------------------------------------------------


def _changed(sender: Any, **kwargs: Any) -> None:
    access_changed.send(sender=sender)


for _model in (Membership, Project, Token, get_user_model()):
    post_save.connect(_changed, sender=_model, dispatch_uid=f"access-changed-save-{_model.__name__}")
    post_delete.connect(_changed, sender=_model, dispatch_uid=f"access-changed-delete-{_model.__name__}")
post_delete.connect(_changed, sender=Session, dispatch_uid="access-changed-delete-Session")
user_logged_out.connect(_changed, dispatch_uid="access-changed-logout")
