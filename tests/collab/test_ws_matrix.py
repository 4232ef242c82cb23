"""The websocket permission matrix (issue 8): connect, and every client message type of docs/protocol.md,
for every session role, a project member without a seat, a member of another project and an anonymous
user; and a member removed from the project or the session while connected.

Rows: the session's organizer (a project organizer, seated as presenter), a presenter who does not
organize, a reader, an adjudicator, an observer (a project viewer), a project member without a seat, an
outsider, anonymous. Outcomes as the sender or a participant who may see everything observes them:

- ``relayed``/``dropped``: an ephemeral message (cursor, viewport, draft) reaches the others, or nobody;
- ``created``/``updated``/``deleted``/``pong``: a write's answer (with the write's ref);
- an error code (``forbidden``, ``not_found``, ``unknown_type``): the write was refused, the socket stays;
- a close code (4401, 4403, 4404): refused at connect; what they send afterwards is ignored.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from annotations import services as annotation_services
from annotations.models import Annotation
from collab import services
from collab.hub import RECHECK_SECONDS
from collab.models import Participant
from tests.collab.conftest import communicator, make_session, run_async
from viewer.models import Membership

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = ("organizer", "presenter", "reader", "adjudicator", "observer", "member", "outsider", "anonymous")
SEATED = ROWS[:5]
USER = {"organizer": "org", "presenter": "r2", "reader": "r1", "adjudicator": "adj", "observer": "watcher",
        "member": "member", "outsider": "outsider", "anonymous": None}
EPHEMERAL = {"cursor": "cursors", "viewport": "viewports", "annotation.draft": "drafts"}
MESSAGES = ("cursor", "viewport", "annotation.draft", "annotation.create", "annotation.update",
            "annotation.delete", "ping", "telepathy")  # the last: a type the protocol does not know

#: What each seat's message does. update and delete name an annotation by the reader (r1): its author
#: and organizers change it; in a blinded session the presenter does not even see it. Observers watch:
#: no annotations and no drafts (collab.visibility); cursors and viewports they may share.
_ANNOTATOR = ("relayed", "relayed", "relayed", "created")
OUTCOMES = {
    "open": {
        "organizer":   (*_ANNOTATOR, "updated", "deleted", "pong", "unknown_type"),
        "presenter":   (*_ANNOTATOR, "forbidden", "forbidden", "pong", "unknown_type"),
        "reader":      (*_ANNOTATOR, "updated", "deleted", "pong", "unknown_type"),
        "adjudicator": (*_ANNOTATOR, "forbidden", "forbidden", "pong", "unknown_type"),
        "observer":    ("relayed", "relayed", "dropped", "forbidden", "forbidden", "forbidden", "pong", "unknown_type"),
    },
    "blinded": {
        "organizer":   (*_ANNOTATOR, "updated", "deleted", "pong", "unknown_type"),
        "presenter":   (*_ANNOTATOR, "not_found", "not_found", "pong", "unknown_type"),
        "reader":      (*_ANNOTATOR, "updated", "deleted", "pong", "unknown_type"),
        "adjudicator": (*_ANNOTATOR, "forbidden", "forbidden", "pong", "unknown_type"),
        "observer":    ("relayed", "relayed", "dropped", "forbidden", "forbidden", "forbidden", "pong", "unknown_type"),
    },
}
#: Refused at connect (docs/protocol.md "Connecting").
CONNECT = {"member": 4403, "outsider": 4404, "anonymous": 4401}

_unique = itertools.count(1)


def frame_for(message: str, crew: dict[str, Any], target: int | None) -> tuple[dict[str, Any], Any]:
    """A valid frame of type ``message`` and the marker that identifies it in what others receive."""
    n = next(_unique)
    ref = f"ref-{n}"
    instance = crew["instance"]
    frames = {
        "cursor": ({"type": "cursor", "instance": instance, "frame": 1, "x": n % 16, "y": (n // 16) % 16}, n % 16),
        "viewport": ({"type": "viewport", "study": crew["study"], "zoom": 1 + n}, 1 + n),
        "annotation.draft": ({"type": "annotation.draft", "instance": instance, "frame": 1, "kind": "point",
                              "points": [[1, 1]], "label": f"d{n}"}, f"d{n}"),
        "annotation.create": ({"type": "annotation.create", "ref": ref, "annotation": {
            "instance": instance, "kind": "point", "points": [[2, 2]]}}, ref),
        "annotation.update": ({"type": "annotation.update", "ref": ref, "id": target, "version": 1,
                               "annotation": {"label": "changed"}}, ref),
        "annotation.delete": ({"type": "annotation.delete", "ref": ref, "id": target}, ref),
        "ping": ({"type": "ping", "ref": ref}, ref),
        "telepathy": ({"type": "telepathy", "ref": ref}, ref),
    }
    return frames[message]


def _marked(frame: dict[str, Any], kind: str, user: str, marker: Any) -> bool:
    if frame["type"] != kind:
        return False
    for entry in frame[kind]:
        if entry["user"] == user and marker in (entry.get("x"), entry.get("zoom"), entry.get("label")):
            return True
    return False


async def wait_for(comm: WebsocketCommunicator, match: Any, timeout: float) -> dict[str, Any] | None:
    """The first frame ``match`` accepts within ``timeout``, else None (skipping everything else).

    Waits with receive_nothing: a timed-out receive_from would cancel the application."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await comm.receive_nothing(0.02, interval=0.005):
            continue
        output = await comm.receive_output(1)
        if output["type"] == "websocket.close":
            return {"type": "closed", "code": output["code"]}
        frame = json.loads(output["text"])
        if match(frame):
            return frame
    return None


