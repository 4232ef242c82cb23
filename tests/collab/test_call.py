"""The session's call over the websocket: joining and leaving (audited, the roster to everyone), and
WebRTC signalling (rtc.offer, rtc.answer, rtc.ice, rtc.leave) addressed to one participant and
delivered to them alone; refusals (not in the call, unknown target, closed or draft session, blinded
without voice, a seat taken away), malformed payloads and the rate limit."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from channels.db import database_sync_to_async

from audit.models import AuditEvent
from collab import consumers, protocol, services
from collab import hub as hubs
from tests.collab.conftest import make_session, run_async
from tests.collab.room import Room, as_organizer, joined

pytestmark = pytest.mark.django_db(transaction=True)

SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 192.168.1.20 54400 typ host", "sdpMid": "0",
             "sdpMLineIndex": 0, "usernameFragment": "abcd"}
NOISE = ("presence", "cursors", "viewports", "drafts", "call", "session.updated")


@pytest.fixture(autouse=True)
def _fresh_buckets() -> None:
    consumers.chat_buckets.buckets.clear()


async def frames_of(room: Room, who: str, wait: float = 0.3) -> list[dict[str, Any]]:
    """Every frame ``who`` receives within ``wait``, but presence and rosters."""
    return [f for f in await room.all(who, wait) if f["type"] not in NOISE]


async def answer(room: Room, who: str, kind: str | None = None, timeout: float = 2.0) -> dict[str, Any]:
    """The next frame that is not presence, ephemeral or a roster (of type ``kind`` if given)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await room.next(who, max(0.01, deadline - time.monotonic()))
        if frame["type"] not in NOISE or frame["type"] == kind:
            return frame


async def join_call(room: Room, who: str, video: bool = False) -> dict[str, Any]:
    await room.send(who, {"type": "call.join", "ref": f"join-{who}", "video": video})
    reply = await answer(room, who, "call.joined")
    assert reply["type"] == "call.joined" and reply["ref"] == f"join-{who}", reply
    return reply


async def settle(room: Room, *who: str) -> None:
    for name in who:
        await room.all(name, 0.2)


@asynccontextmanager
async def in_call(session: Any, cookies: dict[str, bytes], *who: str) -> AsyncIterator[Room]:
    """:func:`joined`, each of ``who`` joining the call as it joins the session, then all settled."""
    async with joined(session, cookies) as room:
        for name in who:
            await room.join(name)
            await join_call(room, name)
        await settle(room, *who)
        yield room


@run_async
async def test_an_offer_reaches_its_addressee_alone(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "r1", "r2", "adj", "org") as room:
        first = await join_call(room, "r1")
        assert first["peers"] == [] and first["ice_servers"] == [] and first["reach"] == "local"
        second = await join_call(room, "r2", video=True)
        assert second["peers"] == [{"user": "r1", "video": False}]
        await join_call(room, "adj")
        roster = [f for f in await room.all("org") if f["type"] == "call"]
        assert roster[-1]["peers"] == [{"user": "r1", "video": False}, {"user": "r2", "video": True},
                                       {"user": "adj", "video": False}]
        await settle(room, "r1", "r2", "adj")

        await room.send("r1", {"type": "rtc.offer", "to": "r2", "sdp": SDP, "extra": "ignored"})
        await room.send("r1", {"type": "rtc.ice", "to": "r2", "candidate": CANDIDATE})
        await room.send("r1", {"type": "rtc.ice", "to": "r2", "candidate": None})
        got = await frames_of(room, "r2")
        assert got == [
            {"type": "rtc.offer", "from": "r1", "to": "r2", "sdp": SDP},
            {"type": "rtc.ice", "from": "r1", "to": "r2", "candidate": CANDIDATE},
            {"type": "rtc.ice", "from": "r1", "to": "r2", "candidate": None},
        ]
        # the third participant in the call, the organizer outside it and the sender: nothing of it
        assert await frames_of(room, "adj") == [] and await frames_of(room, "org") == []
        assert await frames_of(room, "r1") == []

        await room.send("r2", {"type": "rtc.answer", "to": "r1", "sdp": SDP + "a=answer\r\n"})
        await room.send("r2", {"type": "rtc.leave", "to": "r1"})
        assert await frames_of(room, "r1") == [
            {"type": "rtc.answer", "from": "r2", "to": "r1", "sdp": SDP + "a=answer\r\n"},
            {"type": "rtc.leave", "from": "r2", "to": "r1"},
        ]
        assert await frames_of(room, "adj") == []

        await room.send("r2", {"type": "call.leave", "ref": "bye"})
        assert (await answer(room, "r2", "call.left"))["ref"] == "bye"
        roster = [f for f in await room.all("r1") if f["type"] == "call"]
        assert [p["user"] for p in roster[-1]["peers"]] == ["r1", "adj"]
        await room.send("r1", {"type": "rtc.offer", "to": "r2", "sdp": SDP})  # r2 left the call
        error = await answer(room, "r1")
        assert (error["type"], error["code"], error["to"]) == ("error", "not_found", "r2")
        assert await frames_of(room, "r2") == []
    acts = await database_sync_to_async(lambda: list(
        AuditEvent.objects.filter(action__startswith="session.call.").order_by("id").values_list("action", "actor_name")))()
    assert acts[:4] == [("session.call.joined", "r1"), ("session.call.joined", "r2"), ("session.call.joined", "adj"),
                        ("session.call.left", "r2")]
    # leaving the session leaves the call: r1 and adj, audited when their sockets closed
    assert sorted(acts[4:]) == [("session.call.left", "adj"), ("session.call.left", "r1")]


