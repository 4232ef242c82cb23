"""Who may see what in a project: the archive's access rules as pure functions. No Django.

:mod:`viewer.access` loads the facts (the caller's role in the project, whether the project keeps
annotations private) once per request or socket and asks these rules; every path that reaches
images, annotations or reports asks the same ones. The reading sessions' rules (seats, blinding)
are in :mod:`collab.visibility`, built on these.

Roles rank ``viewer < reader < organizer``; ``None`` is somebody who is not a member.
"""

from __future__ import annotations

#: What each role may do includes what every lower role may do.
RANK = {"viewer": 1, "reader": 2, "organizer": 3}


def has_role(role: str | None, minimum: str) -> bool:
    """Does ``role`` include ``minimum``? Non-members (``None``) have no role."""
    return role is not None and RANK.get(role, 0) >= RANK[minimum]


def sees_quarantine(role: str | None) -> bool:
    """Quarantined instances (possible burned-in text, awaiting review) are shown to organizers only."""
    return has_role(role, "organizer")


def sees_instance(role: str | None, *, quarantined: bool) -> bool:
    """May a member with ``role`` reach an instance: its pixels, metadata, measurements and marks?

    Everything derived from an instance's pixels counts as reaching it: a rendered frame, a
    thumbnail, HU statistics of a region, the value of one pixel, an annotation drawn on it. A hidden
    instance answers exactly as one that does not exist, so its existence does not leak either.
    """
    if not has_role(role, "viewer"):
        return False
    return not quarantined or sees_quarantine(role)


def sees_project_annotation(role: str | None, *, own: bool, private: bool, quarantined: bool) -> bool:
    """May a member with ``role`` see a project annotation (one not of a reading session)?

    ``own``: the member wrote it. ``private``: the project keeps annotations private (blinded reads),
    where members below organizer see only their own. An annotation on an instance the member may
    not reach is hidden with it.
    """
    if not sees_instance(role, quarantined=quarantined):
        return False
    return own or not private or has_role(role, "organizer")


#: The project role a remote DICOM node acts with, by its kind (``viewer.models.NodeKind``): a sender
#: only stores and reads nothing; a query/retrieve node (or a peer, which also stores) reads as a reader
#: (no quarantined images). A DIMSE caller is not a user: this fixed role stands in for a membership.
NODE_ROLES: dict[str, str | None] = {"sender": None, "query": "reader", "peer": "reader"}


def node_role(kind: str) -> str | None:
    """The role a DICOM node of ``kind`` reads with (``None``: it may read nothing)."""
    return NODE_ROLES.get(kind)


def node_may_store(kind: str) -> bool:
    """May a DICOM node of ``kind`` store instances (C-STORE) into its project?"""
    return kind in ("sender", "peer")
