"""The websocket protocol through Channels' WebsocketCommunicator and the real ASGI application.

Every broadcast goes through the ``sent`` fixture, which round-trips it through JSON as Redis would.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection

from annotations.models import Annotation
from collab import protocol, services
from collab.events import Origin
from collab.consumers import EPHEMERAL_BURST, EPHEMERAL_RATE
from collab import hub as hubs
from collab.hub import TICK
from tests.collab.conftest import communicator, make_session, run_async
from tests.collab.room import as_organizer, joined, length, of_type
from tests.factories.models import create_user
from collab.hub import RECHECK_SECONDS
from collab.models import Participant, ReadingSession
from crossread.errors import BadRequest, DomainError
from viewer.models import Membership

User = get_user_model()

pytestmark = pytest.mark.django_db(transaction=True)


@run_async
async def test_state_on_join_then_presence_to_everyone(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies) as room:
        state = await room.join("r1")
        assert state["protocol"] == protocol.PROTOCOL_LEVEL == 3
        assert state["session"]["id"] == session.pk and state["session"]["mode"] == "open"
        assert state["session"]["cases"][0]["study"] == crew["study"]
        assert state["you"]["user"] == "r1" and state["you"]["role"] == "reader" and state["you"]["can_annotate"]
        assert {p["user"]: p["online"] for p in state["participants"]} == {
            "org": False, "r1": True, "r2": False, "adj": False, "watcher": False}
        assert state["annotations"] == []
        assert (await room.next("r1"))["type"] == "presence"  # its own join, broadcast to all
        await room.join("r2")
        presence = await room.next_of("r1", "presence")
        assert {p["user"] for p in presence["participants"] if p["online"]} == {"r1", "r2"}
        await room.leave("r2")
        presence = await room.next_of("r1", "presence")
        assert {p["user"] for p in presence["participants"] if p["online"]} == {"r1"}


@run_async
async def test_cursors_are_coalesced_per_tick_and_never_echoed(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "r1", "r2", "org", drained=True) as room:
        started = time.monotonic()
        for i in range(20):
            await room.send("r1", {"type": "cursor", "instance": crew["instance"], "frame": 1, "x": i, "y": 2 * i, "extra": "ignored"})
        await room.send("r2", {"type": "cursor", "instance": crew["instance"], "frame": 1, "x": 5, "y": 5})
        frames = {who: await room.all(who) for who in ("r1", "r2", "org")}
        elapsed = time.monotonic() - started
        org = of_type(frames["org"], "cursors")
        assert 1 <= len(org) <= elapsed / TICK + 1  # at most one frame per tick
        latest = {c["user"]: c for frame in org for c in frame["cursors"]}
        assert latest["r1"] == {"user": "r1", "instance": crew["instance"], "frame": 1, "x": 19.0, "y": 38.0}
        assert latest["r2"]["x"] == 5.0
        assert all(len({c["user"] for c in f["cursors"]}) == len(f["cursors"]) for f in org)  # one per user
        assert {c["user"] for f in of_type(frames["r1"], "cursors") for c in f["cursors"]} == {"r2"}  # no echo
        assert {c["user"] for f in of_type(frames["r2"], "cursors") for c in f["cursors"]} == {"r1"}


@run_async
async def test_viewports_and_drafts_go_to_the_others(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "org", "r1", drained=True) as room:
        viewport = {"type": "viewport", "study": crew["study"], "series": crew["study"] + ".1", "instance": crew["instance"],
                    "frame": 1, "window": {"center": 40, "width": 400}, "zoom": 2, "pan": [3, -4], "invert": False}
        await room.send("org", viewport)
        await room.send("r1", {"type": "annotation.draft", "instance": crew["instance"], "frame": 1, "kind": "length",
                               "points": [[1, 1], [4, 4]]})
        await room.send("r1", {"type": "annotation.draft", "points": []})
        r1, org = await room.all("r1"), await room.all("org")
        [got] = of_type(r1, "viewports")
        assert got["viewports"] == [{"user": "org", **{k: v for k, v in viewport.items() if k != "type"},
                                     "window": {"center": 40.0, "width": 400.0}, "zoom": 2.0, "pan": [3.0, -4.0]}]
        drafts = [d for f in of_type(org, "drafts") for d in f["drafts"]]
        assert drafts[-1] == {"user": "r1", "points": []}  # cleared; the shape was sent before, or coalesced away
        assert not of_type(r1, "drafts") and not of_type(org, "viewports")


@run_async
async def test_create_update_delete_and_conflict(crew: dict[str, Any], session: Any, cookies: dict[str, bytes], sent: list[dict[str, Any]]) -> None:
    async with joined(session, cookies, "r1", "r2", drained=True) as room:
        sent.clear()
        await room.send("r1", length(crew["instance"], "c-1"))
        mine = await room.next_of("r1", "annotation.created")
        theirs = await room.next_of("r2", "annotation.created")
        assert mine["ref"] == "c-1" and "ref" not in theirs
        annotation = mine["annotation"]
        assert theirs["annotation"] == annotation
        assert (annotation["author"], annotation["version"], annotation["kind"]) == ("r1", 1, "length")
        assert (annotation["measurements"]["length"], annotation["measurements"]["unit"]) == (5.0, "mm")  # 10 px of 0.5 mm
        assert len([m for m in sent if m["kind"] == "annotation"]) == 1

        await room.send("r1", {"type": "annotation.update", "ref": "u-1", "id": annotation["id"], "version": 1,
                               "annotation": {"points": [[0, 0], [0, 8]], "label": "target 1"}})
        updated = await room.next_of("r2", "annotation.updated")
        assert (updated["annotation"]["version"], updated["annotation"]["label"]) == (2, "target 1")
        assert updated["annotation"]["measurements"]["length"] == 4.0
        assert (await room.next_of("r1", "annotation.updated"))["ref"] == "u-1"

        await room.send("r1", {"type": "annotation.update", "ref": "u-2", "id": annotation["id"], "version": 1,
                               "annotation": {"label": "stale"}})
        conflict = await room.next_of("r1", "error")
        assert (conflict["code"], conflict["ref"]) == ("conflict", "u-2")
        assert conflict["annotation"]["version"] == 2 and conflict["annotation"]["label"] == "target 1"
        assert await room.all("r2", 0.1) == []
        assert (await database_sync_to_async(Annotation.objects.get)(pk=annotation["id"])).label == "target 1"

        # r2 may not change r1's annotation (authors and organizers do); nothing is written
        await room.send("r2", {"type": "annotation.delete", "ref": "d-0", "id": annotation["id"]})
        refused = await room.next_of("r2", "error")
        assert (refused["code"], refused["ref"]) == ("forbidden", "d-0")

        await room.send("r1", {"type": "annotation.delete", "ref": "d-1", "id": annotation["id"]})
        deleted = await room.next_of("r2", "annotation.deleted")
        assert deleted["id"] == annotation["id"] and "ref" not in deleted
        assert (await room.next_of("r1", "annotation.deleted"))["ref"] == "d-1"
        assert len([m for m in sent if m["kind"] == "annotation"]) == 3


@run_async
async def test_the_same_ref_twice_is_one_annotation(crew: dict[str, Any], session: Any, cookies: dict[str, bytes], sent: list[dict[str, Any]]) -> None:
    async with joined(session, cookies, "r1", "r2", drained=True) as room:
        sent.clear()
        await room.send("r1", length(crew["instance"], "same"))
        first = await room.next_of("r1", "annotation.created")
        await room.send("r1", length(crew["instance"], "same", x=12))  # a retry: the first one stands
        second = await room.next_of("r1", "annotation.created")
        assert second["annotation"]["id"] == first["annotation"]["id"] and second["ref"] == "same"
        assert len(of_type(await room.all("r2"), "annotation.created")) == 1
        assert await database_sync_to_async(Annotation.objects.count)() == 1
        assert len([m for m in sent if m["kind"] == "annotation"]) == 1


@run_async
async def test_blinded_readers_see_only_their_own(crew: dict[str, Any], blinded: Any, cookies: dict[str, bytes]) -> None:
    async with joined(blinded, cookies, "r1", "r2", "adj", "org", drained=True) as room:
        await room.send("r1", length(crew["instance"], "b-1"))
        await room.send("r1", {"type": "cursor", "instance": crew["instance"], "frame": 1, "x": 1, "y": 1})
        await room.send("r1", {"type": "annotation.draft", "instance": crew["instance"], "frame": 1, "kind": "point", "points": [[2, 2]]})
        await room.send("org", {"type": "cursor", "instance": crew["instance"], "frame": 1, "x": 3, "y": 3})
        frames = {who: await room.all(who) for who in ("r1", "r2", "adj", "org")}
        for who in ("r1", "adj", "org"):
            assert len(of_type(frames[who], "annotation.created")) == 1, who
        assert not of_type(frames["r2"], "annotation.created")
        assert not of_type(frames["r2"], "drafts")
        # r2 follows the presenter (org) but never sees another reader's cursor
        assert {c["user"] for f in of_type(frames["r2"], "cursors") for c in f["cursors"]} == {"org"}
        assert {c["user"] for f in of_type(frames["adj"], "cursors") for c in f["cursors"]} == {"r1", "org"}
        assert of_type(frames["adj"], "drafts")
        # the snapshot and the REST API apply the same rule
        await room.leave("r2")
        assert (await room.join("r2"))["annotations"] == []
        assert len((await room.join("adj"))["annotations"]) == 1
        from django.test import Client

        from tests.factories.models import token_for

        def rest(who: str) -> list[Any]:
            client = Client(HTTP_AUTHORIZATION=f"Token {token_for(crew[who])}")
            return client.get(f"/api/sessions/{blinded.pk}/annotations/").json()["annotations"]  # type: ignore[no-any-return]

        assert await database_sync_to_async(rest)("r2") == []
        assert len(await database_sync_to_async(rest)("r1")) == 1
        assert len(await database_sync_to_async(rest)("org")) == 1


@pytest.mark.parametrize("who, session_id, code", [
    ("member", None, 4403),  # a project member without a seat
    ("outsider", None, 4404),  # not even in the project: existence does not leak
    (None, None, 4401),  # not logged in
    ("org", "999999", 4404),
    ("org", "abc", 4404),
    ("org", "-1", 4404),
    ("org", "0", 4404),
    ("org", "1.5", 4404),
    ("org", "%E2%98%83", 4404),
])
@run_async
async def test_refusals(crew: dict[str, Any], session: Any, cookies: dict[str, bytes], who: str | None, session_id: str | None, code: int) -> None:
    comm = communicator(session_id or session.pk, cookies[who] if who else None)
    connected, _ = await comm.connect()
    assert connected
    closed = await comm.receive_output(1)
    assert closed == {"type": "websocket.close", "code": code}
    await comm.disconnect()


@run_async
async def test_a_foreign_origin_is_refused(session: Any, cookies: dict[str, bytes]) -> None:
    comm = communicator(session.pk, cookies["r1"], origin=b"http://evil.example")
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()


@run_async
async def test_malformed_and_unauthorised_messages_get_errors_and_the_socket_stays(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "r1", "watcher", drained=True) as room:
        cases = [
            ("not json", "malformed", None),
            ("[1, 2]", "malformed", None),
            ({"type": "telepathy", "ref": "t"}, "unknown_type", "t"),
            ({"type": "cursor", "instance": "not-a-uid", "x": 1, "y": 1}, "bad_request", None),
            ({"type": "cursor", "instance": crew["instance"], "x": "NaN", "y": 1}, "bad_request", None),
            ({"type": "annotation.create", "annotation": {}}, "bad_request", None),
            ({"type": "annotation.create", "ref": "k", "annotation": {"instance": crew["instance"], "kind": "circle", "points": [[0, 0]]}}, "bad_request", "k"),
            (length(crew["other_instance"], "elsewhere"), "bad_request", "elsewhere"),  # not one of the session's cases
            (length(crew["instance"], "outside", x=99), "bad_request", "outside"),  # outside the 16x16 image
            ({"type": "annotation.update", "ref": "u", "id": 999, "version": 1, "annotation": {"label": "x"}}, "not_found", "u"),
            ({"type": "annotation.delete", "ref": "d", "id": "7"}, "bad_request", "d"),
        ]
        for frame, code, ref in cases:
            await room.send("r1", frame)
            error = await room.next_of("r1", "error")
            assert (error["code"], error["ref"]) == (code, ref), (frame, error)
            assert error["message"]
        await room.send("watcher", length(crew["instance"], "w"))  # observers watch
        error = await room.next_of("watcher", "error")
        assert (error["code"], error["ref"]) == ("forbidden", "w")
        assert await database_sync_to_async(Annotation.objects.count)() == 0  # nothing half-written
        await room.send("r1", {"type": "ping", "ref": "still-there"})
        assert (await room.next_of("r1", "pong"))["ref"] == "still-there"


@run_async
async def test_a_flood_is_dropped_and_counted(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "r1", "r2", drained=True) as room:
        started = time.monotonic()
        for i in range(400):
            await room.send("r1", {"type": "cursor", "instance": crew["instance"], "x": i % 16, "y": 1})
        await room.send("r1", {"type": "ping", "ref": "p"})
        frames = [await room.next("r1", 5)]
        while frames[-1]["type"] != "pong":
            frames.append(await room.next("r1", 5))
        elapsed = time.monotonic() - started
        errors = of_type(frames, "error")
        assert errors and errors[0]["code"] == "rate_limited" and errors[0]["dropped"] >= 1
        assert len(errors) <= 2  # notices are themselves limited (at most one a second)
        pong = of_type(frames, "pong")[0]
        # The bucket lets through its burst and then its rate for as long as the flood took to arrive
        # (a slow machine takes longer, so lets more through): everything else is dropped, nothing queued.
        let_through = EPHEMERAL_BURST + EPHEMERAL_RATE * elapsed
        assert pong["received"] == 401 and 400 - let_through <= pong["dropped"] < 400
        assert len(of_type(await room.all("r2"), "cursors")) <= 10  # coalesced, not queued
        for i in range(100):  # writes over their budget are answered, each with its ref
            await room.send("r1", {"type": "ping", "ref": f"w{i}"})
        frames = [await room.next("r1", 5) for _ in range(100)]
        assert 30 <= len(of_type(frames, "pong")) < 100
        assert {f["code"] for f in of_type(frames, "error")} == {"rate_limited"}


@run_async
async def test_a_removed_participant_is_disconnected_at_once(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "r1", "r2") as room:
        await as_organizer(crew, session, services.remove_participant, "r2")
        assert await room.closed("r2") == 4403
        presence = of_type(await room.all("r1"), "presence")[-1]
        assert "r2" not in {p["user"] for p in presence["participants"]}


LOSSES = {
    # however access is taken away (a service, the admin, a script using the ORM), the socket closes at
    # once, without waiting for a message, with the code a new connection would get
    "project membership deleted": (lambda crew, session: Membership.objects.filter(user=crew["r1"]).delete(), 4404),
    "seat deleted": (lambda crew, session: Participant.objects.filter(user=crew["r1"], session=session).delete(), 4403),
    "account deactivated": (lambda crew, session: saved(User.objects.get(pk=crew["r1"].pk), is_active=False), 4401),
}


def saved(instance: Any, **changes: Any) -> None:
    for field, value in changes.items():
        setattr(instance, field, value)
    instance.save()


@pytest.mark.parametrize("loss", LOSSES)
@run_async
async def test_access_lost_elsewhere_closes_the_socket_at_once(crew: dict[str, Any], session: Any, cookies: dict[str, bytes], loss: str) -> None:
    take_away, code = LOSSES[loss]
    async with joined(session, cookies, "r1", "r2") as room:
        await database_sync_to_async(take_away)(crew, session)
        assert await room.closed("r1") == code
        await room.send("r2", {"type": "ping", "ref": "r2-still-here"})
        assert (await room.next_of("r2", "pong"))["ref"] == "r2-still-here"


def delete_membership_without_a_signal(user: Any) -> None:
    """Raw SQL: no ORM signal tells the hubs; only their seat check can notice."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Membership._meta.db_table} WHERE user_id = %s", [user.pk])


