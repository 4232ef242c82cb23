"""The ICE servers a session's call uses (STUN and TURN), and TURN credentials. Pure: no Django.

Configured as ``RTCPeerConnection`` takes them (``[{"urls": ..., "username"?, "credential"?}]``,
``CROSSREAD_ICE_SERVERS``). With a shared secret (``CROSSREAD_TURN_SECRET``) every ``turn:`` or
``turns:`` server without its own credentials gets time-limited ones per user, as coturn's REST API
expects them (``use-auth-secret`` and ``static-auth-secret`` in turnserver.conf; the draft
"A REST API For Access To TURN Services"): the username is ``"<expiry unix time>:<user>"`` and the
credential ``base64(HMAC-SHA1(secret, username))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

#: At most this many servers, each with at most this many URLs (a configuration, not user input; still bounded).
MAX_SERVERS = 16
MAX_URLS = 8
SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


def check_servers(value: Any) -> list[dict[str, Any]]:
    """``value`` as a list of ``RTCIceServer`` dicts, or ValueError saying what is wrong."""
    if not isinstance(value, list) or len(value) > MAX_SERVERS:
        raise ValueError(f"ICE servers must be a JSON list of at most {MAX_SERVERS} objects.")
    servers = []
    for server in value:
        if not isinstance(server, dict) or set(server) - {"urls", "username", "credential"}:
            raise ValueError('Each ICE server is an object with "urls" and optionally "username" and "credential".')
        urls = server.get("urls")
        listed = [urls] if isinstance(urls, str) else urls
        if not isinstance(listed, list) or not listed or len(listed) > MAX_URLS or not all(
                isinstance(url, str) and url.startswith(SCHEMES) for url in listed):
            raise ValueError(f"An ICE server's urls are stun:, stuns:, turn: or turns: URLs (at most {MAX_URLS}).")
        for key in ("username", "credential"):
            if key in server and not isinstance(server[key], str):
                raise ValueError(f"An ICE server's {key} is text.")
        servers.append({**server, "urls": listed})
    return servers


def check_config(servers: Any, secret: str) -> list[dict[str, Any]]:
    """:func:`check_servers`, and a TURN server without credentials needs the shared ``secret``."""
    checked = check_servers(servers)
    for server in checked:
        if is_turn(server) and "credential" not in server and not secret:
            raise ValueError("A TURN server without username and credential needs CROSSREAD_TURN_SECRET.")
    return checked


def is_turn(server: dict[str, Any]) -> bool:
    return any(url.startswith(("turn:", "turns:")) for url in server["urls"])


def turn_credentials(secret: str, user: str, now: float, ttl: int) -> tuple[str, str]:
    """coturn's REST API credentials valid until ``now + ttl``: ``("<expiry>:<user>", base64(HMAC-SHA1))``."""
    username = f"{int(now) + ttl}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(configured: list[dict[str, Any]], *, secret: str, user: str, now: float, ttl: int) -> list[dict[str, Any]]:
    """The servers one participant's browser is given: TURN servers without credentials of their own
    get time-limited ones for ``user`` when a ``secret`` is configured."""
    out = []
    for server in configured:
        server = dict(server)
        if secret and is_turn(server) and "credential" not in server:
            server["username"], server["credential"] = turn_credentials(secret, user, now, ttl)
        out.append(server)
    return out


def reach(servers: list[dict[str, Any]]) -> str:
    """How far calls reach: ``local`` (no servers: a local network only), ``stun`` (most networks, not
    behind symmetric NATs or firewalls that block UDP) or ``turn`` (relayed where direct fails)."""
    if any(is_turn(server) for server in servers):
        return "turn"
    return "stun" if servers else "local"
