"""The websocket protocol of reading sessions, level :data:`PROTOCOL_LEVEL` (see docs/protocol.md). Pure.

Each client frame is a JSON object with a ``type``; :func:`parse` turns it into one typed message or
raises :class:`ProtocolError` (answered as an ``error`` frame; the connection stays up). Unknown fields
are ignored, so a newer client may send more than this level knows.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from annotations.planes import MAX_PLANE_INDEX, PLANES, PlaneRef, check_plane_kind, read_plane

#: Raised whenever the protocol changes incompatibly; sent in the first frame (``session.state``).
#: 2: the snapshot's annotations may continue in ``annotations.page`` frames (``more``).
#: 3: the call (``call.join``, ``call.leave``, ``rtc.offer|answer|ice|leave``) and the chat (``chat.send``).
PROTOCOL_LEVEL = 3

MAX_FRAME_CHARS = 256 * 1024
#: The longest frame the server sends: daphne refuses websocket frames and messages over 1 MiB (its
#: ``websocket_max_frame_size``; Channels' and browsers' clients are no more generous), less a margin.
#: Every frame but the snapshot holds at most one annotation (< :data:`MAX_FRAME_CHARS`, the frame
#: that wrote it); the snapshot is split by :func:`snapshot_frames`.
MAX_SERVER_FRAME_CHARS = 1024 * 1024 - 64 * 1024
#: The deepest nesting of arrays and objects a client frame may have (the deepest message, a draft's
#: or an annotation's points, has 4: the frame, the annotation, the list of points, a point).
MAX_DEPTH = 8
MAX_POINTS = 4096
MAX_REF = 64
MAX_UID = 64
MAX_LABEL = 200
MAX_COORD = 1e6
#: Registrations (offsets between two frames of reference) one viewport message may carry.
MAX_REGISTRATIONS = 8
KINDS = ("length", "bidirectional", "ellipse", "freehand", "arrow", "point", "angle", "cobb")
#: The reformatted planes of the MPR layout and the largest index one may have are
#: ``annotations.planes``' (PLANES, MAX_PLANE_INDEX, imported above): a plane is read in one place.


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


def error_frame(code: str, message: str, ref: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "ref": ref, "message": message, **extra}


# ------------------------------------------------------------------------------------------------
# Field readers: each raises ProtocolError("bad_request", ...) naming the field
# ------------------------------------------------------------------------------------------------


def _bad(message: str) -> ProtocolError:
    return ProtocolError("bad_request", message)


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise _bad(f"{key} must be an object.")
    return value


def _uid(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_UID or not all(c in "0123456789." for c in value):
        raise _bad(f"{key} must be a DICOM UID.")
    return value


def _int(data: dict[str, Any], key: str, *, minimum: int = 0, required: bool = True, default: int | None = None) -> int | None:
    value = data.get(key, default)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value > 2**53:
        raise _bad(f"{key} must be an integer of at least {minimum}.")
    return value


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or abs(value) > MAX_COORD:
        raise _bad(f"{what} must be a finite number.")
    return float(value)


def _opt_num(data: dict[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else _num(data[key], key)


def _text(data: dict[str, Any], key: str, limit: int, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or len(value) > limit:
        raise _bad(f"{key} must be text of at most {limit} characters.")
    return value


def _filled(data: dict[str, Any], key: str, limit: int, what: str) -> str:
    """Text of 1 to ``limit`` characters; else the error "``key`` must be ``what``."."""
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _bad(f"{key} must be {what}.")
    return value


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise _bad(f"{key} must be true or false.")
    return value


def _plane_kind(kind: str) -> None:
    try:
        check_plane_kind(kind)
    except ValueError as exc:
        raise _bad(str(exc)) from None


def _kind(data: dict[str, Any]) -> str:
    kind = data.get("kind")
    if kind not in KINDS:
        raise _bad(f"kind must be one of {', '.join(KINDS)}.")
    return str(kind)


def _points(data: dict[str, Any], key: str = "points", *, allow_empty: bool = False) -> list[list[float]]:
    value = data.get(key)
    if not isinstance(value, list) or len(value) > MAX_POINTS or (not value and not allow_empty):
        raise _bad(f"{key} must be a list of [x, y] image coordinates (at most {MAX_POINTS}).")
    return [_xy(point, f"{key} must be a list of [x, y] image coordinates.") for point in value]


def _xy(value: Any, message: str, x: str = "x", y: str = "y") -> list[float]:
    """A pair [x, y] of finite numbers (a pan, a point), else the error ``message``."""
    if not isinstance(value, list) or len(value) != 2:
        raise _bad(message)
    return [_num(value[0], x), _num(value[1], y)]


def _point3(value: Any, what: str) -> list[float]:
    if not isinstance(value, list) or len(value) != 3:
        raise _bad(f"{what} must be [x, y, z] in patient coordinates (mm).")
    return [_num(v, what) for v in value]


def _registrations(value: Any) -> list[dict[str, Any]]:
    """Linked scrolling's offsets between frames of reference: [{from, to, offset: [x, y, z]}], bounded."""
    if not isinstance(value, list) or len(value) > MAX_REGISTRATIONS:
        raise _bad(f"registrations must be a list of at most {MAX_REGISTRATIONS} offsets.")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise _bad("registrations must be a list of {from, to, offset} objects.")
        out.append({"from": _uid(item, "from"), "to": _uid(item, "to"), "offset": _point3(item.get("offset"), "offset")})
    return out


