"""Participants of one reading session connected through Channels' WebsocketCommunicator and the real
ASGI application: the connect, join and receive sequences the collab tests share."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from channels.db import database_sync_to_async

from collab import services
from tests.collab.conftest import communicator


class Room:
    """Connected participants of one session; disconnects everyone at the end."""

    def __init__(self, session: Any, cookies: dict[str, bytes]) -> None:
        self.session, self.cookies, self.open = session, cookies, {}

    async def join(self, who: str) -> dict[str, Any]:
        comm = communicator(self.session.pk, self.cookies[who])
        connected, code = await comm.connect()
        assert connected, code
        self.open[who] = comm
        state = await self.next(who, 10)  # the first join of a process imports the URLconf
        assert state["type"] == "session.state"
        return state

    async def send(self, who: str, frame: Any) -> None:
        await self.open[who].send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def next(self, who: str, timeout: float = 1.0) -> dict[str, Any]:
        return json.loads(await self.open[who].receive_from(timeout))  # type: ignore[no-any-return]

    async def next_of(self, who: str, kind: str, timeout: float = 1.0) -> dict[str, Any]:
        """The next frame of type ``kind``, skipping presence and ephemeral frames."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(who, max(0.01, deadline - time.monotonic()))
            if frame["type"] == kind:
                return frame
            assert frame["type"] in ("presence", "cursors", "viewports", "drafts"), frame

    async def closed(self, who: str) -> int:
        """Read until the server closes the socket; its close code."""
        while True:
            output = await self.open[who].receive_output(1)
            if output["type"] == "websocket.close":
                return output["code"]  # type: ignore[no-any-return]

    async def all(self, who: str, wait: float = 0.25) -> list[dict[str, Any]]:
        frames = []  # receive_nothing, as a timed-out receive would cancel the application
        while not await self.open[who].receive_nothing(wait, interval=0.01):
            frames.append(await self.next(who))
        return frames

    async def leave(self, who: str) -> None:
        await self.open.pop(who).disconnect()

    async def close(self) -> None:
        for comm in self.open.values():
            await comm.disconnect()
        self.open.clear()


def length(instance: str, ref: str, x: float = 10.0) -> dict[str, Any]:
    return {"type": "annotation.create", "ref": ref,
            "annotation": {"instance": instance, "frame": 1, "kind": "length", "points": [[0, 0], [x, 0]], "label": ""}}


def of_type(frames: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == kind]


@asynccontextmanager
async def joined(session: Any, cookies: dict[str, bytes], *who: str, drained: bool = False) -> AsyncIterator[Room]:
    """A :class:`Room` of ``session`` that ``who`` joined, in that order (``drained``: then every frame
    each has received so far read and dropped, in the same order); everyone disconnected at the end."""
    room = Room(session, cookies)
    try:
        for name in who:
            await room.join(name)
        if drained:
            for name in who:
                await room.all(name)
        yield room
    finally:
        await room.close()


async def as_organizer(crew: dict[str, Any], session: Any, action: Any, *args: Any, **kwargs: Any) -> Any:
    """``action`` (a session service of :mod:`collab.services`) done by the organizer with a fresh access to
    ``session``, in the database thread."""

    def act() -> Any:
        return action(services.access_session(crew["org"], session.pk), *args, **kwargs)

    return await database_sync_to_async(act)()
