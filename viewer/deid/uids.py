"""Keyed UID replacement for action U of PS3.15 Table E.1-1.

A new UID is ``2.25.`` followed by the decimal integer of the first 128 bits of
HMAC-SHA256(secret, original) (the UUID-derived root of PS3.5 B.2).  The same
original UID always gives the same new UID within a project (one secret), so
Study, Series, Frame of Reference and every reference stay consistent
(PS3.15 E.1.1 Note 3), and without the secret no original can be recomputed.
"""

from __future__ import annotations

import hashlib
import hmac

from pydicom.uid import UID_dictionary

UID_ROOT = "2.25."


def check_secret(secret: bytes) -> None:
    """Raise ``ValueError`` unless ``secret`` is non-empty bytes."""
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("de-identification needs the project secret as non-empty bytes")


def keyed_digest(secret: bytes, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 of ``value`` under ``secret``, separated by ``purpose``.

    Each use (UIDs, pseudonyms, date shifts) has its own purpose label so
    that one derived value never reveals another.
    """
    message = purpose.encode("ascii") + b"\x00" + value.encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).digest()


def is_well_known(uid: str) -> bool:
    """True for UIDs defined by the standard (SOP Classes, Transfer Syntaxes, ...).

    These are in pydicom's UID dictionary (PS3.6 Annex A) and are never
    replaced (PS3.15 E.3.9 Note 4).
    """
    return uid in UID_dictionary


def new_uid(original: str, secret: bytes) -> str:
    """Replacement UID for ``original`` under the project ``secret``.

    Parameters
    ----------
    original : str
        The UID to replace; trailing NUL padding and spaces are ignored.
    secret : bytes
        The project secret.

    Returns
    -------
    str
        ``"2.25.<decimal>"``: at most 44 characters, no leading zero in any
        component, or ``original`` itself when it is a well-known UID.
    """
    check_secret(secret)
    original = original.strip("\x00 ")
    if is_well_known(original):
        return original
    digest = keyed_digest(secret, "uid", original)[:16]
    return UID_ROOT + str(int.from_bytes(digest, "big"))


class UidMapper:
    """Replace UIDs with :func:`new_uid` and remember each original -> new pair."""

    def __init__(self, secret: bytes) -> None:
        check_secret(secret)
        self._secret = secret
        self.mapping: dict[str, str] = {}

    def __call__(self, original: str) -> str:
        """New UID for ``original``; well-known UIDs come back unchanged and unrecorded."""
        original = original.strip("\x00 ")
        if not original or is_well_known(original):
            return original
        new = self.mapping.get(original)
        if new is None:
            new = self.mapping[original] = new_uid(original, self._secret)
        return new