def _window_zoom(data: dict[str, Any]) -> dict[str, Any]:
    """``window`` ({center, width}) and ``zoom``, those present and not null (a viewport's, a chat view's)."""
    out: dict[str, Any] = {}
    if data.get("window") is not None:
        window = _obj(data, "window")
        out["window"] = {"center": _num(window.get("center"), "window.center"),
                         "width": _num(window.get("width"), "window.width")}
    if data.get("zoom") is not None:
        out["zoom"] = _num(data["zoom"], "zoom")
    return out


def _crosshair(value: dict[str, Any]) -> dict[str, Any]:
    return {"frameOfReference": _uid(value, "frameOfReference"), "point": _point3(value.get("point"), "crosshair.point")}


def _mpr(value: dict[str, Any]) -> dict[str, Any]:
    """The MPR layout of the sender: the series reformatted, the plane of the viewport that sent the
    event, and the index shown in each of the three planes."""
    plane = value.get("plane")
    if plane not in PLANES:
        raise _bad(f"mpr.plane must be one of {', '.join(PLANES)}.")
    out: dict[str, Any] = {"series": _uid(value, "series"), "plane": plane}
    for name in PLANES:
        index = value.get(name)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_PLANE_INDEX:
            raise _bad(f"mpr.{name} must be an integer from 0 to {MAX_PLANE_INDEX}.")
        out[name] = index
    return out


def _plane(data: dict[str, Any]) -> PlaneRef | None:
    """``plane`` (``{"series", "plane", "index"}``) when present and not null: what REST reads
    (:func:`annotations.planes.read_plane`), with the same bounds and messages."""
    if data.get("plane") is None:
        return None
    try:
        return read_plane(data["plane"])
    except ValueError as exc:
        raise _bad(str(exc)) from None


def _image(data: dict[str, Any]) -> tuple[str, int, PlaneRef | None]:
    """Where an entry or a shape is: ``(instance, frame, None)`` on an image, or ``("", 1, plane)`` on
    a reformatted plane (an ``instance`` besides ``plane`` is refused, as REST refuses it)."""
    plane = _plane(data)
    if plane is None:
        return _uid(data, "instance") or "", _int(data, "frame", minimum=1, default=1) or 1, None
    if data.get("instance") not in (None, "") or data.get("frame", 1) not in (None, 1):
        raise _bad("A mark is on an instance (instance, frame) or on a reformatted plane (plane), not both.")
    return "", 1, plane


def _at(instance: str, frame: int, plane: PlaneRef | None) -> dict[str, Any]:
    """The place of an entry as sent: ``{"instance", "frame"}`` or ``{"plane": {series, plane, index}}``."""
    return {"plane": plane.as_dict()} if plane is not None else {"instance": instance, "frame": frame}


