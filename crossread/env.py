"""Small, strict readers of environment variables for settings.

Each helper raises ``ImproperlyConfigured`` on a value it cannot understand, so a typo in
a deployment's environment stops the process at start-up instead of silently falling back.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def get_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def get_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def get_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def get_json(name: str, default: object) -> object:
    """A JSON value (``[{"urls": "stun:stun.example.org"}]``)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be JSON ({exc})") from None


def get_networks(name: str) -> list[str]:
    """A comma-separated list of addresses or CIDR networks (``127.0.0.1, 10.0.0.0/8, ::1``), normalised."""
    networks = []
    for item in get_list(name, []):
        try:
            networks.append(str(ipaddress.ip_network(item)))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an address or network ({exc})") from None
    return networks


def get_path(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default


def parse_database_url(url: str) -> dict[str, object]:
    """Turn ``postgres://user:pw@host:port/name?opt=v`` or ``sqlite:///path`` into DATABASES['default']."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    options = dict(parse_qsl(parsed.query))
    if scheme in {"postgres", "postgresql", "pgsql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    if scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path
        path = parsed.path[1:] if parsed.path.startswith("//") else parsed.path.lstrip("/")
        if parsed.path.startswith("//"):
            path = "/" + path.lstrip("/")
        return sqlite_database(Path(path or ":memory:"))
    raise ImproperlyConfigured(f"DATABASE_URL scheme {scheme!r} is not supported (postgres://, sqlite:///)")


def sqlite_database(path: Path) -> dict[str, object]:
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)  # a fresh checkout has no data folder yet
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            # IMMEDIATE transactions take the write lock up front, so two processes ingesting at
            # once wait for each other instead of failing with "database is locked" mid-transaction.
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        # Opening a connection (the pragmas, Django's SQL functions) costs more than most queries: the
        # websocket consumers' thread keeps its connection, as PostgreSQL's does. (Each HTTP request
        # runs in a thread of its own under ASGI, whose connection closes with it.)
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
