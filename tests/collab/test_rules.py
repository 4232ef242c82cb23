"""Pure parts: visibility rules, message parsing, resuming after a snapshot, the token bucket."""

from __future__ import annotations

import json

import pytest

from annotations.planes import PlaneRef
from collab import protocol
from collab.protocol import ProtocolError
from collab.ratelimit import TokenBucket
from collab.visibility import Seat, What, may_see

R1, R2 = Seat("r1", "reader"), Seat("r2", "reader")
ADJ, PRES, OBS = Seat("adj", "adjudicator"), Seat("pres", "presenter"), Seat("obs", "observer")
ORG = Seat("org", "reader", organizer=True)  # an organizer sees all whatever their seat


@pytest.mark.parametrize("viewer, author, what, blinded_sees", [
    (R2, R1, What.ANNOTATION, False),
    (R2, R1, What.DRAFT, False),
    (R2, R1, What.CURSOR, False),
    (R2, R1, What.VIEWPORT, False),
    (R1, R1, What.ANNOTATION, True),
    (ADJ, R1, What.ANNOTATION, True),
    (ADJ, R1, What.CURSOR, True),
    (ORG, R1, What.ANNOTATION, True),
    (ORG, R1, What.DRAFT, True),
    (R2, PRES, What.CURSOR, True),  # followers follow the presenter
    (R2, PRES, What.VIEWPORT, True),
    (R2, PRES, What.ANNOTATION, False),  # ...who shows no findings
    (R2, ADJ, What.CURSOR, False),
    (R2, ADJ, What.ANNOTATION, False),
    (OBS, R1, What.ANNOTATION, False),
    (OBS, R1, What.CURSOR, False),
    (PRES, R1, What.ANNOTATION, False),
])
def test_visibility(viewer: Seat, author: Seat, what: What, blinded_sees: bool) -> None:
    assert may_see(viewer, author, "blinded", what) is blinded_sees
    assert may_see(viewer, author, "open", what) is True


@pytest.mark.parametrize("mode", ["open", "blinded"])
@pytest.mark.parametrize("viewer", [ORG, ADJ, R1, PRES])
def test_nobody_sees_an_observers_drafts(viewer: Seat, mode: str) -> None:
    assert may_see(viewer, OBS, mode, What.DRAFT) is False
    assert may_see(viewer, OBS, mode, What.CURSOR) is (mode == "open" or viewer in (ORG, ADJ))


def test_seat_round_trips_through_json() -> None:
    assert Seat.from_dict(json.loads(json.dumps(ORG.as_dict()))) == ORG


