"""Hardening against abuse (issue 13): frames that crashed the consumer, a snapshot too large to send,
private marks streamed live, the cost of maximum-size shapes, and the audit of the session's acts."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async

from annotations import geometry
from annotations.models import Annotation
from collab import consumers, protocol, services
from collab.consumers import POINT_BURST
from collab.models import Connection
from collab.services import live
from collab.protocol import MAX_POINTS, AnnotationCreate, Shape
from viewer.models import Instance
from tests.collab.conftest import communicator, run_async
from tests.collab.test_api import api
from tests.collab.room import Room, joined, of_type

pytestmark = pytest.mark.django_db(transaction=True)


async def answer(room: Room, who: str, timeout: float = 1.0) -> dict[str, Any]:
    """The next answer to one of ``who``'s writes (a frame with a ``ref``), skipping everything else."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await room.next(who, max(0.01, deadline - time.monotonic()))
        if frame.get("ref") is not None and frame["type"] != "pong":
            return frame


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@run_async
async def test_a_non_text_type_and_deep_nesting_are_answered_and_the_socket_stays(crew: dict[str, Any], session: Any,
                                                                                  cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "r1", drained=True) as room:
        for frame, code in (('{"type": {"a": 1}, "ref": "t"}', "unknown_type"), ('{"type": ["ping"]}', "unknown_type"),
                            (nested(1000), "malformed"), ('{"type": "ping", "ref": "deep", "x": %s}' % nested(1000), "malformed"),
                            (nested(100_000), "malformed")):
            await room.send("r1", frame)
            error = await room.next_of("r1", "error")
            assert error["code"] == code, (frame[:40], error)
        await room.send("r1", {"type": "ping", "ref": "still-there"})
        assert (await room.next_of("r1", "pong"))["ref"] == "still-there"


def online(frame: dict[str, Any], user: str) -> bool:
    return next(p["online"] for p in frame["participants"] if p["user"] == user)


async def presence_until(room: Room, who: str, user: str, is_online: bool) -> None:
    """Read ``who``'s presence frames until one shows ``user`` online (or not)."""
    while online(await room.next_of(who, "presence", 2), user) != is_online:
        pass


@run_async
async def test_a_consumer_ended_by_an_exception_leaves_presence(crew: dict[str, Any], session: Any,
                                                              cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "r2", "r1") as room:
        await presence_until(room, "r2", "r1", True)
        dying = room.open.pop("r1")
        await dying.send_input({"type": "websocket.unheard-of"})  # no handler: the consumer raises
        with pytest.raises(ValueError):
            await dying.wait(1)
        await presence_until(room, "r2", "r1", False)
        assert not await database_sync_to_async(Connection.objects.filter(user=crew["r1"]).exists)()


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
    async with joined(session, cookies, "r1", drained=True) as room:
        for n in range(30):
            await room.send("r1", freehand(crew["instance"], f"f{n}"))
        answers = [await answer(room, "r1", 20) for _ in range(30)]
        created = [a for a in answers if a["type"] == "annotation.created"]
        refused = [a for a in answers if a["type"] == "error"]
        assert len(created) <= POINT_BURST // MAX_POINTS + 1
        assert refused and all(a["code"] == "rate_limited" and a["retry_after"] > 0 for a in refused)


# ------------------------------------------------------------------------------------------------
# A session's snapshot stays sendable; budgets; the organizer deletes any mark
# ------------------------------------------------------------------------------------------------

#: daphne's limit on websocket frames and messages (its default ``websocket_max_frame_size``).
DAPHNE_FRAME_LIMIT = 1024 * 1024


@pytest.fixture(autouse=True)
def _fresh_point_buckets() -> Any:
    yield
    consumers.point_buckets.buckets.clear()  # (session ids repeat from one test to the next)


def precise_outline(n: int = MAX_POINTS, turn: float = 0.0) -> list[list[float]]:
    """A maximum-size outline whose coordinates have every digit (the longest JSON)."""
    return [[8 + 6.000000001 * math.cos(t + turn), 8 + 6.000000001 * math.sin(t + turn)]
            for t in (2 * math.pi * i / n for i in range(n))]


def draw(user: Any, session: Any, instance: str, ref: str, points: list[list[float]]) -> dict[str, Any] | None:
    message = AnnotationCreate(ref, Shape(instance, 1, "freehand", points, ""))
    return services.create_annotation(user, session.pk, message)