async def connect(session_id: int, cookie: bytes | None) -> tuple[WebsocketCommunicator, Any]:
    """A communicator and what the server did first: ``"state"`` or the close code."""
    comm = communicator(session_id, cookie)
    connected, _ = await comm.connect()
    assert connected
    output = await comm.receive_output(2)
    if output["type"] == "websocket.close":
        return comm, output["code"]
    assert json.loads(output["text"])["type"] == "session.state"
    return comm, "state"


def seat_presenter(crew: dict[str, Any], session: Any) -> None:
    services.seat_participant(services.access_session(crew["org"], session.pk), "r2", "presenter")


def reader_annotation(crew: dict[str, Any], session: Any) -> int:
    return annotation_services.create_annotation(
        crew["r1"], crew["project"], instance_uid=crew["instance"], kind="point", points=[[3, 3]],
        session_id=session.pk).pk


@pytest.mark.parametrize("row", ROWS)
@run_async
async def test_connect(crew: dict[str, Any], cookies: dict[str, bytes], row: str) -> None:
    session = await database_sync_to_async(make_session)(crew)
    await database_sync_to_async(seat_presenter)(crew, session)
    user = USER[row]
    comm, first = await connect(session.pk, cookies[user] if user else None)
    try:
        assert first == CONNECT.get(row, "state")
    finally:
        await comm.disconnect()


@pytest.mark.parametrize("mode", ["open", "blinded"])
@run_async
async def test_message_matrix(crew: dict[str, Any], cookies: dict[str, bytes], mode: str) -> None:
    session = await database_sync_to_async(make_session)(crew, mode)
    await database_sync_to_async(seat_presenter)(crew, session)
    sockets = {}
    try:
        for row in SEATED:
            sockets[row], first = await connect(session.pk, cookies[USER[row]])
            assert first == "state", row
        failures = []
        for row in SEATED:
            sender, user = sockets[row], USER[row]
            # someone who may see everything the sender shares (in either mode)
            witness = sockets["adjudicator" if row != "adjudicator" else "organizer"]
            for message, expected in zip(MESSAGES, OUTCOMES[mode][row], strict=True):
                target = None
                if message in ("annotation.update", "annotation.delete"):
                    target = await database_sync_to_async(reader_annotation)(crew, session)
                frame, marker = frame_for(message, crew, target)
                await sender.send_to(text_data=json.dumps(frame))
                if message in EPHEMERAL:
                    kind = EPHEMERAL[message]
                    seen = await wait_for(witness, lambda f, k=kind, m=marker: _marked(f, k, user, m), 0.4)
                    got = "relayed" if seen else "dropped"
                else:
                    answer = await wait_for(sender, lambda f, m=marker: f.get("ref") == m or f["type"] == "closed", 2)
                    assert answer is not None, (row, message)
                    got = answer.get("code") if answer["type"] in ("error", "closed") else answer["type"].split(".")[-1]
                if got != expected:
                    failures.append(f"{mode}: {message} from {row}: {got}, expected {expected}")
        assert not failures, "\n".join(failures)
    finally:
        for comm in sockets.values():
            await comm.disconnect()