@run_async
async def test_signalling_refusals(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "r1", "r2", "adj") as room:
        await room.send("r1", {"type": "rtc.offer", "to": "r2", "sdp": SDP})
        error = await answer(room, "r1")
        assert (error["code"], error["message"]) == ("forbidden", "Join the call first.")
        await join_call(room, "r1")
        await join_call(room, "r2")
        await settle(room, "r1", "r2", "adj")
        for target in ("nobody", "adj", "r1", "outsider"):  # unknown, not in the call, oneself, not seated
            await room.send("r1", {"type": "rtc.offer", "to": target, "sdp": SDP})
            error = await answer(room, "r1")
            assert (error["code"], error["to"]) == ("not_found", target), error
        malformed = [
            {"type": "rtc.offer", "to": "r2", "sdp": "x" * (protocol.MAX_SDP + 1)},
            {"type": "rtc.offer", "to": "r2", "sdp": 12},
            {"type": "rtc.offer", "to": "r2"},
            {"type": "rtc.answer", "to": ["r2"], "sdp": SDP},
            {"type": "rtc.offer", "sdp": SDP},
            {"type": "rtc.ice", "to": "r2", "candidate": "candidate:1"},
            {"type": "rtc.ice", "to": "r2", "candidate": {**CANDIDATE, "sdpMLineIndex": True}},
            {"type": "rtc.ice", "to": "r2", "candidate": {**CANDIDATE, "candidate": "c" * 2000}},
            {"type": "rtc.ice", "to": "r2", "candidate": {**CANDIDATE, "sdpMid": 0}},
            {"type": "call.join", "ref": "j", "video": "yes"},
            {"type": "call.join"},
        ]
        for frame in malformed:
            await room.send("r1", frame)
            error = await answer(room, "r1")
            assert error["code"] == "bad_request", (frame, error)
        assert await frames_of(room, "r2") == []
        await room.send("r1", {"type": "rtc.offer", "to": "r2", "sdp": "x" * protocol.MAX_SDP})  # at the bound: sent
        assert (await answer(room, "r2"))["type"] == "rtc.offer"


@run_async
async def test_a_burst_of_signalling_past_the_limit_is_refused(crew: dict[str, Any], session: Any,
                                                                cookies: dict[str, bytes]) -> None:
    async with in_call(session, cookies, "r1", "r2") as room:
        sent = int(consumers.SIGNAL_BURST) + 40
        for _ in range(sent):
            await room.send("r1", {"type": "rtc.ice", "to": "r2", "candidate": CANDIDATE})
        errors = [f for f in await room.all("r1", 0.5) if f["type"] == "error"]
        delivered = [f for f in await room.all("r2", 0.5) if f["type"] == "rtc.ice"]
        assert errors and all(e["code"] == "rate_limited" and e["to"] == "r2" for e in errors)
        assert len(delivered) + len(errors) == sent
        assert len(delivered) < sent


