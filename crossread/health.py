"""``/healthz`` and ``/readyz``: is this process alive, and can it serve?

For a load balancer, nginx, systemd or a container orchestrator. Both answer without
authentication and before Django's middleware chain (so also to a probe that sends the machine's
address as ``Host``, which ``ALLOWED_HOSTS`` would refuse), in JSON, with ``Cache-Control:
no-store``, and say nothing but the checks' outcomes: no versions, paths, addresses or error text
(a failure's cause goes to the server's log).

- ``/healthz``: the process answers (its event loop runs). No database: a database outage must not
  make an orchestrator restart every server.
- ``/readyz``: ``200`` when every check passes, else ``503``. ``database``: ``SELECT 1`` on the
  default database; ``channel_layer``: a ``PING`` to each Redis host of the channel layer (the
  websocket fan-out between processes, and the shared cache), ``"not used"`` with the in-memory layer;
  ``storage``: a file created and removed in the object store's folder and in the upload spool.
  Each check has :data:`TIMEOUT` seconds. One run at a time per process; its result is reused for
  :data:`REUSE_SECONDS`, so a flood of probes costs one check a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]
log = logging.getLogger(__name__)

TIMEOUT = 3.0
REUSE_SECONDS = 1.0
PATHS = ("/healthz", "/readyz")


class HealthRoutes:
    """An ASGI application: ``/healthz`` and ``/readyz`` here, everything else to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._last: tuple[float, dict[str, str]] | None = None
        self._running: asyncio.Future[dict[str, str]] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in PATHS:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _answer(send, 405, {"status": "method not allowed"}, head=False, allow="GET, HEAD")
            return
        if scope["path"] == "/healthz":
            await _answer(send, 200, {"status": "alive"}, head=scope["method"] == "HEAD")
            return
        checks = await self.readiness()
        ready = all(outcome in ("ok", "not used") for outcome in checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        await _answer(send, 200 if ready else 503, body, head=scope["method"] == "HEAD")

    async def readiness(self) -> dict[str, str]:
        """The checks' outcomes: a recent run's, the running one's, or a new run's."""
        if self._last is not None and time.monotonic() - self._last[0] < REUSE_SECONDS:
            return self._last[1]
        if self._running is None:
            self._running = asyncio.ensure_future(run_checks())
            self._running.add_done_callback(self._finished)
        return await asyncio.shield(self._running)

    def _finished(self, future: asyncio.Future[dict[str, str]]) -> None:
        self._running = None
        if not future.cancelled() and future.exception() is None:
            self._last = (time.monotonic(), future.result())


async def run_checks() -> dict[str, str]:
    names = ("database", "channel_layer", "storage")
    outcomes = await asyncio.gather(_timed(_database()), _timed(_channel_layer()), _timed(_storage()))
    return dict(zip(names, outcomes, strict=True))


async def _timed(check: Awaitable[str]) -> str:
    try:
        return await asyncio.wait_for(check, TIMEOUT)
    except TimeoutError:
        log.warning("readiness: a check took more than %s s", TIMEOUT)
        return "timeout"
    except Exception:
        log.warning("readiness: a check failed", exc_info=True)
        return "failed"


async def _database() -> str:
    await sync_to_async(_select_one, thread_sensitive=False)()
    return "ok"


def _select_one() -> None:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()  # a worker thread of the pool: keep no connection open in it


def redis_hosts() -> list[str]:
    """The Redis addresses of the channel layer (``[]`` for the in-memory layer)."""
    layer = settings.CHANNEL_LAYERS.get("default", {})
    if "redis" not in str(layer.get("BACKEND", "")).lower():
        return []
    hosts = layer.get("CONFIG", {}).get("hosts", [])
    return [host["address"] if isinstance(host, dict) else str(host) for host in hosts]


async def _channel_layer() -> str:
    hosts = redis_hosts()
    if not hosts:
        return "not used"
    from redis.asyncio import Redis

    for address in hosts:
        client = Redis.from_url(address, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
        try:
            if not await client.ping():
                raise ConnectionError("no PONG")
        finally:
            await client.aclose()
    return "ok"


async def _storage() -> str:
    await sync_to_async(_write_and_remove, thread_sensitive=False)()
    return "ok"


def storage_folders() -> list[Path]:
    """Where the server writes: the object store (``<data>/objects``, its parent until the first
    object) and the upload spool."""
    objects = Path(settings.DATA_DIR) / "objects"
    return [objects if objects.is_dir() else Path(settings.DATA_DIR), Path(settings.FILE_UPLOAD_TEMP_DIR)]


def _write_and_remove() -> None:
    for folder in storage_folders():
        handle, name = tempfile.mkstemp(prefix=".readyz-", suffix=".tmp", dir=folder)
        try:
            os.write(handle, b"ready")
        finally:
            os.close(handle)
            os.unlink(name)


async def _answer(send: Any, status: int, body: dict[str, Any], *, head: bool, allow: str = "") -> None:
    content = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    if allow:
        headers.append((b"allow", allow.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else content})