def _ref(data: dict[str, Any]) -> str:
    return _filled(data, "ref", MAX_REF, f"a client id: text of 1 to {MAX_REF} characters")


# ------------------------------------------------------------------------------------------------
# Messages
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    type: ClassVar[str]
    #: Ephemeral messages are coalesced and rate-limited by dropping; writes are answered.
    ephemeral: ClassVar[bool] = False

    @property
    def reference(self) -> str | None:
        return getattr(self, "ref", None)

    @property
    def point_count(self) -> int:
        """How many points this message writes (what a participant's point budgets count)."""
        return 0


@dataclass(frozen=True)
class Cursor(Message):
    """The pointer on a frame of an instance, or on a reformatted plane (``plane`` instead of ``instance``)."""

    type = "cursor"
    ephemeral = True
    instance: str
    frame: int
    x: float
    y: float
    plane: PlaneRef | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Cursor:
        instance, frame, plane = _image(data)
        return cls(instance, frame, _num(data.get("x"), "x"), _num(data.get("y"), "y"), plane)

    def entry(self, user: str) -> dict[str, Any]:
        return {"user": user, **_at(self.instance, self.frame, self.plane), "x": self.x, "y": self.y}


@dataclass(frozen=True)
class Viewport(Message):
    type = "viewport"
    ephemeral = True
    fields: tuple[tuple[str, Any], ...]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Viewport:
        out: dict[str, Any] = {}
        for key in ("study", "series", "instance"):
            if data.get(key) is not None:
                out[key] = _uid(data, key)
        for key in ("frame", "viewport"):
            if data.get(key) is not None:
                out[key] = _int(data, key, minimum=0)
        out.update(_window_zoom(data))
        if data.get("pan") is not None:
            out["pan"] = _xy(data["pan"], "pan must be [x, y].", "pan", "pan")
        if data.get("invert") is not None:
            out["invert"] = _flag(data, "invert")
        if data.get("rotation") is not None:  # degrees clockwise as seen (docs/viewer.md, rotate and flip)
            if data["rotation"] not in (0, 90, 180, 270) or isinstance(data["rotation"], bool):
                raise _bad("rotation must be 0, 90, 180 or 270.")
            out["rotation"] = int(data["rotation"])
        for key in ("flipH", "flipV", "linked"):
            if data.get(key) is not None:
                out[key] = _flag(data, key)
        if data.get("registrations") is not None:
            out["registrations"] = _registrations(data["registrations"])
        if "crosshair" in data:  # null: no crosshair point (absent: left alone)
            out["crosshair"] = None if data["crosshair"] is None else _crosshair(_obj(data, "crosshair"))
        if "mpr" in data:  # null: not in the MPR layout (absent: left alone)
            out["mpr"] = None if data["mpr"] is None else _mpr(_obj(data, "mpr"))
        return cls(tuple(out.items()))

    def entry(self, user: str) -> dict[str, Any]:
        return {"user": user, **dict(self.fields)}


@dataclass(frozen=True)
class Shape:
    """A mark to create: on ``instance`` and ``frame``, or on ``plane`` (then ``instance`` is empty)."""

    instance: str
    frame: int
    kind: str
    points: list[list[float]]
    label: str
    plane: PlaneRef | None = None

    @classmethod
    def read(cls, data: dict[str, Any], points: list[list[float]] | None = None) -> Self:
        """Where the shape is (:func:`_image`), its kind (one a plane takes, on a plane), its ``points``
        (read here unless given) and label."""
        instance, frame, plane = _image(data)
        kind = _kind(data)
        if plane is not None:
            _plane_kind(kind)
        if points is None:
            points = _points(data)
        return cls(instance, frame, kind, points, _text(data, "label", MAX_LABEL, ""), plane)


@dataclass(frozen=True)
class Draft(Shape, Message):
    """A shape being drawn, on an image or on a reformatted plane (``plane`` instead of ``instance``,
    a kind a plane takes); ``points: []`` clears the sender's draft."""

    type = "annotation.draft"
    ephemeral = True

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Draft:
        points = _points(data, allow_empty=True)
        if not points:
            return cls("", 1, "", [], "")
        return cls.read(data, points)

    def entry(self, user: str) -> dict[str, Any]:
        if not self.points:
            return {"user": user, "points": []}
        return {"user": user, **_at(self.instance, self.frame, self.plane), "kind": self.kind,
                "points": self.points, "label": self.label}