@run_async
async def test_no_call_in_a_closed_or_draft_session(crew: dict[str, Any], cookies: dict[str, bytes]) -> None:
    draft = await database_sync_to_async(make_session)(crew, "open", "draft")
    async with joined(draft, cookies, "r1") as room:
        await room.send("r1", {"type": "call.join", "ref": "j"})
        error = await answer(room, "r1")
        assert (error["code"], error["ref"]) == ("forbidden", "j") and "draft" in error["message"]

    active = await database_sync_to_async(make_session)(crew)
    async with in_call(active, cookies, "r1", "r2") as room:
        await as_organizer(crew, active, services.close_session)
        rosters = [f for f in await room.all("r2") if f["type"] == "call"]
        assert rosters and rosters[-1]["peers"] == []  # the call ended with the session
        await room.send("r1", {"type": "rtc.offer", "to": "r2", "sdp": SDP})
        error = await answer(room, "r1")
        assert error["code"] == "forbidden" and "closed" in error["message"]
        await room.send("r1", {"type": "call.join", "ref": "again"})
        assert (await answer(room, "r1"))["code"] == "forbidden"
        assert await frames_of(room, "r2") == []


@run_async
async def test_a_blinded_session_talks_only_when_its_organizer_allows_voice(crew: dict[str, Any], cookies: dict[str, bytes]) -> None:
    blinded = await database_sync_to_async(make_session)(crew, "blinded")
    async with joined(blinded, cookies) as room:
        state = await room.join("r1")
        assert state["session"]["voice"] is False and state["call"] == {"peers": [], "reach": "local"}
        await room.join("r2")
        await room.send("r1", {"type": "call.join", "ref": "j"})
        error = await answer(room, "r1")
        assert error["code"] == "forbidden" and "does not allow voice" in error["message"]
        await as_organizer(crew, blinded, services.update_session, voice_when_blinded=True)
        updated = await answer(room, "r1", "session.updated")
        assert updated["session"]["voice"] is True
        await join_call(room, "r1")
        await join_call(room, "r2")
        await settle(room, "r1", "r2")
        await room.send("r1", {"type": "rtc.offer", "to": "r2", "sdp": SDP})
        assert (await answer(room, "r2"))["type"] == "rtc.offer"
        # voice taken back: the call ends, and signalling is refused again
        await as_organizer(crew, blinded, services.update_session, voice_when_blinded=False)
        rosters = [f for f in await room.all("r2") if f["type"] == "call"]
        assert rosters[-1]["peers"] == []
        await room.send("r2", {"type": "rtc.answer", "to": "r1", "sdp": SDP})
        assert (await answer(room, "r2"))["code"] == "forbidden"
        await asyncio.sleep(hubs.RECHECK_SECONDS + 0.2)  # a seat check confirms the socket's grant again
        await room.send("r2", {"type": "call.join", "ref": "again"})
        assert (await answer(room, "r2"))["code"] == "forbidden"
        assert await frames_of(room, "r1") == []


