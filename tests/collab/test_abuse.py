"""Hardening against abuse (issue 13): frames that crashed the consumer, a snapshot too large to send,
private marks streamed live, the cost of maximum-size shapes, and the audit of the session's acts."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async

from annotations import geometry
from collab.consumers import POINT_BURST
from collab.models import Connection
from collab.protocol import MAX_POINTS
from tests.collab.conftest import run_async
from tests.collab.test_consumer import Room

pytestmark = pytest.mark.django_db(transaction=True)


async def answer(room: Room, who: str, timeout: float = 1.0) -> dict[str, Any]:
    """The next answer to a write (an annotation frame or an error), skipping presence and the like."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await room.next(who, max(0.01, deadline - time.monotonic()))
        if frame["type"].startswith("annotation.") or frame["type"] == "error":
            return frame


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


# ------------------------------------------------------------------------------------------------
# The cost of maximum-size shapes
# ------------------------------------------------------------------------------------------------


def outline(n: int = MAX_POINTS, centre: float = 8.0, radius: float = 6.0, wobble: float = 0.0) -> list[list[float]]:
    """A closed outline of ``n`` points inside the crew's 16x16 images (hand-drawn-like with ``wobble``)."""
    return [[round(centre + (radius + wobble * math.sin(37 * t)) * math.cos(t), 4),
             round(centre + (radius + wobble * math.sin(37 * t)) * math.sin(t), 4)]
            for t in (2 * math.pi * i / n for i in range(n))]


def freehand(instance: str, ref: str, **shape: Any) -> dict[str, Any]:
    return {"type": "annotation.create", "ref": ref,
            "annotation": {"instance": instance, "frame": 1, "kind": "freehand", "points": outline(**shape)}}


def test_measuring_a_maximum_size_freehand_takes_milliseconds() -> None:
    points = outline(wobble=0.5)
    started = time.perf_counter()
    result = geometry.measure("freehand", points, None)
    assert time.perf_counter() - started < 0.1  # 0.4-0.9 s before (every pair of its 4,096 edges tested)
    assert result["area"] > 0


@run_async
async def test_points_are_rate_limited_per_participant(crew: dict[str, Any], session: Any,
                                                       cookies: dict[str, bytes]) -> None:
    room = Room(session, cookies)
    try:
        await room.join("r1")
        await room.all("r1")
        for n in range(30):
            await room.send("r1", freehand(crew["instance"], f"f{n}"))
        answers = [await answer(room, "r1", 20) for _ in range(30)]
        created = [a for a in answers if a["type"] == "annotation.created"]
        refused = [a for a in answers if a["type"] == "error"]
        assert len(created) <= POINT_BURST // MAX_POINTS + 1
        assert refused and all(a["code"] == "rate_limited" and a["retry_after"] > 0 for a in refused)
    finally:
        await room.close()
