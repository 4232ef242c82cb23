"""Marks on reformatted planes (MPR) in a live session: a length created on a coronal plane over the
websocket reaches the other readers with its plane, measured in mm at the plane's square pixels;
moved on its plane; refused for a series outside the session's cases or out of reach, for observers,
and past the point budgets; drafts and cursors on planes go to the others, and those on a series
holding a quarantined image reach project organizers only, as marks filed under a held slice do."""

from __future__ import annotations

import asyncio

import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
from channels.db import database_sync_to_async

from annotations.models import Annotation
from collab import consumers, services
from collab.services import live
from demo import phantom
from tests.collab.conftest import communicator, run_async
from tests.collab.test_abuse import answer
from tests.collab.room import joined, of_type
from viewer import rendering
from viewer.ingest import ingest_bytes
from viewer.models import Instance
from viewer.rendering import mpr

pytestmark = pytest.mark.django_db(transaction=True)

SLICES, SIZE = 24, 64  # pixel spacing 358.4 / 64 = 5.6 mm, slice spacing 300 / 24 = 12.5 mm
PS = 358.4 / SIZE
HEIGHT = round((SLICES - 1) * 12.5 / PS) + 1  # the coronal plane's rows


@pytest.fixture(autouse=True)
def _empty_caches() -> Any:
    for cache in (rendering.FRAME_CACHE, rendering.OUTPUT_CACHE, rendering.LOOKUP_CACHE, mpr.VOLUME_CACHE,
                  mpr.STACKS, mpr.GEOMETRY):
        cache.clear()
    yield
    consumers.point_buckets.buckets.clear()


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("plane-session")
    return [p.read_bytes() for p in phantom.write_study(Path(out), "baseline", slices=SLICES, size=SIZE, seed=0)]


@pytest.fixture
def volume(crew: dict[str, Any], phantom_files: list[bytes]) -> dict[str, Any]:
    """The phantom's series in the crew's project, and an open session whose cases are its study and the crew's."""
    for data in phantom_files:
        assert ingest_bytes(crew["project"], data).ok
    first = pydicom.dcmread(io.BytesIO(phantom_files[0]))
    session = services.create_session(
        crew["org"], project="trial", title="planes", studies=[first.StudyInstanceUID, crew["study"]], mode="open",
        status="active", participants=[("r1", "reader"), ("r2", "reader"), ("adj", "adjudicator"), ("watcher", "observer")],
    )
    return {"series": first.SeriesInstanceUID, "study": first.StudyInstanceUID, "session": session}


def plane(series: str, name: str = "coronal", index: int = 30) -> dict[str, Any]:
    return {"series": series, "plane": name, "index": index}


def plane_length(series: str, ref: str, index: int = 30, rows: tuple[float, float] = (10, 30), **extra: Any) -> dict[str, Any]:
    return {"type": "annotation.create", "ref": ref, "annotation": {
        "plane": plane(series, index=index), "kind": "length", "points": [[30.5, rows[0]], [30.5, rows[1]]], **extra}}


@run_async
async def test_a_length_on_a_coronal_plane_reaches_the_other_reader_with_its_plane(
        crew: dict[str, Any], volume: dict[str, Any], cookies: dict[str, bytes], sent: list[dict[str, Any]]) -> None:
    async with joined(volume["session"], cookies, "r1", "r2", drained=True) as room:
        sent.clear()
        await room.send("r1", plane_length(volume["series"], "p-1", label="craniocaudal"))
        mine = await room.next_of("r1", "annotation.created", 10)
        theirs = await room.next_of("r2", "annotation.created")
        assert mine["ref"] == "p-1" and "ref" not in theirs and theirs["annotation"] == mine["annotation"]
        mark = theirs["annotation"]
        # 20 rows down the resliced axis: 20 x 5.6 mm (the slices' 12.5 mm resampled to square pixels)
        assert mark["measurements"] == {"kind": "length", "unit": "mm", "calibration": "PixelSpacing",
                                        "length": round(20 * PS, 1)}
        stored = mark["plane"]
        assert (stored["series"], stored["plane"], stored["index"]) == (volume["series"], "coronal", 30)
        assert (stored["rows"], stored["columns"]) == (HEIGHT, SIZE)
        assert stored["pixel_spacing"] == pytest.approx([PS, PS])
        assert len(stored["position"]) == 3 and len(stored["orientation"]) == 6
        assert (mark["series"], mark["study"], mark["frame"], mark["label"]) == (volume["series"], volume["study"], 1,
                                                                                 "craniocaudal")
        assert len([m for m in sent if m["kind"] == "annotation"]) == 1

        # moved on its plane: measured there again; a plane other than its own is refused
        await room.send("r1", {"type": "annotation.update", "ref": "u-1", "id": mark["id"], "version": 1,
                               "annotation": {"points": [[10, 5], [10, 45]], "plane": plane(volume["series"])}})
        moved = await room.next_of("r2", "annotation.updated", 5)
        assert moved["annotation"]["measurements"]["length"] == round(40 * PS, 1)
        assert moved["annotation"]["plane"]["index"] == 30 and moved["annotation"]["version"] == 2
        assert (await answer(room, "r1", 5))["ref"] == "u-1"
        await room.send("r1", {"type": "annotation.update", "ref": "u-2", "id": mark["id"], "version": 2,
                               "annotation": {"points": [[10, 5], [10, 45]], "plane": plane(volume["series"], index=31)}})
        refused = await answer(room, "r1", 5)
        assert (refused["type"], refused["code"], refused["ref"]) == ("error", "bad_request", "u-2")
        assert "stays on the plane" in refused["message"]
        await room.send("r1", {"type": "annotation.update", "ref": "u-3", "id": mark["id"], "version": 2,
                               "annotation": {"points": [[10, 5], [10, HEIGHT + 1]]}})
        refused = await answer(room, "r1", 5)
        assert (refused["code"], refused["ref"]) == ("bad_request", "u-3") and "inside the image" in refused["message"]

        # the snapshot of a reader who joins holds it with its plane
        await room.leave("r2")
        state = await room.join("r2")
        [again] = state["annotations"]
        assert again["id"] == mark["id"] and again["plane"]["plane"] == "coronal" and again["version"] == 2


