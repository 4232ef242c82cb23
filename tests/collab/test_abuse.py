"""Hardening against abuse (issue 13): frames that crashed the consumer, a snapshot too large to send,
private marks streamed live, the cost of maximum-size shapes, and the audit of the session's acts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async

from collab.models import Connection
from tests.collab.conftest import run_async
from tests.collab.test_consumer import Room

pytestmark = pytest.mark.django_db(transaction=True)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@run_async
async def test_a_non_text_type_and_deep_nesting_are_answered_and_the_socket_stays(crew: dict[str, Any], session: Any,
                                                                                  cookies: dict[str, bytes]) -> None:
    room = Room(session, cookies)
    try:
        await room.join("r1")
        await room.all("r1")
        for frame in ('{"type": {"a": 1}, "ref": "t"}', '{"type": ["ping"]}', nested(1000),
                      '{"type": "ping", "ref": "deep", "x": %s}' % nested(1000), nested(100_000)):
            await room.send("r1", frame)
            error = await room.next_of("r1", "error")
            assert error["code"] == "malformed", (frame[:40], error)
        await room.send("r1", {"type": "ping", "ref": "still-there"})
        assert (await room.next_of("r1", "pong"))["ref"] == "still-there"
    finally:
        await room.close()


def online(frame: dict[str, Any], user: str) -> bool:
    return next(p["online"] for p in frame["participants"] if p["user"] == user)


async def presence_until(room: Room, who: str, user: str, is_online: bool) -> None:
    """Read ``who``'s presence frames until one shows ``user`` online (or not)."""
    while online(await room.next_of(who, "presence", 2), user) != is_online:
        pass


@run_async
async def test_a_consumer_ended_by_an_exception_leaves_presence(crew: dict[str, Any], session: Any,
                                                              cookies: dict[str, bytes]) -> None:
    room = Room(session, cookies)
    try:
        await room.join("r2")
        await room.join("r1")
        await presence_until(room, "r2", "r1", True)
        dying = room.open.pop("r1")
        await dying.send_input({"type": "websocket.unheard-of"})  # no handler: the consumer raises
        with pytest.raises(ValueError):
            await dying.wait(1)
        await presence_until(room, "r2", "r1", False)
        assert not await database_sync_to_async(Connection.objects.filter(user=crew["r1"]).exists)()
    finally:
        await room.close()