@dataclass(frozen=True)
class AnnotationCreate(Message):
    type = "annotation.create"
    ref: str
    annotation: Shape

    @classmethod
    def parse(cls, data: dict[str, Any]) -> AnnotationCreate:
        ref = _ref(data)
        return cls(ref, Shape.read(_obj(data, "annotation")))

    @property
    def point_count(self) -> int:
        return len(self.annotation.points)


@dataclass(frozen=True)
class AnnotationUpdate(Message):
    type = "annotation.update"
    ref: str
    id: int
    version: int
    points: list[list[float]] | None
    label: str | None
    #: Optional with new points: the plane the mark is on, which must be the one it was drawn on (a
    #: mark stays on its plane; the server measures the points there).
    plane: PlaneRef | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> AnnotationUpdate:
        ref = _ref(data)
        fields = _obj(data, "annotation")
        points = _points(fields) if fields.get("points") is not None else None
        label = _text(fields, "label", MAX_LABEL) if fields.get("label") is not None else None
        if points is None and label is None:
            raise _bad("annotation must change points or label.")
        return cls(ref, _int(data, "id", minimum=1) or 0, _int(data, "version", minimum=1) or 0, points, label,
                   _plane(fields))

    @property
    def point_count(self) -> int:
        return len(self.points or ())


@dataclass(frozen=True)
class AnnotationDelete(Message):
    type = "annotation.delete"
    ref: str
    id: int
    version: int | None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> AnnotationDelete:
        return cls(_ref(data), _int(data, "id", minimum=1) or 0, _int(data, "version", minimum=1, required=False))


@dataclass(frozen=True)
class Ping(Message):
    """Answered with ``pong`` and this connection's counters (received, dropped)."""

    type = "ping"
    ref: str | None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Ping:
        ref = data.get("ref")
        return cls(ref if isinstance(ref, str) and len(ref) <= MAX_REF else None)


MESSAGES: dict[str, Any] = {
    m.type: m for m in (Cursor, Viewport, Draft, AnnotationCreate, AnnotationUpdate, AnnotationDelete, Ping)
}


# ------------------------------------------------------------------------------------------------
# The call (WebRTC signalling) and the chat, level 3: kept in their own block (see docs/protocol.md)
# ------------------------------------------------------------------------------------------------

#: The longest SDP an offer or answer may carry (a mesh call's SDP is 2-10 KiB; video adds a few).
MAX_SDP = 64 * 1024
#: The longest ICE candidate line, and its media id (RFC 8839 candidates are well under 256 bytes).
MAX_CANDIDATE = 1024
MAX_MID = 64
#: A username, as Django's user model allows it.
MAX_USER = 150
#: The longest chat message, in characters.
MAX_CHAT = 2000


def _user(data: dict[str, Any], key: str = "to") -> str:
    return _filled(data, key, MAX_USER, "a participant's username")


@dataclass(frozen=True)
class CallJoin(Message):
    """Join the session's call (microphone; ``video``: the camera too). Answered ``call.joined`` with
    the ICE servers to use and who is in the call; everyone is sent the new roster (``call``)."""

    type = "call.join"
    ref: str
    video: bool

    @classmethod
    def parse(cls, data: dict[str, Any]) -> CallJoin:
        return cls(_ref(data), _flag(data, "video"))


@dataclass(frozen=True)
class CallLeave(Message):
    """Leave the session's call (also: closing the connection). Answered ``call.left``."""

    type = "call.leave"
    ref: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> CallLeave:
        return cls(_ref(data))