@run_async
async def test_plane_marks_outside_the_session_or_out_of_reach_are_refused(
        crew: dict[str, Any], volume: dict[str, Any], cookies: dict[str, bytes]) -> None:
    async with joined(volume["session"], cookies, "r1", "watcher", drained=True) as room:
        cases = [
            # a series of no case of the session, one that does not exist, one that cannot be reformatted
            (plane_length(crew["other_study"] + ".1", "other-study"), "bad_request", "not in one of this session's cases"),
            (plane_length("1.2.3.4", "unknown"), "bad_request", "not in one of this session's cases"),
            (plane_length(crew["study"] + ".1", "two-slices", rows=(1, 2)), "unprocessable", ""),
            (plane_length(volume["series"], "too-far", index=SIZE), "bad_request", "does not exist"),
            (plane_length(volume["series"], "outside", rows=(1, HEIGHT + 0.5)), "bad_request", "inside the image"),
            ({"type": "annotation.create", "ref": "bidi", "annotation": {
                "plane": plane(volume["series"]), "kind": "bidirectional",
                "points": [[1, 1], [9, 1], [5, 0], [5, 2]]}}, "bad_request", "only length and ellipse"),
            (plane_length(volume["series"], "both", instance=crew["instance"]), "bad_request", "not both"),
        ]
        for frame, code, detail in cases:
            await room.send("r1", frame)
            error = await answer(room, "r1", 5)
            assert (error["type"], error["code"], error["ref"]) == ("error", code, frame["ref"]), error
            assert detail in error["message"], error
        await room.send("watcher", plane_length(volume["series"], "observer"))  # observers watch
        error = await answer(room, "watcher", 5)
        assert (error["code"], error["ref"]) == ("forbidden", "observer")
        # every slice held in quarantine: the series is out of a reader's reach, as its images are
        await database_sync_to_async(
            lambda: Instance.objects.filter(series__series_instance_uid=volume["series"]).update(quarantined=True))()
        await asyncio.sleep(1.1)  # the socket's access asks again whether the project holds quarantine
        await room.send("r1", plane_length(volume["series"], "held"))
        error = await answer(room, "r1", 5)
        assert (error["code"], error["ref"]) == ("bad_request", "held") and "not in one" in error["message"]
        assert await database_sync_to_async(Annotation.objects.count)() == 0
    # a member of the project without a seat does not get in at all
    comm = communicator(volume["session"].pk, cookies["member"])
    assert (await comm.connect())[0]
    assert await comm.receive_output(1) == {"type": "websocket.close", "code": 4403}
    await comm.disconnect()


