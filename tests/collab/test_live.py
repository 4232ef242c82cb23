"""Two daphne processes on two ports share one session through the real Redis channel layer."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.collab.livesetup import prepare, ws_url
from tests.collab.wsclient import Closed, WebSocket
from tests.live import LiveSite

pytestmark = pytest.mark.live
REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_running() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", 6379)) == 0


_unmatched: dict[int, list[dict[str, Any]]] = {}


async def until(ws: WebSocket, test: Any, timeout: float = 20.0) -> dict[str, Any]:
    """The first frame for which ``test(frame)`` is true.

    Frames that do not match are kept for later calls: two processes may deliver in either order.
    The timeout is generous: this checks delivery across processes, not its latency
    (bench/collab.py measures that).
    """
    kept = _unmatched.setdefault(id(ws), [])
    for index, frame in enumerate(kept):
        if test(frame):
            return kept.pop(index)
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if test(frame):
            return frame  # type: ignore[no-any-return]
        kept.append(frame)


@pytest.fixture
def site(tmp_path: Path) -> Any:
    if not redis_running():
        pytest.skip("needs a Redis server on 127.0.0.1:6379")
    site = LiveSite.create(tmp_path, REDIS_URL=REDIS_URL)
    yield site
    site.stop()


def test_readers_on_two_processes_see_each_other(site: LiveSite) -> None:
    info = prepare(site, readers=3)
    first, second = site.start(2)

    async def scenario() -> None:
        r1 = await WebSocket.connect(ws_url(first, info["session"]), cookie=info["cookies"]["reader1"], origin=first)
        r2 = await WebSocket.connect(ws_url(second, info["session"]), cookie=info["cookies"]["reader2"], origin=second)
        try:
            for ws in (r1, r2):
                state = json.loads(await ws.recv())
                assert state["type"] == "session.state" and state["protocol"] == 3
            # presence crosses processes: reader1 sees reader2 come online
            await until(r1, lambda f: f["type"] == "presence" and any(p["user"] == "reader2" and p["online"] for p in f["participants"]))
            # cursors: reader1 moves on process 1, reader2 sees it on process 2, and never its own
            for x in range(5):
                await r1.send(json.dumps({"type": "cursor", "instance": info["instance"], "frame": 1, "x": x, "y": 1}))
                await asyncio.sleep(0.02)
            cursors = await until(r2, lambda f: f["type"] == "cursors" and any(c["x"] == 4 for c in f["cursors"]))
            assert [c["user"] for c in cursors["cursors"]] == ["reader1"]
            # annotations both ways
            for ws, ref in ((r1, "from-1"), (r2, "from-2")):
                await ws.send(json.dumps({"type": "annotation.create", "ref": ref, "annotation": {
                    "instance": info["instance"], "frame": 1, "kind": "length", "points": [[1, 1], [9, 1]]}}))
            mine = await until(r1, lambda f: f.get("ref") == "from-1")
            seen_by_2 = await until(r2, lambda f: f["type"] == "annotation.created" and f["annotation"]["author"] == "reader1")
            assert seen_by_2["annotation"] == mine["annotation"] and seen_by_2["annotation"]["measurements"]["length"] == 4.0
            seen_by_1 = await until(r1, lambda f: f["type"] == "annotation.created" and f["annotation"]["author"] == "reader2")
            assert "ref" not in seen_by_1
            # a non-participant is refused on either process
            outsider = await WebSocket.connect(ws_url(second, 999), cookie=info["cookies"]["reader1"], origin=second)
            with pytest.raises(Closed) as closed:
                await outsider.recv()
            assert closed.value.code == 4404
            # reconnect to the other process: a fresh snapshot with both annotations, once each
            await r1.close()
            r1 = await WebSocket.connect(ws_url(second, info["session"]), cookie=info["cookies"]["reader1"], origin=second)
            state = json.loads(await r1.recv())
            assert sorted(a["author"] for a in state["annotations"]) == ["reader1", "reader2"]
        finally:
            await r1.close()
            await r2.close()

    asyncio.run(scenario())


def test_a_foreign_origin_is_refused_by_the_server(site: LiveSite) -> None:
    info = prepare(site, readers=1)
    (url,) = site.start(1)

    async def scenario() -> None:
        with pytest.raises(Closed) as refused:
            ws = await WebSocket.connect(ws_url(url, info["session"]), cookie=info["cookies"]["reader1"], origin="http://evil.example")
            await ws.recv()
        assert refused.value.code in (403, 1006, 1000)

    asyncio.run(scenario())


def test_signalling_and_chat_cross_processes_to_their_addressee_alone(site: LiveSite) -> None:
    """reader1 on one process, reader2 and reader3 on the other: an offer addressed to reader2 reaches
    reader2 through Redis and nobody else; the answer comes back; a chat message reaches both."""
    info = prepare(site, readers=3)
    first, second = site.start(2)

    async def scenario() -> None:
        cookies = info["cookies"]
        r1 = await WebSocket.connect(ws_url(first, info["session"]), cookie=cookies["reader1"], origin=first)
        r2 = await WebSocket.connect(ws_url(second, info["session"]), cookie=cookies["reader2"], origin=second)
        r3 = await WebSocket.connect(ws_url(second, info["session"]), cookie=cookies["reader3"], origin=second)
        try:
            for ws in (r1, r2, r3):
                assert json.loads(await ws.recv())["type"] == "session.state"
            for ws, name in ((r1, "reader1"), (r2, "reader2"), (r3, "reader3")):
                await ws.send(json.dumps({"type": "call.join", "ref": f"join-{name}"}))
                await until(ws, lambda f, name=name: f.get("ref") == f"join-{name}")
                # everyone's hub knows the roster before anyone signals to the newcomer
                for other in (r1, r2, r3):
                    await until(other, lambda f, name=name: f["type"] == "call" and name in [p["user"] for p in f["peers"]])
            await r1.send(json.dumps({"type": "rtc.offer", "to": "reader2", "sdp": "v=0\r\n"}))
            offer = await until(r2, lambda f: f["type"] == "rtc.offer")
            assert offer == {"type": "rtc.offer", "from": "reader1", "to": "reader2", "sdp": "v=0\r\n"}
            await r2.send(json.dumps({"type": "rtc.answer", "to": "reader1", "sdp": "v=0\r\na=x\r\n"}))
            answer = await until(r1, lambda f: f["type"] == "rtc.answer")
            assert answer["from"] == "reader2"
            await r1.send(json.dumps({"type": "chat.send", "ref": "hello", "text": "hello both"}))
            for ws in (r2, r3):
                assert (await until(ws, lambda f: f["type"] == "chat.message"))["message"]["text"] == "hello both"
            # reader3 (same process as reader2, in the call) received nothing of the offer or answer
            await asyncio.sleep(0.3)
            while True:
                try:
                    await until(r3, lambda f: f["type"].startswith("rtc."), timeout=0.3)
                except asyncio.TimeoutError:
                    break
                raise AssertionError("reader3 received a signal addressed to another")
        finally:
            for ws in (r1, r2, r3):
                await ws.close()

    asyncio.run(scenario())


def test_a_server_told_to_stop_as_its_readers_leave_stops_at_once(site: LiveSite) -> None:
    """SIGTERM while the server still handles the readers' disconnects (each deletes its connection and
    tells the session): a broadcast made as the event loop stops used to wait for that loop for ever,
    and daphne stayed up until killed."""
    info = prepare(site, readers=3)
    (url,) = site.start(1)

    async def scenario() -> None:
        readers = [await WebSocket.connect(ws_url(url, info["session"]), cookie=info["cookies"][name], origin=url)
                   for name in ("reader1", "reader2", "reader3")]
        for ws in readers:
            assert json.loads(await ws.recv())["type"] == "session.state"
        for ws in readers:
            await ws.close()

    asyncio.run(scenario())
    (process,) = site.processes
    process.terminate()  # (at once: some disconnects are still being handled)
    start = time.monotonic()
    process.wait(timeout=8)
    assert time.monotonic() - start < 5
