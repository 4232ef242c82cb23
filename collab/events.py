"""Broadcasting to a session's processes, always after commit.

Every process serving a session runs one :class:`collab.hub.SessionHub` that is the session group's only
member in that process; it fans out to the local websockets, applying :mod:`collab.visibility`. An event
is encoded to JSON text once, here, so what the Redis layer carries is plain JSON text plus the few plain
fields the hub filters on (nothing it cannot serialise, and no per-recipient encoding).

A write's ``ref`` is answered to the connection that sent it: the consumer hands an :class:`Origin` to
the service it calls, which passes it on to the call that broadcasts the write once it commits
(``collab.services``); that event carries the connection id and a second text with the ``ref`` in it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


@dataclass
class Origin:
    """The websocket message being handled: its connection, its ``ref``, the sender's seat (as the
    visibility rules see it) and session, whether its write was announced (a repeat is not), and
    whether the written annotation's instance is quarantined (``None``: not known here)."""

    connection: str
    ref: str | None
    session_id: int | None = None
    seat: dict[str, Any] | None = None
    announced: bool = False


def group_name(session_id: int) -> str:
    return f"collab.session.{session_id}"


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), allow_nan=False)


def hub_message(kind: str, frame: dict[str, Any] | None = None, *, origin: Origin | None = None,
                **fields: Any) -> dict[str, Any]:
    """The channel-layer message a hub receives: ``kind``, the frame as text, and plain filter fields;
    ``origin``: the websocket message this answers (its sender gets the frame with its ``ref``)."""
    message: dict[str, Any] = {"type": "hub.event", "kind": kind, "text": encode(frame) if frame else ""}
    here = origin
    if here is not None and frame is not None:
        here.announced = True
        message["origin"] = here.connection
        message["origin_text"] = encode({**frame, "ref": here.ref}) if here.ref is not None else message["text"]
    message.update(fields)
    return message


class Outbox:
    """Group sends of one process's event loop, made in order by one task, queued from any thread.

    A write committed in a worker thread would otherwise wait there for the whole ``group_send`` (several
    Redis round trips, each waiting its turn on a busy event loop) while the process's other database work
    queues behind it. Queued here, the thread returns at once; one task sends in commit order.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.task = loop.create_task(self._drain())

    def put(self, group: str, message: dict[str, Any]) -> None:
        if _on_loop(self.loop):
            self.queue.put_nowait((group, message))
        else:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, message))

    async def _drain(self) -> None:
        layer = get_channel_layer()
        while True:
            group, message = await self.queue.get()
            try:
                await layer.group_send(group, message)
            except Exception:
                log.exception("collab: sending to %s failed", group)


_outbox: Outbox | None = None


def start_outbox() -> None:
    """Called on the event loop that serves websockets (by the first hub); sends from then on queue there."""
    global _outbox
    loop = asyncio.get_running_loop()
    if _outbox is None or _outbox.loop is not loop or _outbox.task.done():
        _outbox = Outbox(loop)


def _send(session_id: int, message: dict[str, Any]) -> None:
    outbox = _outbox
    if outbox is not None and outbox.loop.is_running():
        outbox.put(group_name(session_id), message)
    elif outbox is not None:
        # The loop that served this process's websockets has stopped: the server is shutting down
        # while a disconnect is still handled in a worker thread. asgiref would schedule the send on
        # that stopped loop and wait for ever (and the process, for that thread, until killed); it is
        # sent from a loop of its own, for a bounded time.
        async_to_sync(_send_within, force_new_loop=True)(group_name(session_id), message, SHUTDOWN_SEND_SECONDS)
    else:  # no websocket served by this process (a management command, a test without one)
        async_to_sync(get_channel_layer().group_send)(group_name(session_id), message)


#: How long a send made while the server shuts down may take (the channel layer may be gone too).
SHUTDOWN_SEND_SECONDS = 2.0


async def _send_within(group: str, message: dict[str, Any], seconds: float) -> None:
    await asyncio.wait_for(get_channel_layer().group_send(group, message), seconds)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


#: Where messages go; tests swap it to capture them (see tests/collab/conftest.py).


sender: Callable[[int, dict[str, Any]], None] = _send


def broadcast(session_id: int, message: dict[str, Any]) -> None:
    """Send ``message`` to every hub of the session once the current transaction commits."""

    def send() -> None:
        try:
            sender(session_id, message)
        except Exception:  # a broadcast failure must not fail the committed write
            log.exception("collab: broadcast to session %s failed", session_id)

    transaction.on_commit(send)
