"""Which address a request comes from: the one function every rate limit and the audit trail use.

Without trusted proxies (the default) the client is the connection's peer (``REMOTE_ADDR``, the ASGI
scope's ``client``) and ``X-Forwarded-For`` is ignored: anyone can send that header.

Behind a reverse proxy every connection comes from the proxy. List it in ``TRUSTED_PROXIES``
(environment ``CROSSREAD_TRUSTED_PROXIES``, addresses or CIDR networks): when, and only when, the peer
is a trusted proxy, ``X-Forwarded-For`` is read from the right (each proxy appends the address it saw)
and the client is the right-most address that is not itself a trusted proxy. The addresses to its
left were written by the client and are never believed. If every address in the header is a trusted
proxy, the left-most one is the client; if the proxy sent no usable header, the proxy is.

Addresses are returned normalised (``::ffff:10.0.0.1`` is ``10.0.0.1``); a peer that is not an IP
address (a Unix socket) is returned as given, or ``""``.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest

from crossread.conf import option

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: HttpRequest) -> str:
    """The client's address of a Django request."""
    return decide(request.META.get("REMOTE_ADDR") or "", request.META.get("HTTP_X_FORWARDED_FOR", ""))


def scope_client_address(scope: dict[str, Any]) -> str:
    """The client's address of an ASGI (websocket or HTTP) scope."""
    peer = (scope.get("client") or ("",))[0] or ""
    forwarded = b",".join(value for name, value in scope.get("headers", ()) if name == b"x-forwarded-for")
    return decide(peer, forwarded.decode("latin-1"))


def decide(peer: str, forwarded_for: str) -> str:
    trusted = _networks(tuple(option("TRUSTED_PROXIES")))
    address = _parse(peer)
    if address is None:
        return peer
    if not trusted or not _is_trusted(address, trusted):
        return str(address)
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_address = _parse(hop)
        if hop_address is None:  # not written by a proxy we trust: stop at the last address we believe
            return str(address)
        address = hop_address
        if not _is_trusted(address, trusted):
            return str(address)
    return str(address)


def _parse(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, trusted: Iterable[Network]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


@functools.lru_cache(maxsize=8)
def _networks(configured: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in configured)
