"""Angles in a live session: an angle and a Cobb angle created over the websocket reach the other
reader measured in degrees; their drafts (3 and 4 points) go to the others as drawn."""

from __future__ import annotations

from typing import Any

import pytest

from tests.collab.conftest import run_async
from tests.collab.test_abuse import answer
from tests.collab.room import joined, of_type

pytestmark = pytest.mark.django_db(transaction=True)


@run_async
async def test_angle_and_cobb_reach_the_other_reader(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "r1", "r2", drained=True) as room:
        draft = {"type": "annotation.draft", "instance": crew["instance"], "frame": 1, "kind": "cobb",
                 "points": [[1, 1], [9, 2], [1, 8], [9, 6]]}
        await room.send("r1", draft)
        drafts = [d for f in of_type(await room.all("r2"), "drafts") for d in f["drafts"]]
        assert drafts[-1]["kind"] == "cobb" and drafts[-1]["points"] == [[1.0, 1.0], [9.0, 2.0], [1.0, 8.0], [9.0, 6.0]]
        await room.send("r1", {"type": "annotation.draft", "points": []})
        await room.send("r1", {"type": "annotation.create", "ref": "a-1", "annotation": {
            "instance": crew["instance"], "frame": 1, "kind": "angle", "points": [[12, 4], [4, 4], [4, 12]]}})
        mine = await room.next_of("r1", "annotation.created", 10)
        theirs = await room.next_of("r2", "annotation.created", 5)
        assert mine["ref"] == "a-1" and theirs["annotation"] == mine["annotation"]
        assert theirs["annotation"]["kind"] == "angle"
        assert theirs["annotation"]["measurements"] == {"kind": "angle", "unit": "deg", "calibration": "PixelSpacing",
                                                        "angle": 90.0}
        await room.send("r1", {"type": "annotation.create", "ref": "c-1", "annotation": {
            "instance": crew["instance"], "frame": 1, "kind": "cobb", "points": [[0, 0], [10, 0], [0, 5], [10, 15]]}})
        cobb = await room.next_of("r2", "annotation.created", 5)
        assert (await room.next_of("r1", "annotation.created", 5))["ref"] == "c-1"
        assert cobb["annotation"]["measurements"]["angle"] == 45.0
        # three points for a Cobb angle: an error frame to the sender, nothing for the others
        await room.send("r1", {"type": "annotation.create", "ref": "c-2", "annotation": {
            "instance": crew["instance"], "frame": 1, "kind": "cobb", "points": [[0, 0], [10, 0], [0, 5]]}})
        refused = await answer(room, "r1", 5)
        assert (refused["type"], refused["code"], refused["ref"]) == ("error", "bad_request", "c-2")
        assert "expected 4 points" in refused["message"]
        assert not [f for f in await room.all("r2") if f["type"] == "annotation.created"]
