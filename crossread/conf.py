"""Access to the ``CROSSREAD`` settings dict, with defaults and a check for unknown keys."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    "MAX_INSTANCE_BYTES": 512 * 1024 * 1024,
    "MAX_ZIP_BYTES": 4 * 1024 * 1024 * 1024,
    "QIDO_DEFAULT_LIMIT": 1000,
    "QIDO_MAX_LIMIT": 10_000,
    "PUBLIC_URL": "",
    # Rendering: memory for decoded frames (a change of window does not decode again) and for
    # encoded outputs (a repeated URL is a lookup).
    "RENDER_FRAME_CACHE_BYTES": 1024 * 2**20,
    "RENDER_OUTPUT_CACHE_BYTES": 256 * 2**20,
    # Reformatted planes (MPR): the largest volume assembled from a series (its float32 values; 1 GiB
    # is about 1,000 slices of 512x512), and the memory for assembled volumes (at least one largest).
    "MPR_MAX_VOLUME_BYTES": 1024 * 2**20,
    "MPR_VOLUME_CACHE_BYTES": 1024 * 2**20,
    # Cache-Control of rendered images: their URLs are immutable. "private" keeps shared caches out;
    # a deployment with an authenticating regional cache may use "public, max-age=31536000, immutable".
    "RENDER_CACHE_CONTROL": "private, max-age=31536000, immutable",
    # How long a process may answer from a remembered access decision (viewer.grants: image
    # requests, and live writes of a seat the session hub checked): the bound on how long a removed
    # member keeps being served by another process (in the same process, revocations take effect at
    # once). 0 turns it off.
    "ACCESS_CACHE_SECONDS": 1.0,
    # Failed logins allowed per client address within a window (then 429 until the window ends).
    "LOGIN_ATTEMPTS": 10,
    "LOGIN_WINDOW_SECONDS": 900,
    # Per username, failures slow down instead of locking the owner out: after LOGIN_BACKOFF_AFTER
    # failures, each attempt waits 1, 2, 4 ... s (at most LOGIN_BACKOFF_MAX_SECONDS) after the last
    # failure. A username's failures are forgotten LOGIN_WINDOW_SECONDS after its last one.
    "LOGIN_BACKOFF_AFTER": 5,
    "LOGIN_BACKOFF_MAX_SECONDS": 60,
    # Proxies whose X-Forwarded-For is believed (addresses or CIDR networks; see crossread.proxies).
    "TRUSTED_PROXIES": [],
    # Reading sessions' calls (collab.ice): STUN and TURN servers as RTCPeerConnection takes them, the
    # secret shared with a coturn server (use-auth-secret) for time-limited TURN credentials, and
    # how long those last. No servers: calls reach a local network only.
    "ICE_SERVERS": [],
    "TURN_SECRET": "",
    "TURN_TTL_SECONDS": 12 * 3600,
    # DIMSE (manage.py dicom_listener, docs/dicomweb.md): concurrent associations, the largest PDU
    # received, the seconds an association may sit idle (network), wait for association messages
    # (ACSE) and for DIMSE messages, and the most matches one C-FIND, C-GET or C-MOVE answers.
    "DIMSE_MAX_ASSOCIATIONS": 10,
    "DIMSE_MAX_PDU_BYTES": 1024 * 1024,
    "DIMSE_NETWORK_TIMEOUT": 60,
    "DIMSE_ACSE_TIMEOUT": 30,
    "DIMSE_DIMSE_TIMEOUT": 60,
    "DIMSE_MAX_MATCHES": 10_000,
}


def option(name: str) -> Any:
    configured = getattr(settings, "CROSSREAD", {})
    unknown = set(configured) - set(DEFAULTS)
    if unknown:
        raise ImproperlyConfigured(f"Unknown CROSSREAD settings: {', '.join(sorted(unknown))}")
    if name not in DEFAULTS:
        raise KeyError(name)
    return configured.get(name, DEFAULTS[name])