@pytest.mark.parametrize("frame, code", [
    (None, "malformed"),
    ("{", "malformed"),
    ('"cursor"', "malformed"),
    ('{"type": 1}', "unknown_type"),
    ('{"type": "cursor", "instance": "1.2", "x": 1}', "bad_request"),
    ('{"type": "cursor", "instance": "1.2", "x": 1, "y": true}', "bad_request"),
    ('{"type": "cursor", "instance": "1.2", "frame": 0, "x": 1, "y": 1}', "bad_request"),
    ('{"type": "cursor", "instance": "1.2", "x": 1e308, "y": 1}', "bad_request"),
    ('{"type": "viewport", "pan": [1]}', "bad_request"),
    ('{"type": "viewport", "window": {"center": 1}}', "bad_request"),
    ('{"type": "viewport", "linked": 1}', "bad_request"),
    ('{"type": "viewport", "crosshair": {"frameOfReference": "1.2", "point": [1, 2]}}', "bad_request"),
    ('{"type": "viewport", "crosshair": {"frameOfReference": "x", "point": [1, 2, 3]}}', "bad_request"),
    ('{"type": "viewport", "crosshair": [1, 2, 3]}', "bad_request"),
    ('{"type": "viewport", "registrations": [{"from": "1.2", "to": "1.3", "offset": [0, 0, 1e308]}]}', "bad_request"),
    ('{"type": "viewport", "registrations": [{"from": "1.2", "to": "1.3"}]}', "bad_request"),
    ('{"type": "viewport", "registrations": ' + json.dumps([{"from": "1.2", "to": "1.3", "offset": [0, 0, 1]}] * 9) + "}", "bad_request"),
    ('{"type": "viewport", "mpr": [1, 2, 3]}', "bad_request"),
    ('{"type": "viewport", "mpr": {"series": "1.2", "plane": "oblique", "axial": 0, "sagittal": 0, "coronal": 0}}', "bad_request"),
    ('{"type": "viewport", "mpr": {"series": "x", "plane": "axial", "axial": 0, "sagittal": 0, "coronal": 0}}', "bad_request"),
    ('{"type": "viewport", "mpr": {"series": "1.2", "plane": "axial", "axial": -1, "sagittal": 0, "coronal": 0}}', "bad_request"),
    ('{"type": "viewport", "mpr": {"series": "1.2", "plane": "axial", "axial": 0, "sagittal": 1.5, "coronal": 0}}', "bad_request"),
    ('{"type": "viewport", "mpr": {"series": "1.2", "plane": "axial", "axial": 0, "sagittal": 0, "coronal": true}}', "bad_request"),
    ('{"type": "viewport", "mpr": {"series": "1.2", "plane": "axial", "axial": 0, "sagittal": 0}}', "bad_request"),
    ('{"type": "viewport", "mpr": {"series": "1.2", "plane": "axial", "axial": 0, "sagittal": 0, "coronal": 1048577}}', "bad_request"),
    ('{"type": "annotation.draft", "points": [[1, 2, 3]]}', "bad_request"),
    ('{"type": "annotation.update", "ref": "r", "id": 1, "version": 1, "annotation": {}}', "bad_request"),
    ('{"type": "annotation.create", "ref": "' + "x" * 65 + '", "annotation": {}}', "bad_request"),
    ('{"type": "annotation.delete", "ref": "r", "id": 1.5}', "bad_request"),
    ("x" * (protocol.MAX_FRAME_CHARS + 1), "too_large"),
])
def test_parse_refusals(frame: str | None, code: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.parse(frame)
    assert caught.value.code == code


def test_parse_messages_and_ignore_unknown_fields() -> None:
    cursor = protocol.parse('{"type": "cursor", "instance": "1.2.3", "frame": 2, "x": 1, "y": 2.5, "colour": "red"}')
    assert cursor.entry("r1") == {"user": "r1", "instance": "1.2.3", "frame": 2, "x": 1.0, "y": 2.5}
    create = protocol.parse(json.dumps({"type": "annotation.create", "ref": "a", "annotation": {
        "instance": "1.2.3", "kind": "ellipse", "points": [[0, 0], [4, 3]], "label": "L", "extra": 1}}))
    assert isinstance(create, protocol.AnnotationCreate)
    assert (create.ref, create.annotation.frame, create.annotation.kind, create.annotation.points) == ("a", 1, "ellipse", [[0.0, 0.0], [4.0, 3.0]])
    assert protocol.parse('{"type": "annotation.draft", "points": []}').entry("u") == {"user": "u", "points": []}
    assert protocol.parse('{"type": "ping"}').ref is None


def test_a_viewport_carries_linked_scrolling_and_the_crosshair_point() -> None:
    message = protocol.parse(json.dumps({
        "type": "viewport", "study": "1.2", "frame": 3, "linked": True,
        "registrations": [{"from": "1.2.3", "to": "1.2.4", "offset": [0, 0, 110], "note": "ignored"}],
        "crosshair": {"frameOfReference": "1.2.3", "point": [-84.7, 0, -225]},
    }))
    assert message.entry("p") == {
        "user": "p", "study": "1.2", "frame": 3, "linked": True,
        "registrations": [{"from": "1.2.3", "to": "1.2.4", "offset": [0.0, 0.0, 110.0]}],
        "crosshair": {"frameOfReference": "1.2.3", "point": [-84.7, 0.0, -225.0]},
    }
    assert protocol.parse('{"type": "viewport", "crosshair": null}').entry("p") == {"user": "p", "crosshair": None}
    assert "crosshair" not in protocol.parse('{"type": "viewport", "zoom": 2}').entry("p")


def test_a_viewport_carries_the_mpr_planes() -> None:
    """The presenter's MPR layout: the series, the plane of the viewport that sent it, the three indices."""
    mpr = {"series": "1.2.3", "plane": "sagittal", "axial": 29, "sagittal": 135, "coronal": 1 << 20, "extra": 1}
    message = protocol.parse(json.dumps({"type": "viewport", "series": "1.2.3", "mpr": mpr,
                                         "crosshair": {"frameOfReference": "1.2.9", "point": [-84.7, 0, -225]}}))
    entry = message.entry("p")
    assert entry["mpr"] == {"series": "1.2.3", "plane": "sagittal", "axial": 29, "sagittal": 135, "coronal": 1 << 20}
    assert entry["crosshair"] == {"frameOfReference": "1.2.9", "point": [-84.7, 0.0, -225.0]}
    assert protocol.parse('{"type": "viewport", "mpr": null}').entry("p") == {"user": "p", "mpr": None}
    assert "mpr" not in protocol.parse('{"type": "viewport", "zoom": 2}').entry("p")


def test_a_viewport_carries_its_rotation_and_flips() -> None:
    """A presenter's rotated or mirrored view reaches the followers; anything else is refused."""
    message = protocol.parse(json.dumps({"type": "viewport", "rotation": 270, "flipH": True, "flipV": False}))
    assert message.entry("p") == {"user": "p", "rotation": 270, "flipH": True, "flipV": False}
    for bad in ({"rotation": 45}, {"rotation": True}, {"rotation": "90"}, {"flipH": 1}):
        with pytest.raises(protocol.ProtocolError):
            protocol.parse(json.dumps({"type": "viewport", **bad}))


PLANE = {"series": "1.2.3", "plane": "coronal", "index": 30}


def test_a_create_draft_and_cursor_may_be_on_a_reformatted_plane() -> None:
    """``plane`` instead of ``instance``: read as REST reads it (annotations.planes.read_plane); the
    geometry a stored plane carries is ignored (the server computes it); entries carry the plane."""
    stored = {**PLANE, "position": [1, 2, 3], "rows": 426, "columns": 512}
    create = protocol.parse(json.dumps({"type": "annotation.create", "ref": "p-1", "annotation": {
        "plane": stored, "kind": "length", "points": [[30.5, 10], [30.5, 30]]}}))
    assert isinstance(create, protocol.AnnotationCreate)
    shape = create.annotation
    assert (shape.instance, shape.frame, shape.plane) == ("", 1, PlaneRef("1.2.3", "coronal", 30))
    assert create.point_count == 2
    with_null_instance = protocol.parse(json.dumps({"type": "annotation.create", "ref": "p-2", "annotation": {
        "instance": None, "frame": 1, "plane": PLANE, "kind": "ellipse", "points": [[1, 1], [4, 3]]}}))
    assert with_null_instance.annotation.plane == PlaneRef("1.2.3", "coronal", 30)
    draft = protocol.parse(json.dumps({"type": "annotation.draft", "instance": None, "plane": PLANE,
                                       "kind": "length", "points": [[1, 2], [3, 4]]}))
    assert draft.entry("r1") == {"user": "r1", "plane": PLANE, "kind": "length", "points": [[1.0, 2.0], [3.0, 4.0]],
                                 "label": ""}
    cursor = protocol.parse(json.dumps({"type": "cursor", "plane": {**PLANE, "index": 0}, "x": 1, "y": 2.5}))
    assert cursor.entry("r1") == {"user": "r1", "plane": {**PLANE, "index": 0}, "x": 1.0, "y": 2.5}
    update = protocol.parse(json.dumps({"type": "annotation.update", "ref": "u", "id": 1, "version": 1,
                                        "annotation": {"points": [[1, 1], [2, 2]], "plane": PLANE}}))
    assert update.plane == PlaneRef("1.2.3", "coronal", 30)
    assert protocol.parse(json.dumps({"type": "annotation.update", "ref": "u", "id": 1, "version": 1,
                                      "annotation": {"label": "x"}})).plane is None


def _on_plane(kind: str, **plane: object) -> dict[str, object]:
    return {"plane": {**PLANE, **plane}, "kind": kind, "points": [[1, 1], [2, 2]]}


@pytest.mark.parametrize("message, detail", [
    ({"type": "annotation.create", "ref": "r", "annotation": {**_on_plane("length"), "instance": "1.2.3.4"}}, "not both"),
    ({"type": "annotation.create", "ref": "r", "annotation": {**_on_plane("length"), "frame": 2}}, "not both"),
    ({"type": "annotation.create", "ref": "r", "annotation": _on_plane("bidirectional")}, "only length and ellipse"),
    ({"type": "annotation.create", "ref": "r", "annotation": _on_plane("length", plane="oblique")}, "plane.plane"),
    ({"type": "annotation.create", "ref": "r", "annotation": _on_plane("length", index=-1)}, "plane.index"),
    ({"type": "annotation.create", "ref": "r", "annotation": _on_plane("length", index=True)}, "plane.index"),
    ({"type": "annotation.create", "ref": "r", "annotation": _on_plane("length", index=(1 << 20) + 1)}, "plane.index"),
    ({"type": "annotation.create", "ref": "r", "annotation": _on_plane("length", series="x" * 70)}, "plane.series"),
    ({"type": "annotation.create", "ref": "r", "annotation": _on_plane("length", series="1.2.a")}, "plane.series"),
    ({"type": "annotation.create", "ref": "r", "annotation": {**_on_plane("length"), "plane": "coronal"}}, "plane must be"),
    ({"type": "annotation.create", "ref": "r", "annotation": {**_on_plane("length"), "points": [[1, 1e308]]}}, "finite"),
    ({"type": "annotation.draft", **_on_plane("point")}, "only length and ellipse"),
    ({"type": "annotation.draft", **_on_plane("length", index=1.5)}, "plane.index"),
    ({"type": "cursor", "plane": {**PLANE, "plane": "axial2"}, "x": 1, "y": 1}, "plane.plane"),
    ({"type": "cursor", "plane": PLANE, "instance": "1.2.3.4", "x": 1, "y": 1}, "not both"),
    ({"type": "cursor", "plane": [1, 2], "x": 1, "y": 1}, "plane must be"),
    ({"type": "annotation.update", "ref": "u", "id": 1, "version": 1,
      "annotation": {"points": [[1, 1], [2, 2]], "plane": {**PLANE, "index": -2}}}, "plane.index"),
])
def test_plane_refusals_are_bad_requests_with_the_rest_paths_reasons(message: dict[str, object], detail: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.parse(json.dumps(message))
    assert caught.value.code == "bad_request" and detail in caught.value.message, caught.value.message
    assert caught.value.ref == message.get("ref")


def test_the_protocol_reads_planes_with_the_rest_paths_bounds() -> None:
    from annotations import planes, services
    from viewer import volume

    assert protocol.PLANES == planes.PLANES == volume.PLANES
    assert protocol.MAX_PLANE_INDEX == planes.MAX_PLANE_INDEX == services.MAX_PLANE_INDEX
    assert tuple(k.value for k in services.PLANE_KINDS) == planes.PLANE_KINDS


def test_an_error_keeps_the_frames_ref() -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.parse('{"type": "annotation.update", "ref": "mine", "id": "x"}')
    assert caught.value.ref == "mine"


def test_resume_drops_what_the_snapshot_has() -> None:
    def created(i: int, v: int) -> str:
        return json.dumps({"type": "annotation.created" if v == 1 else "annotation.updated", "annotation": {"id": i, "version": v}})

    backlog = [created(1, 1), created(2, 1), created(2, 2), json.dumps({"type": "annotation.deleted", "id": 3}),
               json.dumps({"type": "annotation.deleted", "id": 9}), created(4, 1), json.dumps({"type": "annotation.deleted", "id": 4}),
               json.dumps({"type": "presence", "participants": []})]
    kept = [json.loads(t) for t in protocol.resume(backlog, {1: 1, 2: 1, 3: 1})]
    assert [(f["type"], f.get("id") or f.get("annotation", {}).get("id")) for f in kept] == [
        ("annotation.updated", 2), ("annotation.deleted", 3), ("annotation.created", 4), ("annotation.deleted", 4),
        ("presence", None)]


def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=5, clock=lambda: now[0])
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2
    assert bucket.dropped == 2
    now[0] += 0.25  # 2.5 tokens
    assert [bucket.take() for _ in range(3)] == [True, True, False]
