"""Patient pseudonyms: the value that replaces Patient ID and Patient's Name.

The Django layer passes its own link table (a callable or mapping); this module
gives the deterministic keyed default used when it passes none.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping

from viewer.deid.uids import keyed_digest

Pseudonymizer = Callable[[str], str] | Mapping[str, str]


def default_pseudonym(patient_id: str, secret: bytes) -> str:
    """``"CR-"`` + 16 base32 characters of HMAC-SHA256(secret, patient_id).

    80 bits: collisions are negligible for any project, and the original
    Patient ID cannot be recovered without the secret.
    """
    digest = keyed_digest(secret, "pseudonym", patient_id)
    return "CR-" + base64.b32encode(digest).decode("ascii")[:16]


def resolve_pseudonym(patient_id: str, secret: bytes, pseudonym: Pseudonymizer | None) -> str:
    """Pseudonym for ``patient_id`` from the caller's callable or mapping, or the default.

    Raises
    ------
    ValueError
        If the mapping has no entry, or the pseudonym is not a valid LO / PN
        value (1 to 64 characters, no backslash, caret or control character).
    """
    if pseudonym is None:
        value = default_pseudonym(patient_id, secret)
    elif isinstance(pseudonym, Mapping):
        if patient_id not in pseudonym:
            raise ValueError("no pseudonym for this patient in the given mapping")
        value = pseudonym[patient_id]
    else:
        value = pseudonym(patient_id)
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= 64
        or any(c in value for c in "\\^=")
        or any(ord(c) < 32 for c in value)
    ):
        raise ValueError(f"invalid pseudonym {value!r}: 1-64 characters, no \\ ^ = or control")
    return value
