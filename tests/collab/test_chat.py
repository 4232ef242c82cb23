"""The session's chat over the websocket and its export: stored with the session, delivered as the
mode allows (blinded readers do not read each other), with a "look here" view checked against the
session's cases, in the snapshot of a joining participant (the most recent), rate-limited, bounded,
and exported as JSON or CSV (no formulas)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from audit.models import AuditEvent
from collab import consumers, protocol, services
from collab.models import ChatMessage
from collab.services import payloads
from tests.collab.conftest import make_session, run_async
from tests.collab.test_call import answer, frames_of
from tests.collab.room import as_organizer, joined

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_buckets() -> None:
    consumers.chat_buckets.buckets.clear()


def say(ref: str, text: str, view: dict[str, Any] | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "chat.send", "ref": ref, "text": text}
    if view is not None:
        frame["view"] = view
    return frame


@run_async
async def test_a_message_with_a_view_reaches_everyone_in_an_open_session(crew: dict[str, Any], session: Any,
                                                                        cookies: dict[str, bytes]) -> None:
    view = {"study": crew["study"], "series": crew["study"] + ".1", "instance": crew["instance2"], "frame": 1,
            "window": {"center": 40, "width": 400}, "point": [3.5, 7], "ignored": True}
    async with joined(session, cookies, "r1", "r2", "org") as room:
        await room.send("r1", say("m1", "  Look at <b>this</b> nodule  ", view))
        mine = await answer(room, "r1")
        assert mine["type"] == "chat.message" and mine["ref"] == "m1"
        message = mine["message"]
        assert message["author"] == "r1" and message["text"] == "Look at <b>this</b> nodule"
        assert message["view"] == {"study": crew["study"], "series": crew["study"] + ".1", "instance": crew["instance2"],
                                   "frame": 1, "window": {"center": 40.0, "width": 400.0}, "point": [3.5, 7.0]}
        for who in ("r2", "org"):
            assert await frames_of(room, who) == [{"type": "chat.message", "message": message}]
        await room.send("r1", say("m1", "Look at this nodule"))  # the same ref again: the same message, to r1 alone
        again = await answer(room, "r1")
        assert again == {"type": "chat.message", "ref": "m1", "message": message}
        assert await frames_of(room, "r2") == []
        state = await room.join("adj")
        assert state["chat"] == [message]
    assert await database_sync_to_async(ChatMessage.objects.count)() == 1


@run_async
async def test_blinded_readers_do_not_read_each_other(crew: dict[str, Any], cookies: dict[str, bytes]) -> None:
    blinded = await database_sync_to_async(make_session)(crew, "blinded")
    async with joined(blinded, cookies, "r1", "r2", "adj", "org") as room:
        await room.send("r1", say("a", "I measure 21 mm"))
        assert (await answer(room, "r1"))["message"]["text"] == "I measure 21 mm"
        assert await frames_of(room, "r2") == []
        for who in ("adj", "org"):
            assert [f["message"]["author"] for f in await frames_of(room, who)] == ["r1"]
        await room.send("org", say("b", "Five minutes left"))  # the organizer speaks to everyone
        for who in ("r1", "r2", "adj"):
            assert [f["message"]["text"] for f in await frames_of(room, who)] == ["Five minutes left"]
        await room.leave("r2")
        state = await room.join("r2")
        assert [m["text"] for m in state["chat"]] == ["Five minutes left"]
    r2 = await database_sync_to_async(services.access_session)(crew["r2"], blinded.pk)
    exported = await database_sync_to_async(services.export_chat)(r2, "json")
    assert '"I measure 21 mm"' not in exported[1] and '"Five minutes left"' in exported[1]


@run_async
async def test_chat_refusals(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "r1", "r2") as room:
        cases = [
            (say("v1", "there", {"study": crew["other_study"]}), "bad_request"),  # not one of the cases
            (say("v2", "there", {"study": crew["study"], "series": crew["study"] + ".1",
                                 "instance": crew["other_instance"]}), "bad_request"),  # not in that study
            (say("v3", "there", {"study": crew["study"], "instance": crew["instance"]}), "bad_request"),
            (say("v4", "there", {"study": "1.2.3.4.5.6"}), "bad_request"),
            (say("v5", "there", {"study": crew["study"], "point": [1]}), "bad_request"),
            (say("v6", "there", {"study": "not-a-uid"}), "bad_request"),
            (say("t1", "x" * (protocol.MAX_CHAT + 1)), "bad_request"),
            (say("t2", "   "), "bad_request"),
            ({"type": "chat.send", "ref": "t3", "text": 5}, "bad_request"),
            ({"type": "chat.send", "text": "no ref"}, "bad_request"),
        ]
        for frame, code in cases:
            await room.send("r1", frame)
            error = await answer(room, "r1")
            assert (error["type"], error["code"]) == ("error", code), (frame, error)
        assert await frames_of(room, "r2") == []
        # five at once pass; the sixth is over the rate (refused views counted too: a fresh bucket)
        consumers.chat_buckets.buckets.clear()
        for index in range(int(consumers.CHAT_BURST) + 1):
            await room.send("r1", say(f"r{index}", f"message {index}"))
        answers = [await answer(room, "r1") for _ in range(int(consumers.CHAT_BURST) + 1)]
        # the refusal is sent at once, the messages once written: in any order
        assert sorted(a["type"] for a in answers) == ["chat.message"] * int(consumers.CHAT_BURST) + ["error"]
        [refused] = [a for a in answers if a["type"] == "error"]
        assert refused["code"] == "rate_limited" and refused["retry_after"] > 0
        assert refused["ref"] == f"r{int(consumers.CHAT_BURST)}"
        # a closed session's chat is closed
        await as_organizer(crew, session, services.close_session)
        await room.all("r2")
        consumers.chat_buckets.buckets.clear()
        await room.send("r2", say("late", "after the end"))
        assert (await answer(room, "r2"))["code"] == "forbidden"
    assert await database_sync_to_async(ChatMessage.objects.count)() == int(consumers.CHAT_BURST)


@run_async
async def test_the_snapshot_holds_the_most_recent_messages(crew: dict[str, Any], session: Any,
                                                           cookies: dict[str, bytes]) -> None:
    def fill() -> None:
        ChatMessage.objects.bulk_create(
            ChatMessage(session=session, author=crew["r1"], text=f"m{i}", client_ref=f"m{i}")
            for i in range(payloads.CHAT_SNAPSHOT + 10))

    await database_sync_to_async(fill)()
    async with joined(session, cookies) as room:
        state = await room.join("r2")
        assert [m["text"] for m in state["chat"]] == [f"m{i}" for i in range(10, payloads.CHAT_SNAPSHOT + 10)]


def test_the_export_is_csv_without_formulas_and_audited(crew: dict[str, Any], transactional_db: None) -> None:
    session = make_session(crew)
    ChatMessage.objects.create(session=session, author=crew["r1"], text="=HYPERLINK(\"http://x\")", client_ref="a",
                               view={"study": crew["study"], "frame": 2})
    ChatMessage.objects.create(session=session, author=crew["org"], text="plain, with a comma", client_ref="b")
    client = Client()
    client.force_login(crew["r2"])
    response = client.get(f"/api/sessions/{session.pk}/chat/?as=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == list(services.chat.CSV_COLUMNS)
    assert [r[2] for r in rows[1:]] == ["r1", "org"]
    assert rows[1][4] == "'=HYPERLINK(\"http://x\")" and rows[1][5] == crew["study"] and rows[1][8] == "2"
    assert rows[2][4] == "plain, with a comma"
    data = client.get(f"/api/sessions/{session.pk}/chat/").json()
    assert [m["text"] for m in data["chat"]] == ["=HYPERLINK(\"http://x\")", "plain, with a comma"]
    assert client.get(f"/api/sessions/{session.pk}/chat/?as=xml").status_code == 400
    assert AuditEvent.objects.filter(action="export", object_type="session", actor_name="r2").count() == 2
    client.force_login(crew["member"])  # a member without a seat
    assert client.get(f"/api/sessions/{session.pk}/chat/").status_code == 403