async def snapshot_texts(room: Room, who: str) -> list[str]:
    """Join; the snapshot's frames as sent (``session.state`` and any ``annotations.page``)."""
    comm = communicator(room.session.pk, room.cookies[who])
    connected, code = await comm.connect()
    assert connected, code
    room.open[who] = comm
    texts = [await comm.receive_from(10)]
    while json.loads(texts[-1]).get("more"):
        texts.append(await comm.receive_from(5))
    return texts


@run_async
async def test_a_snapshot_of_many_maximum_size_freehands_is_sent_in_frames_under_the_limit(
        crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    for who in ("r1", "r2"):
        for n in range(7):
            await database_sync_to_async(draw)(crew[who], session, crew["instance"], f"{who}-{n}", precise_outline(turn=n / 10))
    async with joined(session, cookies) as room:
        texts = await snapshot_texts(room, "org")
        frames = [json.loads(t) for t in texts]
        assert sum(map(len, texts)) > 2 * DAPHNE_FRAME_LIMIT  # one frame would have been refused
        assert max(len(t.encode()) for t in texts) < DAPHNE_FRAME_LIMIT
        assert all(len(t.encode()) <= protocol.MAX_SERVER_FRAME_CHARS < DAPHNE_FRAME_LIMIT for t in texts)
        assert frames[0]["type"] == "session.state" and frames[0]["protocol"] == protocol.PROTOCOL_LEVEL >= 2
        assert {f["type"] for f in frames[1:]} == {"annotations.page"}
        assert [f["more"] for f in frames] == [True] * (len(frames) - 1) + [False]
        assert len([a for f in frames for a in f["annotations"]]) == 14
        await room.send("org", {"type": "ping", "ref": "joined"})
        assert (await room.next_of("org", "pong"))["ref"] == "joined"


@run_async
async def test_the_points_of_a_participant_and_of_a_session_are_budgeted(
        crew: dict[str, Any], session: Any, cookies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(live.PARTICIPANT_POINT_BUDGET // MAX_POINTS - 1):
        await database_sync_to_async(draw)(crew["r1"], session, crew["instance"], f"r1-{n}", precise_outline(turn=n / 10))
    async with joined(session, cookies, "r1", "r2") as room:
        await room.send("r1", freehand(crew["instance"], "last-that-fits"))
        assert (await answer(room, "r1", 5))["type"] == "annotation.created"
        await room.send("r1", freehand(crew["instance"], "one-too-many"))
        refused = await answer(room, "r1", 5)
        assert (refused["type"], refused["code"], refused["ref"], refused["budget"]) == (
            "error", "too_large", "one-too-many", "participant")
        assert (refused["limit"], refused["used"]) == (live.PARTICIPANT_POINT_BUDGET, live.PARTICIPANT_POINT_BUDGET)
        monkeypatch.setattr(live, "SESSION_POINT_BUDGET", live.PARTICIPANT_POINT_BUDGET + 100)
        await room.send("r2", freehand(crew["instance"], "r2-first"))
        refused = await answer(room, "r2", 5)
        assert (refused["code"], refused["budget"]) == ("too_large", "session")
        await room.send("r2", {"type": "annotation.create", "ref": "small", "annotation": {
            "instance": crew["instance"], "kind": "length", "points": [[1, 1], [5, 5]]}})
        assert (await answer(room, "r2", 5))["type"] == "annotation.created"  # 2 points still fit


@run_async
async def test_an_organizer_deletes_any_session_annotation_over_rest_and_a_reader_cannot(
        crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    from audit.models import AuditEvent

    mark = (await database_sync_to_async(draw)(crew["r1"], session, crew["instance"], "r1-mark", precise_outline()))["annotation"]["id"]
    async with joined(session, cookies, "r2") as room:
        url = f"/api/sessions/{session.pk}/annotations/{mark}/"
        reader = await database_sync_to_async(lambda: api(crew["r2"]).delete(url))()
        assert (reader.status_code, reader.json().get("code")) == (403, "forbidden"), reader.json()
        assert not await database_sync_to_async(lambda: Annotation.objects.get(pk=mark).deleted)()
        organizer = await database_sync_to_async(lambda: api(crew["org"]).delete(url))()
        assert organizer.status_code == 204
        assert (await room.next_of("r2", "annotation.deleted"))["id"] == mark  # live, as any delete
        assert await database_sync_to_async(lambda: Annotation.objects.get(pk=mark).deleted)()
        again = await database_sync_to_async(lambda: api(crew["org"]).delete(url))()
        assert again.status_code == 404

        def audited() -> list[tuple[str, str]]:
            return [(e.actor_name, e.action) for e in AuditEvent.objects.filter(object_type="annotation", object_id=str(mark))]

        assert ("org", "annotation.deleted") in await database_sync_to_async(audited)()



def test_after_a_session_closes_only_an_organizer_deletes_its_marks(crew: dict[str, Any], session: Any) -> None:
    mark = draw(crew["r1"], session, crew["instance"], "r1-mark", precise_outline(n=8))["annotation"]["id"]  # type: ignore[index]
    services.close_session(services.access_session(crew["org"], session.pk))
    url = f"/api/sessions/{session.pk}/annotations/{mark}/"
    assert api(crew["r1"]).delete(url).status_code == 403  # the author: the session is closed
    assert api(crew["org"]).delete(url + "?version=1").status_code == 204
    assert Annotation.objects.get(pk=mark).deleted

# ------------------------------------------------------------------------------------------------
# Private annotations stay private live
# ------------------------------------------------------------------------------------------------


@run_async
async def test_private_annotations_are_not_streamed_to_those_rest_and_the_snapshot_hide_them_from(
        crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    def make_private() -> None:
        crew["project"].private_annotations = True
        crew["project"].save(update_fields=["private_annotations"])

    await database_sync_to_async(make_private)()
    async with joined(session, cookies, "r1", "r2", "org", drained=True) as room:
        await room.send("r1", {"type": "annotation.draft", "instance": crew["instance"], "frame": 1, "kind": "length",
                               "points": [[1, 1], [4, 4]]})
        await room.send("r1", {"type": "annotation.create", "ref": "private", "annotation": {
            "instance": crew["instance"], "kind": "length", "points": [[1, 1], [5, 5]]}})
        mark = (await answer(room, "r1", 5))["annotation"]["id"]
        seen_by_org = await room.all("org", 0.5)
        assert [f["annotation"]["id"] for f in of_type(seen_by_org, "annotation.created")] == [mark]
        assert of_type(seen_by_org, "drafts")
        seen_by_r2 = await room.all("r2", 0.5)
        assert not [f for f in seen_by_r2 if f["type"].startswith("annotation") or f["type"] == "drafts"], seen_by_r2

        def rest(who: str) -> list[int]:
            response = api(crew[who]).get(f"/api/sessions/{session.pk}/annotations/")
            return [a["id"] for a in response.json()["annotations"]]

        assert await database_sync_to_async(rest)("r2") == []
        assert await database_sync_to_async(rest)("org") == [mark]
        await room.leave("r2")
        assert (await room.join("r2"))["annotations"] == []  # the snapshot agrees


# ------------------------------------------------------------------------------------------------
# The session's legally meaningful acts are audited
# ------------------------------------------------------------------------------------------------


def test_every_act_on_a_session_leaves_an_audit_event(crew: dict[str, Any]) -> None:
    from audit.fhir import audit_event
    from audit.models import AuditEvent
    from collab.models import Invitation

    org = api(crew["org"])
    created = org.post("/api/sessions/", {"project": "trial", "title": "Board", "studies": [crew["study"]],
                                          "participants": [{"username": "r1", "role": "reader"}]},
                       content_type="application/json").json()
    base = f"/api/sessions/{created['id']}"
    assert org.patch(base + "/", {"mode": "blinded", "status": "active"}, content_type="application/json").status_code == 200
    assert org.post(base + "/participants/", {"username": "r2", "role": "reader"}, content_type="application/json").status_code == 201
    assert org.post(base + "/participants/", {"username": "r2", "role": "adjudicator"}, content_type="application/json").status_code == 201
    assert org.delete(base + "/participants/r2/").status_code == 204
    invitation = org.post(base + "/invitations/", {"role": "reader", "hours": 2}, content_type="application/json").json()
    revoked = org.post(base + "/invitations/", {"role": "observer"}, content_type="application/json").json()
    assert org.delete(f"{base}/invitations/{revoked['id']}/").status_code == 204
    services.accept_invitation(crew["member"], invitation["url"].rsplit("/", 1)[1])
    assert org.post(base + "/close/").status_code == 200

    session = str(created["id"])
    trail = [(e.actor_name, e.action, e.detail) for e in AuditEvent.objects.filter(object_id=session).order_by("id")]
    acts = [(who, action) for who, action, _ in trail]
    assert acts == [
        ("org", "session.created"), ("org", "session.seated"), ("org", "session.seated"),
        ("org", "session.changed"),
        ("org", "session.seated"), ("org", "session.seated"), ("org", "session.unseated"),
        ("org", "session.invitation.created"), ("org", "session.invitation.created"),
        ("org", "session.invitation.revoked"),
        ("member", "session.seated"), ("member", "session.invitation.accepted"),
        ("org", "session.closed"),
    ], acts
    details = [detail for _, _, detail in trail]
    assert details[1:3] == [{"user": "org", "role": "presenter"}, {"user": "r1", "role": "reader"}]
    assert details[5] == {"user": "r2", "role": "adjudicator", "previous": "reader"}
    assert details[6] == {"user": "r2"}
    assert details[-1]["status"] == "closed"
    assert "Board" not in json.dumps(details)  # free text stays out of the trail
    assert Invitation.objects.get(pk=revoked["id"]).revoked_at is not None
    for event in AuditEvent.objects.filter(object_id=session).values():  # every new action maps to FHIR
        assert audit_event(event)["resourceType"] == "AuditEvent"


# ------------------------------------------------------------------------------------------------
# The same through a real daphne, whose frame limit is 1 MiB
# ------------------------------------------------------------------------------------------------


@pytest.mark.live
def test_a_session_of_many_maximum_size_freehands_stays_joinable_on_daphne(tmp_path: Any) -> None:
    import asyncio

    from tests.collab.livesetup import prepare, ws_url
    from tests.collab.test_live import redis_running, until
    from tests.collab.wsclient import WebSocket
    from tests.live import LiveSite

    if not redis_running():
        pytest.skip("needs a Redis server on 127.0.0.1:6379")
    site = LiveSite.create(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    # 16 shapes, about 2.6 MB of JSON, within both budgets: the outlines turned by 0/10 to 7/10, each twice,
    # shared by four readers, whose burst of points holds four each. reader1 sends five at once, the last
    # past its burst: the points rate answers it, and it is drawn once the wait it was told is over.
    plans = [[0, 1, 2, 3, 4], [5, 6, 7, 0], [1, 2, 3, 4], [5, 6, 7]]
    assert sorted(n for plan in plans for n in plan) == sorted(list(range(8)) * 2)
    assert len(plans[0]) * MAX_POINTS > POINT_BURST >= max(len(plan) for plan in plans[1:]) * MAX_POINTS
    try:
        info = prepare(site, readers=4)
        (url,) = site.start(1)

        async def draw(index: int, ws: WebSocket, turns: list[int]) -> None:
            def create(n: int) -> str:
                return json.dumps({"type": "annotation.create", "ref": f"{index}-{n}", "annotation": {
                    "instance": info["instance"], "kind": "freehand", "points": precise_outline(turn=n / 10)}})

            for n in turns:
                await ws.send(create(n))
            for n in turns:
                reply = await until(ws, lambda f, ref=f"{index}-{n}": f.get("ref") == ref, timeout=30)
                if reply["type"] == "error":  # the points rate: wait as told, once
                    assert reply["code"] == "rate_limited", reply
                    await asyncio.sleep(reply["retry_after"] + 0.1)
                    await ws.send(create(n))
                    reply = await until(ws, lambda f, ref=f"{index}-{n}": f.get("ref") == ref, timeout=30)
                assert reply["type"] == "annotation.created", reply

        async def scenario() -> None:
            readers = [await WebSocket.connect(ws_url(url, info["session"]), cookie=info["cookies"][name], origin=url)
                       for name in ("reader1", "reader2", "reader3", "reader4")]
            try:
                for ws in readers:
                    assert json.loads(await ws.recv())["type"] == "session.state"
                await draw(0, readers[0], plans[0])
                await asyncio.gather(*(draw(index, readers[index], plans[index]) for index in (1, 2, 3)))
                for _ in range(2):  # joins, again and again (a join used to close with 1011 for good)
                    late = await WebSocket.connect(ws_url(url, info["session"]), cookie=info["cookies"]["organizer"], origin=url)
                    frames = [json.loads(await late.recv())]
                    while frames[-1].get("more"):
                        frames.append(json.loads(await late.recv()))
                    assert len([a for f in frames for a in f["annotations"]]) == 16 and len(frames) >= 3
                    await late.send(json.dumps({"type": "ping", "ref": "here"}))
                    assert (await until(late, lambda f: f["type"] == "pong"))["ref"] == "here"
                    await late.close()
            finally:
                for ws in readers:
                    await ws.close()

        asyncio.run(scenario())
    finally:
        site.stop()


# ------------------------------------------------------------------------------------------------
# The pure parts
# ------------------------------------------------------------------------------------------------


def test_snapshot_frames_split_the_annotations_under_the_limit_and_lose_nothing() -> None:
    state = {"type": "session.state", "protocol": protocol.PROTOCOL_LEVEL, "session": {"title": "x" * 300},
             "annotations": [{"id": i, "points": [[i, 0.5]] * (i % 40 + 1)} for i in range(200)]}
    for limit in (1_000, 4_000, 100_000, protocol.MAX_SERVER_FRAME_CHARS):
        texts = protocol.snapshot_frames(state, limit)
        frames = [json.loads(t) for t in texts]
        assert max(map(len, texts)) <= limit
        assert [a for f in frames for a in f["annotations"]] == state["annotations"]
        assert frames[0] == {**state, "annotations": frames[0]["annotations"], "more": len(frames) > 1}
        assert [f["type"] for f in frames[1:]] == ["annotations.page"] * (len(frames) - 1)
        assert [f["more"] for f in frames] == [True] * (len(frames) - 1) + [False]


def test_nesting_is_measured_without_recursion() -> None:
    assert not protocol.too_deep('{"type": "annotation.create", "annotation": {"points": [[1, 2], [3, 4]]}}')
    assert not protocol.too_deep('{"label": "%s"}' % ("[" * 100))  # brackets in text do not count
    assert protocol.too_deep(nested(protocol.MAX_DEPTH + 1))
    assert not protocol.too_deep(nested(protocol.MAX_DEPTH))
    assert protocol.too_deep("[" * 50)  # unbalanced is refused too (it is not JSON)


@run_async
async def test_annotations_on_a_quarantined_image_reach_only_those_who_see_the_image(
        crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    await database_sync_to_async(Instance.objects.filter(sop_instance_uid=crew["instance2"]).update)(quarantined=True)
    async with joined(session, cookies, "r1", "org", drained=True) as room:
        await room.send("org", {"type": "annotation.create", "ref": "held", "annotation": {
            "instance": crew["instance2"], "kind": "length", "points": [[1, 1], [5, 5]]}})
        mark = (await answer(room, "org", 5))["annotation"]["id"]
        assert not [f for f in await room.all("r1", 0.5) if f["type"].startswith("annotation")]

        def rest(who: str) -> list[int]:
            return [a["id"] for a in api(crew[who]).get(f"/api/sessions/{session.pk}/annotations/").json()["annotations"]]

        assert await database_sync_to_async(rest)("r1") == []
        assert await database_sync_to_async(rest)("org") == [mark]


@run_async
async def test_cursors_and_drafts_on_a_quarantined_image_reach_only_those_who_see_the_image(
        crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    """Ephemeral messages name the instance: on a held image they would tell a reader that it exists."""
    await database_sync_to_async(Instance.objects.filter(sop_instance_uid=crew["instance2"]).update)(quarantined=True)
    async with joined(session, cookies, "r1", "org", drained=True) as room:
        await room.send("org", {"type": "cursor", "instance": crew["instance2"], "frame": 1, "x": 3, "y": 3})
        await room.send("org", {"type": "annotation.draft", "instance": crew["instance2"], "frame": 1,
                                "kind": "length", "points": [[1, 1], [4, 4]]})
        await asyncio.sleep(0.2)
        await room.send("org", {"type": "cursor", "instance": crew["instance"], "frame": 1, "x": 7, "y": 7})
        seen = await room.all("r1", 0.5)
        cursors = [c for f in seen if f["type"] == "cursors" for c in f["cursors"]]
        assert [(c["instance"], c["x"]) for c in cursors] == [(crew["instance"], 7)]
        assert not [f for f in seen if f["type"] == "drafts"]
        assert all(crew["instance2"] not in json.dumps(f) for f in seen)