@run_async
async def test_access_lost_without_a_signal_ends_within_a_second(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    """Raw SQL sends no signal: the hub's once-a-second check catches it at the next message."""
    async with joined(session, cookies, "r1", "r2") as room:
        await room.all("r1")
        await database_sync_to_async(delete_membership_without_a_signal)(crew["r1"])
        await asyncio.sleep(RECHECK_SECONDS)
        await room.send("r1", {"type": "cursor", "instance": crew["instance"], "frame": 1, "x": 1, "y": 1})
        assert await room.closed("r1") == 4404
        assert not of_type(await room.all("r2"), "cursors")  # the cursor was not relayed


@run_async
async def test_a_session_in_use_checks_its_seats_ahead_so_no_message_waits(crew: dict[str, Any], session: Any,
                                                                          cookies: dict[str, bytes]) -> None:
    """Messages keep coming for longer than a seat check lasts: the hub checked in the background each
    time, so none of them waited for a check (hub.CHECK_AHEAD_SECONDS)."""
    async with joined(session, cookies, "r1") as room:
        hub = hubs._hubs[session.pk]
        checks_before = hub.stats["seat_checks"]
        steady = time.monotonic() + 3 * RECHECK_SECONDS
        while time.monotonic() < steady:
            await room.send("r1", {"type": "cursor", "instance": crew["instance"], "frame": 1, "x": 1, "y": 1})
            await asyncio.sleep(0.05)
        await room.send("r1", {"type": "ping", "ref": "last"})
        assert (await room.next_of("r1", "pong"))["ref"] == "last"
        assert hub.stats["seat_checks"] - checks_before >= 3
        assert hub.stats["waits_for_seat_check"] == 0


@run_async
async def test_access_lost_without_a_signal_ends_within_a_second_even_without_a_message(
        crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    """In a session in use, the background check closes a socket that lost access before it sends anything."""
    async with joined(session, cookies, "r1") as room:
        await database_sync_to_async(delete_membership_without_a_signal)(crew["r1"])
        lost = time.monotonic()
        assert await room.closed("r1") == 4404
        assert time.monotonic() - lost < RECHECK_SECONDS + 0.5


@run_async
async def test_a_quiet_session_stops_checking_ahead(monkeypatch: pytest.MonkeyPatch, crew: dict[str, Any],
                                                   session: Any, cookies: dict[str, bytes]) -> None:
    """Open sockets that send nothing cost no queries; the first message after the quiet spell waits once."""
    monkeypatch.setattr(hubs, "IN_USE_SECONDS", 0.5)
    async with joined(session, cookies, "r1") as room:
        hub = hubs._hubs[session.pk]
        await asyncio.sleep(0.5 + RECHECK_SECONDS)  # quiet from here on
        checks = hub.stats["seat_checks"]
        await asyncio.sleep(2 * RECHECK_SECONDS)
        assert hub.stats["seat_checks"] == checks
        await room.send("r1", {"type": "ping", "ref": "back"})
        assert (await room.next_of("r1", "pong"))["ref"] == "back"
        assert (hub.stats["seat_checks"], hub.stats["waits_for_seat_check"]) == (checks + 1, 1)


@run_async
async def test_a_hub_prepares_the_live_writes_once_when_it_starts(monkeypatch: pytest.MonkeyPatch, crew: dict[str, Any],
                                                                session: Any, cookies: dict[str, bytes]) -> None:
    prepared: list[int] = []
    monkeypatch.setattr(services, "prepare_live_writes", prepared.append)
    async with joined(session, cookies, "r1", "r2") as room:
        await room.send("r1", {"type": "ping", "ref": "after"})
        assert (await room.next_of("r1", "pong"))["ref"] == "after"
        assert prepared == [session.pk]


@pytest.mark.django_db
def test_preparing_the_live_writes_costs_two_queries(session: Any,
                                                     django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(2):  # the session, then a lookup that finds nothing
        services.prepare_live_writes(session.pk)
    with django_assert_num_queries(1):
        services.prepare_live_writes(10**9)  # a session gone meanwhile: nothing to do


@run_async
async def test_a_role_change_elsewhere_refreshes_the_seat(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies) as room:
        assert (await room.join("r1"))["you"]["can_annotate"]
        await database_sync_to_async(lambda: saved(Membership.objects.get(user=crew["r1"]), role="viewer"))()
        state = await room.next_of("r1", "session.state")
        assert not state["you"]["can_annotate"]
        await room.send("r1", length(crew["instance"], "as-viewer"))
        assert (await room.next_of("r1", "error"))["code"] == "forbidden"


@pytest.mark.django_db
def test_a_live_annotation_reads_each_thing_once(crew: dict[str, Any], session: Any, sent: list[dict[str, Any]],
                                                  django_assert_max_num_queries: Any,
                                                  django_capture_on_commit_callbacks: Any) -> None:
    """The seat (session, membership, participant), the instance in the session's cases, the ref, then the
    write: nothing read twice before the broadcast (each query is a GIL hand-off under load)."""
    message = protocol.parse(json.dumps(length(crew["instance"], "once")))
    with django_capture_on_commit_callbacks(execute=True):  # (the broadcast, then the audit row)
        with django_assert_max_num_queries(9):  # 5 reads, then the write
            services.create_annotation(crew["r1"], session.pk, message, origin=Origin("connection", "once"))
    assert [m["kind"] for m in sent] == ["annotation"]


@pytest.mark.django_db
def test_a_write_whose_access_the_seat_check_confirmed_reads_nothing(
        crew: dict[str, Any], session: Any, sent: list[dict[str, Any]], django_assert_num_queries: Any,
        django_capture_on_commit_callbacks: Any) -> None:
    """What a websocket's writes cost once the hub's check vouches for its access: the points the session
    holds (services.live.check_point_budget), the inserts, and the instance once per session
    (hub.SessionHub.confirms, services.live._writer)."""
    access = services.seated_access(crew["r1"], session.pk)
    assert services.check_seats(session.pk, ["r1"]).grants["r1"] == access.grant
    instances: dict[str, Any] = {}
    # First the member's blinding facts (viewer.access: once per access) and the instance in the session's
    # cases, then nothing.
    for ref, reads in (("first", 2), ("second", 0)):
        message = protocol.parse(json.dumps(length(crew["instance"], ref)))
        with django_capture_on_commit_callbacks(execute=True):
            with django_assert_num_queries(reads + 4):  # points, savepoint, insert, release
                services.create_annotation(crew["r1"], session.pk, message, confirmed=access, instances=instances,
                                           origin=Origin("connection", ref))
    assert [m["kind"] for m in sent] == ["annotation", "annotation"]
    stranger = services.seated_access(crew["r2"], session.pk)  # another user's access is not used
    with pytest.raises(BadRequest):
        services.create_annotation(crew["r1"], session.pk, protocol.parse(json.dumps(
            {**length(crew["instance"], "third"), "annotation": {**length(crew["instance"], "x")["annotation"],
                                                                  "instance": "1.2.3.4"}})),
            confirmed=stranger, instances=instances, origin=Origin("connection", "third"))


@pytest.mark.django_db
def test_seats_are_checked_for_any_number_of_readers_in_two_statements(crew: dict[str, Any], session: Any,
                                                                      django_assert_num_queries: Any) -> None:
    everyone = ["org", "r1", "r2", "adj", "watcher", "nobody-by-that-name"]
    with django_assert_num_queries(2):  # the session; the users with their memberships and seats
        checked = services.check_seats(session.pk, everyone)
    assert checked.mode == "open"
    assert {name: (seat.role, seat.organizer) for name, seat in checked.seats.items()} == {
        "org": ("presenter", True), "r1": ("reader", False), "r2": ("reader", False),
        "adj": ("adjudicator", False), "watcher": ("observer", False)}
    assert checked.refused == {"nobody-by-that-name": "not_authenticated"}
    checked = services.check_seats(session.pk, ["member", "outsider"])
    assert checked.refused == {"member": "forbidden", "outsider": "not_found"}
    with django_assert_num_queries(2):
        services.check_seats(session.pk, ["r1"])
    assert services.check_seats(10**9, ["r1"]).refused == {"r1": "not_found"}


@pytest.mark.django_db
@pytest.mark.parametrize("mode,status", [("open", "active"), ("blinded", "closed")])
def test_the_seat_check_decides_as_seated_access_does(crew: dict[str, Any], mode: str, status: str) -> None:
    """For every kind of person, the hub's check gives the seat, grant or refusal a new connection would."""
    session = make_session(crew, mode=mode)
    ReadingSession.objects.filter(pk=session.pk).update(status=status)
    second_organizer = create_user("second-organizer")
    Membership.objects.create(project=crew["project"], user=second_organizer, role="organizer")
    Participant.objects.create(session=session, user=second_organizer, role="reader", colour="#000000")
    gone = create_user("gone")
    Membership.objects.create(project=crew["project"], user=gone, role="reader")
    Participant.objects.create(session=session, user=gone, role="reader", colour="#000001")
    saved(gone, is_active=False)
    people = ["org", "r1", "r2", "adj", "watcher", "member", "outsider", "second-organizer", "gone", "nobody"]
    checked = services.check_seats(session.pk, people)
    User = get_user_model()
    for name in people:
        user = User.objects.filter(username=name).first()
        try:
            access = services.seated_access(user, session.pk) if user is not None and user.is_active else None
        except DomainError as error:
            assert checked.refused[name] == error.code, name
            continue
        if access is None:
            assert checked.refused[name] == "not_authenticated", name
            continue
        assert checked.seats[name] == access.seat, name
        assert checked.grants[name] == access.grant, name
    assert checked.seats["second-organizer"].organizer and not checked.seats["r1"].organizer
    assert checked.mode == mode


def apply(state: dict[str, Any], frame: dict[str, Any]) -> dict[str, Any]:
    """What session.js does with a frame, on a snapshot (for verify_action-style checks)."""
    annotations = {a["id"]: a for a in state["annotations"]}
    if frame["type"] in ("annotation.created", "annotation.updated"):
        annotations[frame["annotation"]["id"]] = frame["annotation"]
    elif frame["type"] == "annotation.deleted":
        annotations.pop(frame["id"], None)
    elif frame["type"] == "presence":
        state = {**state, "participants": frame["participants"]}
    return {**state, "annotations": sorted(annotations.values(), key=lambda a: a["id"])}


@run_async
async def test_stale_state_plus_events_equals_a_fresh_snapshot(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    """Zulip's verify_action: what a connected reader received, applied to its snapshot, is the new snapshot;
    and a reader who reconnects gets exactly that, nothing twice."""
    async with joined(session, cookies, "r2") as room:
        await room.send("r2", length(crew["instance"], "k1"))
        await room.send("r2", length(crew["instance2"], "k2"))
        kept = (await room.next_of("r2", "annotation.created"))["annotation"]
        gone = (await room.next_of("r2", "annotation.created"))["annotation"]
        stale = await room.join("r1")
        await room.leave("r2")  # r2 disconnects...
        await room.join("r2")
        await room.send("r2", {"type": "annotation.update", "ref": "u", "id": kept["id"], "version": 1, "annotation": {"label": "L"}})
        await room.send("r2", {"type": "annotation.delete", "ref": "d", "id": gone["id"]})
        await room.send("r2", length(crew["instance"], "k3"))
        while (await room.next("r2")).get("ref") != "k3":
            pass
        frames = await room.all("r1")
        assert [f["type"] for f in frames if f["type"].startswith("annotation")] == [
            "annotation.updated", "annotation.deleted", "annotation.created"]
        state = stale
        for frame in frames:
            state = apply(state, frame)
        await room.leave("r1")
        fresh = await room.join("r1")
        assert state["annotations"] == fresh["annotations"]
        assert [a["label"] for a in fresh["annotations"]] == ["L", ""]


@run_async
async def test_a_change_of_mode_or_role_refreshes_what_each_sees(crew: dict[str, Any], blinded: Any, cookies: dict[str, bytes]) -> None:
    async with joined(blinded, cookies, "r1", "r2") as room:
        await room.send("r1", length(crew["instance"], "m1"))
        await room.next_of("r1", "annotation.created")
        access = await database_sync_to_async(services.access_session)(crew["org"], blinded.pk)
        await database_sync_to_async(services.update_session)(access, mode="open")  # unblind after the reads
        assert (await room.next_of("r2", "session.updated"))["session"]["mode"] == "open"
        refreshed = await room.next_of("r2", "session.state")
        assert [a["author"] for a in refreshed["annotations"]] == ["r1"]
        await database_sync_to_async(services.update_session)(access, mode="blinded")
        await room.next_of("r2", "session.updated")
        assert (await room.next_of("r2", "session.state"))["annotations"] == []
        await database_sync_to_async(services.seat_participant)(access, "r2", "adjudicator")
        promoted = await room.next_of("r2", "session.state")
        assert promoted["you"]["role"] == "adjudicator" and len(promoted["annotations"]) == 1


@run_async
async def test_a_closed_session_refuses_writes(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    async with joined(session, cookies, "r1") as room:
        await as_organizer(crew, session, services.close_session)
        assert (await room.next_of("r1", "session.updated"))["session"]["status"] == "closed"
        await room.send("r1", length(crew["instance"], "late"))
        error = await room.next_of("r1", "error")
        assert (error["code"], error["ref"]) == ("forbidden", "late")


@run_async
async def test_a_change_of_the_session_ends_the_confirmed_access_at_once(crew: dict[str, Any], session: Any,
                                                                       cookies: dict[str, bytes]) -> None:
    """Writes skip the access read while the hub's last check confirms it; closing the session (or any
    change of seat or role) must end that at once, not at the next check a second later."""
    async with joined(session, cookies, "r1") as room:
        hub = hubs._hubs[session.pk]
        await hub.verify(now=True)
        consumer = hub.listeners[next(iter(hub.listeners))]
        assert hub.confirms(consumer.access)  # type: ignore[attr-defined]
        await room.send("r1", length(crew["instance"], "early"))
        assert (await room.next_of("r1", "annotation.created"))["ref"] == "early"
        assert hub.instances  # remembered for the next write
        await as_organizer(crew, session, services.close_session)
        assert (await room.next_of("r1", "session.updated"))["session"]["status"] == "closed"
        assert not hub.confirms(consumer.access) and not hub.instances  # type: ignore[attr-defined]
        await room.send("r1", length(crew["instance"], "late"))
        error = await room.next_of("r1", "error")
        assert (error["code"], error["ref"]) == ("forbidden", "late")


@run_async
async def test_joining_and_leaving_are_audited(crew: dict[str, Any], session: Any, cookies: dict[str, bytes]) -> None:
    from audit.models import AuditEvent

    async with joined(session, cookies, "r1") as room:
        await room.leave("r1")

    def events() -> list[tuple[str, str, str]]:
        return [(e.actor_name, e.action, e.object_id) for e in AuditEvent.objects.filter(action__in=["session.joined", "session.left"]).order_by("id")]

    assert await database_sync_to_async(events)() == [
        ("r1", "session.joined", str(session.pk)),
        ("r1", "session.left", str(session.pk)),
    ]


@run_async
async def test_one_memory_of_grants_serves_the_image_route_and_the_hub(crew: dict[str, Any], session: Any,
                                                                      cookies: dict[str, bytes], monkeypatch) -> None:
    """The hub's seat grants and the image route's project grants live in one memory (viewer.grants): both
    expire on its clock, and one access-changed signal (here: another participant's seat saved) empties both."""
    from django.test import RequestFactory

    from viewer import grants

    now = [1000.0]
    monkeypatch.setattr(grants.GRANTS, "clock", lambda: now[0])
    async with joined(session, cookies, "r1") as room:
        hub = hubs._hubs[session.pk]
        consumer = hub.listeners[next(iter(hub.listeners))]
        await hub.verify(now=True)
        assert hub.confirms(consumer.access)  # type: ignore[attr-defined]
        now[0] += grants.GRANTS.ttl  # expired on the memory's clock, nothing else changed
        assert not hub.confirms(consumer.access)  # type: ignore[attr-defined]
        await hub.verify(now=True)
        assert hub.confirms(consumer.access)  # type: ignore[attr-defined]

        image = RequestFactory().get("/", HTTP_AUTHORIZATION="Token abc")
        grants.remember_access(image, crew["project"].slug, consumer.access.project, grants.GRANTS.generation)  # type: ignore[attr-defined]
        assert grants.recent_access(image, crew["project"].slug) is not None

        seat = await database_sync_to_async(Participant.objects.get)(session=session, user=crew["r2"])
        seat.role = "observer"
        await database_sync_to_async(seat.save)()
        assert grants.recent_access(image, crew["project"].slug) is None
        assert not hub.confirms(consumer.access)  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_a_grant_read_before_a_change_is_not_remembered_after_it(crew: dict[str, Any], session: Any) -> None:
    """The hub's check reads the memory's generation before loading the seats: a change committed while the
    check runs leaves no grant from the stale read behind."""
    from viewer import grants

    before = grants.GRANTS.generation
    checked = services.check_seats(session.pk, ["r1"])
    Membership.objects.filter(project=crew["project"], user=crew["r1"]).get().save()  # (the signal)
    grants.GRANTS.remember(hubs.seat_key(session.pk, "r1"), checked.grants["r1"], before)
    assert grants.GRANTS.get(hubs.seat_key(session.pk, "r1")) is None