@run_async
async def test_plane_marks_count_in_the_point_budgets(
        crew: dict[str, Any], volume: dict[str, Any], cookies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "PARTICIPANT_POINT_BUDGET", 5)
    async with joined(volume["session"], cookies, "r1", drained=True) as room:
        await room.send("r1", {"type": "annotation.create", "ref": "image", "annotation": {
            "instance": crew["instance"], "kind": "length", "points": [[1, 1], [5, 5]]}})
        assert (await answer(room, "r1", 5))["type"] == "annotation.created"
        await room.send("r1", plane_length(volume["series"], "plane-1"))
        assert (await answer(room, "r1", 10))["type"] == "annotation.created"  # 4 points of 5
        await room.send("r1", plane_length(volume["series"], "plane-2", index=31))
        refused = await answer(room, "r1", 5)
        assert (refused["type"], refused["code"], refused["ref"], refused["budget"]) == (
            "error", "too_large", "plane-2", "participant")
        assert (refused["limit"], refused["used"]) == (5, 4)


@run_async
async def test_drafts_and_cursors_on_planes_go_to_the_others(
        crew: dict[str, Any], volume: dict[str, Any], cookies: dict[str, bytes]) -> None:
    async with joined(volume["session"], cookies, "r1", "r2", drained=True) as room:
        on = plane(volume["series"])
        await room.send("r1", {"type": "cursor", "plane": on, "x": 3, "y": 4})
        await room.send("r1", {"type": "annotation.draft", "plane": on, "kind": "length", "points": [[1, 1], [4, 9]]})
        frames = await room.all("r2")
        cursors = [c for f in of_type(frames, "cursors") for c in f["cursors"]]
        drafts = [d for f in of_type(frames, "drafts") for d in f["drafts"]]
        assert cursors[-1] == {"user": "r1", "plane": on, "x": 3.0, "y": 4.0}
        assert drafts[-1] == {"user": "r1", "plane": on, "kind": "length", "points": [[1.0, 1.0], [4.0, 9.0]], "label": ""}


@run_async
async def test_entries_and_marks_on_a_series_holding_a_quarantined_image_reach_project_organizers_only(
        crew: dict[str, Any], volume: dict[str, Any], cookies: dict[str, bytes]) -> None:
    """One slice held (not the middle one): the series' planes are as held as the image (drafts,
    cursors and the MPR viewport on it reach the project's organizers only); a reader's plane mark,
    filed under the middle slice, is seen by all; the organizer's mark filed under a held slice
    by project organizers only, as REST and the snapshot decide. (The middle slice is the middle of the
    stack the writer reaches: a reader's stack here lacks the held slice.)"""
    uids = await database_sync_to_async(lambda: list(
        Instance.objects.filter(series__series_instance_uid=volume["series"]).order_by("instance_number")
        .values_list("sop_instance_uid", flat=True)))()
    await database_sync_to_async(lambda: Instance.objects.filter(sop_instance_uid=uids[0]).update(quarantined=True))()
    async with joined(volume["session"], cookies, "org", "r1", "r2", "adj", drained=True) as room:
        on = plane(volume["series"])
        await room.send("r1", {"type": "cursor", "plane": on, "x": 3, "y": 4})
        await room.send("r1", {"type": "annotation.draft", "plane": on, "kind": "length", "points": [[1, 1], [4, 9]]})
        await room.send("r1", {"type": "viewport", "series": volume["series"],
                               "mpr": {"series": volume["series"], "plane": "coronal", "axial": 1, "sagittal": 2, "coronal": 30}})
        await room.send("r2", {"type": "cursor", "instance": crew["instance"], "x": 1, "y": 1})  # not held
        frames = {who: await room.all(who) for who in ("org", "r2", "adj")}
        for kind in ("cursors", "drafts", "viewports"):
            assert {e["user"] for f in of_type(frames["org"], kind) for e in f[kind]} >= {"r1"}, kind
            for who in ("r2", "adj"):
                assert "r1" not in {e["user"] for f in of_type(frames[who], kind) for e in f[kind]}, (who, kind)
        assert {c["user"] for f in of_type(frames["adj"], "cursors") for c in f["cursors"]} == {"r2"}

        await room.send("r1", plane_length(volume["series"], "reader-mark"))
        assert (await answer(room, "r1", 10))["type"] == "annotation.created"
        for who in ("org", "r2", "adj"):
            assert (await room.next_of(who, "annotation.created", 5))["annotation"]["plane"]["series"] == volume["series"]
        # every slice held: the organizer still reaches them, and the mark, filed under a held slice,
        # reaches project organizers only
        await database_sync_to_async(lambda: Instance.objects.filter(
            series__series_instance_uid=volume["series"]).update(quarantined=True))()
        mpr.STACKS.clear()
        await room.send("org", plane_length(volume["series"], "org-mark", index=20))
        created = await answer(room, "org", 10)
        assert created["type"] == "annotation.created" and created["annotation"]["instance"] in uids
        for who in ("r1", "r2", "adj"):
            assert not of_type(await room.all(who), "annotation.created"), who