@run_async
async def test_refused_at_connect_and_ignored_after(crew: dict[str, Any], cookies: dict[str, bytes]) -> None:
    """The member without a seat, the outsider and anonymous: each message type, sent on a socket the
    server refused, does nothing (no answer, nothing relayed, nothing stored)."""
    session = await database_sync_to_async(make_session)(crew)
    target = await database_sync_to_async(reader_annotation)(crew, session)
    witness, first = await connect(session.pk, cookies["org"])
    assert first == "state"
    try:
        for row, code in CONNECT.items():
            user = USER[row]
            for message in MESSAGES:
                comm, first = await connect(session.pk, cookies[user] if user else None)
                assert first == code, (row, message)
                frame, marker = frame_for(message, crew, target)
                await comm.send_to(text_data=json.dumps(frame))
                assert await comm.receive_nothing(0.05), (row, message)
                await comm.disconnect()
        relayed = await wait_for(witness, lambda f: f["type"] in EPHEMERAL.values() or f["type"].startswith("annotation."), 0.3)
        assert relayed is None
    finally:
        await witness.disconnect()
    annotation = await database_sync_to_async(Annotation.objects.get)(pk=target)
    assert (annotation.version, annotation.label, annotation.deleted) == (1, "", False)
    assert await database_sync_to_async(Annotation.objects.count)() == 1


def remove(crew: dict[str, Any], session: Any, what: str) -> None:
    """Take the reader (r1) out of the project, or out of the session, as an admin or a script would
    (through the ORM, not the session services)."""
    if what == "project":
        Membership.objects.filter(user=crew["r1"], project=crew["project"]).delete()
    else:
        Participant.objects.filter(session=session, user=crew["r1"]).delete()


REMOVALS = [
    pytest.param(what, message, code, id=f"{what}-{message}")
    for what, code in (("project", 4404), ("session", 4403))
    for message in MESSAGES
]


@pytest.mark.parametrize("what, message, code", REMOVALS)
@run_async
async def test_removed_mid_connection_is_disconnected_at_the_next_message(
    crew: dict[str, Any], cookies: dict[str, bytes], what: str, message: str, code: int,
) -> None:
    session = await database_sync_to_async(make_session)(crew)
    target = await database_sync_to_async(reader_annotation)(crew, session)
    comm, first = await connect(session.pk, cookies["r1"])
    assert first == "state"
    try:
        await database_sync_to_async(remove)(crew, session, what)
        frame, _ = frame_for(message, crew, target)
        await comm.send_to(text_data=json.dumps(frame))
        closed = await wait_for(comm, lambda f: f["type"] == "closed", 1.0)
        assert closed == {"type": "closed", "code": code}
    finally:
        await comm.disconnect()
    # and a refused write wrote nothing
    annotation = await database_sync_to_async(Annotation.objects.get)(pk=target)
    assert (annotation.version, annotation.deleted) == (1, False)
    assert await database_sync_to_async(Annotation.objects.count)() == 1


@pytest.mark.parametrize("message", list(EPHEMERAL))
@run_async
async def test_ephemeral_messages_recheck_within_a_second(crew: dict[str, Any], cookies: dict[str, bytes], message: str) -> None:
    """What docs/protocol.md promises today: a removed member loses access within a second."""
    session = await database_sync_to_async(make_session)(crew)
    comm, first = await connect(session.pk, cookies["r1"])
    assert first == "state"
    try:
        await database_sync_to_async(remove)(crew, session, "project")
        await database_sync_to_async(time.sleep)(RECHECK_SECONDS + 0.1)
        frame, _ = frame_for(message, crew, None)
        await comm.send_to(text_data=json.dumps(frame))
        assert await wait_for(comm, lambda f: f["type"] == "closed", 1.0) == {"type": "closed", "code": 4404}
    finally:
        await comm.disconnect()