@dataclass(frozen=True)
class Signal(Message):
    """A WebRTC signalling message addressed to one participant in the call (``to``), delivered to
    them alone with the sender's name in ``from``. Not stored; rate-limited per connection.

    Every ``rtc.*`` message is parsed here: ``to``, then what :meth:`payload_of` reads of the rest."""

    signal: ClassVar[bool] = True
    to: str
    payload: tuple[tuple[str, Any], ...]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Signal:
        return cls(_user(data), cls.payload_of(data))

    @classmethod
    def payload_of(cls, data: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        return ()

    def frame(self, sender: str) -> dict[str, Any]:
        return {"type": self.type, "from": sender, "to": self.to, **dict(self.payload)}


@dataclass(frozen=True)
class SessionDescription(Signal):
    """An offer or an answer: its SDP (``sdp``), bounded."""

    @classmethod
    def payload_of(cls, data: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        return (("sdp", _filled(data, "sdp", MAX_SDP, f"a session description of at most {MAX_SDP} characters")),)


@dataclass(frozen=True)
class RtcOffer(SessionDescription):
    type = "rtc.offer"


@dataclass(frozen=True)
class RtcAnswer(SessionDescription):
    type = "rtc.answer"


@dataclass(frozen=True)
class RtcIce(Signal):
    """An ICE candidate (``RTCIceCandidateInit``: candidate, sdpMid, sdpMLineIndex, usernameFragment),
    or ``null``: the end of the sender's candidates."""

    type = "rtc.ice"

    @classmethod
    def payload_of(cls, data: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        value = data.get("candidate")
        if value is None:
            return (("candidate", None),)
        if not isinstance(value, dict):
            raise _bad("candidate must be an ICE candidate object or null.")
        line = value.get("candidate")
        if not isinstance(line, str) or len(line) > MAX_CANDIDATE:
            raise _bad(f"candidate.candidate must be text of at most {MAX_CANDIDATE} characters.")
        out: dict[str, Any] = {"candidate": line}
        mid = value.get("sdpMid")
        if mid is not None and (not isinstance(mid, str) or len(mid) > MAX_MID):
            raise _bad(f"candidate.sdpMid must be text of at most {MAX_MID} characters.")
        out["sdpMid"] = mid
        index = value.get("sdpMLineIndex")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 1024):
            raise _bad("candidate.sdpMLineIndex must be an integer from 0 to 1024.")
        out["sdpMLineIndex"] = index
        fragment = value.get("usernameFragment")
        if fragment is not None and (not isinstance(fragment, str) or len(fragment) > 256):
            raise _bad("candidate.usernameFragment must be text of at most 256 characters.")
        out["usernameFragment"] = fragment
        return (("candidate", out),)


@dataclass(frozen=True)
class RtcLeave(Signal):
    """The sender ends its peer connection with ``to`` (it stays in the call with the others)."""

    type = "rtc.leave"


@dataclass(frozen=True)
class ChatSend(Message):
    """A chat message, with the sender's view when it says "look here" (``view``): a study of the
    session's cases and optionally its series, instance, frame, window and a point on the image."""

    type = "chat.send"
    ref: str
    text: str
    view: tuple[tuple[str, Any], ...] | None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ChatSend:
        ref = _ref(data)
        text = data.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_CHAT:
            raise _bad(f"text must be a message of 1 to {MAX_CHAT} characters.")
        view = None if data.get("view") is None else _view(_obj(data, "view"))
        return cls(ref, text.strip(), view)


def _view(data: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    out: dict[str, Any] = {"study": _uid(data, "study")}
    for key in ("series", "instance"):
        if data.get(key) is not None:
            out[key] = _uid(data, key)
    if data.get("frame") is not None:
        out["frame"] = _int(data, "frame", minimum=1)
    out.update(_window_zoom(data))
    if data.get("point") is not None:
        out["point"] = _xy(data["point"], "point must be [x, y] image coordinates.")
    if "instance" in out and "series" not in out:
        raise _bad("A view with an instance names its series too.")
    return tuple(out.items())


MESSAGES.update({m.type: m for m in (CallJoin, CallLeave, RtcOffer, RtcAnswer, RtcIce, RtcLeave, ChatSend)})


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Does the JSON ``text`` nest arrays and objects deeper than ``limit``? Decided without recursion.

    Strings are removed (brackets inside them do not count), then everything but brackets; each pass
    removes the innermost empty pairs, so what is left after ``limit`` passes was nested deeper (or is
    not balanced, which is not JSON either). All in C-speed string operations: ``limit`` passes over
    the frame (about 1 ms for a draft of 4,096 points, whose decoding and checks take ten times that).
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(limit):
        shorter = brackets.replace("[]", "").replace("{}", "")
        if not shorter:
            return False
        if len(shorter) == len(brackets):
            return True  # unbalanced
        brackets = shorter
    return True


def parse(text: str | None) -> Message:
    """One client frame → one message. Raises :class:`ProtocolError` with the frame's ``ref`` if it had one.

    The nesting is bounded before the JSON is decoded (:func:`too_deep`), so no frame can make the
    decoder, or anything that walks what it returns, recurse without bound.
    """
    if text is None:
        raise ProtocolError("malformed", "Frames are JSON text, not binary.")
    if len(text) > MAX_FRAME_CHARS:
        raise ProtocolError("too_large", f"A frame has at most {MAX_FRAME_CHARS} characters.")
    if too_deep(text):
        raise ProtocolError("malformed", f"A frame nests arrays and objects at most {MAX_DEPTH} deep.")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("malformed", "The frame is not JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("malformed", "A frame is a JSON object with a type.")
    ref = data.get("ref") if isinstance(data.get("ref"), str) else None
    kind_name = data.get("type")
    if not isinstance(kind_name, str):
        raise ProtocolError("unknown_type", "A frame's type is the text name of a message.", ref)
    kind = MESSAGES.get(kind_name)
    if kind is None:
        raise ProtocolError("unknown_type", f"Unknown message type {kind_name[:40]!r}.", ref)
    try:
        return kind.parse(data)
    except ProtocolError as error:
        error.ref = ref
        raise


def snapshot_frames(state: dict[str, Any], limit: int = MAX_SERVER_FRAME_CHARS) -> list[str]:
    """The ``session.state`` snapshot as frames of at most ``limit`` characters each.

    The state with as many of its annotations as fit, ``"more": true`` if others follow; then
    ``annotations.page`` frames ``{"type", "annotations", "more"}`` with the rest, the last with
    ``"more": false``. A client replaces its annotations once it has the last. Each annotation is
    encoded once; one annotation alone always fits (its points came in a frame of at most
    :data:`MAX_FRAME_CHARS`).
    """
    rest = {key: value for key, value in state.items() if key != "annotations"}
    head = json.dumps({**rest, "annotations": []}, separators=(",", ":"), allow_nan=False)[: -len("[]}")]
    items = [json.dumps(a, separators=(",", ":"), allow_nan=False) for a in state["annotations"]]
    tail = len('],"more":false}')
    pages: list[list[str]] = [[]]
    room = limit - len(head) - tail
    for item in items:
        if len(item) + 1 > room and (pages[-1] or len(pages) == 1):
            pages.append([])
            room = limit - len('{"type":"annotations.page","annotations":[') - tail
        pages[-1].append(item)
        room -= len(item) + 1
    frames = []
    for index, page in enumerate(pages):
        more = "true" if index < len(pages) - 1 else "false"
        start = head if index == 0 else '{"type":"annotations.page","annotations":'
        frames.append(f'{start}[{",".join(page)}],"more":{more}}}')
    return frames


def resume(backlog: list[str], versions: dict[int, int]) -> list[str]:
    """Frames that arrived while a snapshot with annotation ``versions`` was taken, minus what it reflects.

    A created or updated annotation at a version the snapshot has (or passed) is dropped, and so is the
    deletion of an annotation the snapshot does not hold; so snapshot + kept frames = a fresh snapshot.
    """
    versions = dict(versions)
    kept = []
    for text in backlog:
        frame = json.loads(text)
        kind = frame.get("type")
        if kind in ("annotation.created", "annotation.updated"):
            annotation = frame["annotation"]
            if versions.get(annotation["id"], 0) >= annotation["version"]:
                continue
            versions[annotation["id"]] = annotation["version"]
        elif kind == "annotation.deleted":
            if frame["id"] not in versions:
                continue
            del versions[frame["id"]]
        kept.append(text)
    return kept
