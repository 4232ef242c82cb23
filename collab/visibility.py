"""Who sees whose annotations, drafts, cursors and viewports in a reading session. Pure: no Django.

The websocket fan-out (:mod:`collab.hub`), the session snapshot and the REST API all ask
:func:`may_see`; nothing else decides visibility.

In any mode, nobody sees an observer's drafts: observers watch and do not annotate, so a shape an
observer draws is not shown as work in progress (the websocket refuses their annotations).

Open mode: everyone sees everything else. Blinded mode:

- the session's organizers (the session organizer, the project's organizers) and adjudicators see all;
- everyone sees their own work;
- otherwise annotations and drafts of others are hidden, and so are their cursors and viewports,
  except the presenter's cursor and viewport (followers follow the presenter, who shows no findings).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class What(enum.StrEnum):
    ANNOTATION = "annotation"
    DRAFT = "draft"
    CURSOR = "cursor"
    VIEWPORT = "viewport"


@dataclass(frozen=True)
class Seat:
    """A participant as the rules see them: a username, a session role, and whether they organize."""

    user: str
    role: str  # presenter | reader | adjudicator | observer
    organizer: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"user": self.user, "role": self.role, "organizer": self.organizer}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seat:
        return cls(user=str(data["user"]), role=str(data["role"]), organizer=bool(data.get("organizer", False)))


#: Seats that may annotate (observers watch).
ANNOTATING_ROLES = frozenset({"presenter", "reader", "adjudicator"})


def sees_all(viewer: Seat, mode: str) -> bool:
    if mode != "blinded":
        return True
    if viewer.organizer:
        return True
    return viewer.role == "adjudicator"


def may_see(viewer: Seat, author: Seat, mode: str, what: What) -> bool:
    """May ``viewer`` see ``what`` by ``author`` in a session of ``mode``?"""
    if what == What.DRAFT and author.role not in ANNOTATING_ROLES:
        return False
    if sees_all(viewer, mode):
        return True
    if viewer.user == author.user:
        return True
    if what in (What.CURSOR, What.VIEWPORT):
        return author.role == "presenter"
    return False