@run_async
async def test_a_participant_unseated_in_a_call_leaves_it(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with in_call(session, cookies, "r1", "r2") as room:
        await as_organizer(crew, session, services.remove_participant, "r2")
        assert await room.closed("r2") == 4403
        room.open.pop("r2")
        deadline = time.monotonic() + 2
        while True:  # the roster without r2 (sent when its connection closed)
            frame = await room.next("r1", max(0.01, deadline - time.monotonic()))
            if frame["type"] == "call" and [p["user"] for p in frame["peers"]] == ["r1"]:
                break
        await room.send("r1", {"type": "rtc.offer", "to": "r2", "sdp": SDP})
        assert (await answer(room, "r1"))["code"] == "not_found"


@run_async
async def test_turn_credentials_are_issued_per_user_with_a_time_limit(crew: dict[str, Any], session: Any,
                                                                     cookies: dict[str, bytes], settings: Any) -> None:
    settings.CROSSREAD = {"ICE_SERVERS": [{"urls": "stun:stun.example.org:3478"},
                                          {"urls": ["turn:turn.example.org:3478?transport=udp"]}],
                          "TURN_SECRET": "north-sea", "TURN_TTL_SECONDS": 600}
    async with joined(session, cookies, "r1") as room:
        before = int(time.time())
        reply = await join_call(room, "r1")
        stun, turn = reply["ice_servers"]
        assert stun == {"urls": ["stun:stun.example.org:3478"]} and reply["reach"] == "turn"
        expiry, user = turn["username"].split(":")
        assert before + 600 <= int(expiry) <= int(time.time()) + 600 and user == str(crew["r1"].pk)
        expected = base64.b64encode(hmac.new(b"north-sea", turn["username"].encode(), hashlib.sha1).digest()).decode()
        assert turn["credential"] == expected


def test_the_call_messages_parse_strictly() -> None:
    offer = protocol.parse(json.dumps({"type": "rtc.offer", "to": "r2", "sdp": SDP}))
    assert isinstance(offer, protocol.RtcOffer) and offer.frame("r1") == {"type": "rtc.offer", "from": "r1", "to": "r2", "sdp": SDP}
    ice = protocol.parse(json.dumps({"type": "rtc.ice", "to": "r2", "candidate": {"candidate": "c", "foo": 1}}))
    assert ice.frame("r1")["candidate"] == {"candidate": "c", "sdpMid": None, "sdpMLineIndex": None, "usernameFragment": None}
    assert protocol.parse('{"type": "call.join", "ref": "a"}') == protocol.CallJoin("a", False)
    for frame in ({"type": "rtc.leave"}, {"type": "rtc.leave", "to": "u" * 151}, {"type": "rtc.answer", "to": "r", "sdp": ""}):
        with pytest.raises(protocol.ProtocolError) as refused:
            protocol.parse(json.dumps(frame))
        assert refused.value.code == "bad_request"


def test_who_may_call_and_who_reads_whose_chat() -> None:
    from collab.visibility import Seat, What, may_call, may_see

    reader, other, organizer = Seat("r1", "reader"), Seat("r2", "reader"), Seat("org", "presenter", organizer=True)
    observer = Seat("w", "observer")
    assert may_call(reader, status="active", mode="open", voice_when_blinded=False) is None
    assert may_call(observer, status="active", mode="open", voice_when_blinded=False) is None  # observers listen
    assert may_call(None, status="active", mode="open", voice_when_blinded=True) is not None
    assert "closed" in str(may_call(reader, status="closed", mode="open", voice_when_blinded=True))
    assert "voice" in str(may_call(reader, status="active", mode="blinded", voice_when_blinded=False))
    assert may_call(reader, status="active", mode="blinded", voice_when_blinded=True) is None
    assert may_see(other, reader, "open", What.CHAT) and not may_see(other, reader, "blinded", What.CHAT)
    assert may_see(reader, reader, "blinded", What.CHAT) and may_see(other, organizer, "blinded", What.CHAT)
    assert may_see(organizer, reader, "blinded", What.CHAT) and may_see(Seat("a", "adjudicator"), reader, "blinded", What.CHAT)
    assert not may_see(other, reader, "open", What.CHAT, private=True)
    assert may_see(Seat("po", "reader", True, True), reader, "open", What.CHAT, private=True)


def test_ice_configuration() -> None:
    from collab import ice

    assert ice.check_servers([{"urls": "stun:s.example.org"}]) == [{"urls": ["stun:s.example.org"]}]
    for bad in ({"urls": "stun:x"}, [{"urls": "http://x"}], [{"urls": []}], [{"urls": "stun:x", "extra": 1}],
                [{"urls": "turn:x", "credential": 5}]):
        with pytest.raises(ValueError):
            ice.check_servers(bad)
    with pytest.raises(ValueError, match="TURN_SECRET"):
        ice.check_config([{"urls": "turn:t.example.org"}], "")
    fixed = [{"urls": ["turn:t.example.org"], "username": "u", "credential": "c"}]
    assert ice.ice_servers(fixed, secret="s", user="7", now=1000, ttl=60) == fixed  # its own credentials kept
    assert ice.turn_credentials("s", "7", 1000.9, 60)[0] == "1060:7"
    assert [ice.reach(s) for s in ([], [{"urls": ["stun:x"]}], fixed)] == ["local", "stun", "turn"]


@run_async
async def test_an_observer_may_listen_in(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    """Observers watch and do not annotate, but they may join the call (as in a reading room)."""
    async with joined(session, cookies, "r1", "watcher") as room:
        await join_call(room, "r1")
        reply = await join_call(room, "watcher")
        assert reply["peers"] == [{"user": "r1", "video": False}]
        await settle(room, "r1", "watcher")
        await room.send("watcher", {"type": "rtc.offer", "to": "r1", "sdp": SDP})
        assert (await answer(room, "r1"))["from"] == "watcher"


def test_a_broken_call_configuration_stops_the_start(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    from crossread.env import get_json

    settings.CROSSREAD = {"ICE_SERVERS": [{"urls": "turn:turn.example.org"}]}  # TURN without a secret
    with pytest.raises(ImproperlyConfigured, match="CROSSREAD_TURN_SECRET"):
        apps.get_app_config("collab").ready()
    settings.CROSSREAD = {"ICE_SERVERS": [{"urls": "turn:turn.example.org"}], "TURN_SECRET": "s"}
    apps.get_app_config("collab").ready()
    monkeypatch.setenv("CROSSREAD_ICE_SERVERS", "[{'urls': 1}")
    with pytest.raises(ImproperlyConfigured, match="must be JSON"):
        get_json("CROSSREAD_ICE_SERVERS", [])
