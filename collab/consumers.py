"""The websocket of a reading session, ``/ws/sessions/<id>/`` (protocol in docs/protocol.md).

Thin: authenticate the scope's user at connect, parse each frame into a typed message
(:func:`collab.protocol.parse`), look its type up in :attr:`SessionConsumer.handlers`, call one collab
service (or the process's hub for ephemeral messages), and turn a :class:`DomainError` into an error
frame while the connection stays up. Everything received from the group arrives through the hub, which
only forwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async

from collab import hub as hubs
from collab import protocol, services
from collab.events import Origin, encode
from collab.protocol import (
    AnnotationCreate,
    AnnotationDelete,
    AnnotationUpdate,
    CallJoin,
    CallLeave,
    ChatSend,
    Cursor,
    Draft,
    Message,
    Ping,
    ProtocolError,
    RtcAnswer,
    RtcIce,
    RtcLeave,
    RtcOffer,
    Signal,
    Viewport,
)
from collab.ratelimit import Buckets, TokenBucket
from collab.visibility import Seat
from collab.access import Forbidden
from crossread.errors import DomainError, ErrorCode, NotFound

log = logging.getLogger(__name__)

CLOSE_CODES = {ErrorCode.NOT_AUTHENTICATED: 4401, ErrorCode.FORBIDDEN: 4403, ErrorCode.NOT_FOUND: 4404}
#: Ephemeral messages (cursor, viewport, draft) a connection may send: a second's worth and a burst.
EPHEMERAL_RATE, EPHEMERAL_BURST = 60.0, 120.0
#: Writes (annotation.*, ping) a connection may send; over it they are answered ``rate_limited``.
WRITE_RATE, WRITE_BURST = 10.0, 30.0
#: Points of written shapes (annotation.create, annotation.update with points) a participant may send,
#: from all their connections to this process: a second's worth and a burst (four maximum-size shapes).
#: A shape's measurement costs time in proportion to its points; beyond this, writes are answered
#: ``rate_limited`` with ``retry_after`` (seconds).
POINT_RATE, POINT_BURST = 2048.0, 16384.0
#: (session, user) → the participant's point bucket; kept across reconnects.
point_buckets = Buckets(POINT_RATE, POINT_BURST)
#: WebRTC signalling (rtc.*) a connection may send: a second's worth and a burst (an offer or answer
#: and a dozen ICE candidates per peer, for a call of up to six). Over it: answered ``rate_limited``.
SIGNAL_RATE, SIGNAL_BURST = 20.0, 120.0
#: Chat messages a participant may post, from all their connections to this process.
CHAT_RATE, CHAT_BURST = 1.0, 5.0
chat_buckets = Buckets(CHAT_RATE, CHAT_BURST)


class SessionConsumer:
    """One websocket connection, as a plain ASGI application (no Channels consumer class underneath).

    A connection needs no channel of its own: the process's session hub is the group's only member here
    and calls the connection directly (:mod:`collab.hub`), which saves a subscription per connection. So
    the connection is the only source of messages, and this class awaits them in turn: no ``asyncio.wait``
    over a new task per message, and no thread hop per message to close stale database connections, as
    Channels' consumer base class would make (every database call here goes through
    ``database_sync_to_async``, which closes stale connections around each call itself). It relies on no
    private part of Channels: the ASGI websocket messages, ``database_sync_to_async`` and the scope that
    Channels' routing and authentication middleware fill in (``user``, ``url_route``).
    """

    seat: Seat
    hub: hubs.SessionHub | None = None
    closing = False

    @classmethod
    def as_asgi(cls) -> Callable[..., Awaitable[None]]:
        """The ASGI application: a new instance per connection."""

        async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                      send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
            await cls()(scope, receive, send)

        return app

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        """Each ASGI message in turn until the connection ends.

        However it ends (the client left, the server closed, an exception, the task cancelled),
        :meth:`_leave` takes the connection off the hub and out of presence: a consumer that died of an
        exception used to stay on the hub, whose heartbeat kept it "online" for good.
        """
        self.scope = scope
        self.base_send = send
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.connect":
                    await self.connect()
                elif kind == "websocket.receive":
                    await self.receive(text_data=message.get("text"), bytes_data=message.get("bytes"))
                elif kind == "websocket.disconnect":
                    await self.disconnect(message.get("code", 1000))
                    return
                else:  # not the ASGI websocket protocol: a server bug, ends the connection (left cleanly)
                    raise ValueError(f"Unexpected ASGI message {kind[:40]!r} on a websocket.")
        finally:
            await asyncio.shield(self._leave())

    # -- the ASGI websocket messages sent ---------------------------------------------------------

    async def accept(self) -> None:
        await self.base_send({"type": "websocket.accept"})

    async def send(self, text_data: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text_data})

    async def close(self, code: int = 1000) -> None:
        await self.base_send({"type": "websocket.close", "code": code})

    async def connect(self) -> None:
        self.connection_id = str(uuid.uuid4())
        self.user = self.scope["user"]
        self.session_id_text = self.scope["url_route"]["kwargs"]["session_id"]
        self.ready = False
        self.backlog: list[str] = []
        self.received = 0
        self.ephemeral = TokenBucket(EPHEMERAL_RATE, EPHEMERAL_BURST)
        self.writes = TokenBucket(WRITE_RATE, WRITE_BURST)
        self.signals = TokenBucket(SIGNAL_RATE, SIGNAL_BURST)
        self.in_call = False
        self.dropped_notified_at = 0.0
        try:
            access = await database_sync_to_async(services.seated_access)(self.user, self.session_id_text)
        except DomainError as error:
            await self.accept()
            await self.close(code=CLOSE_CODES.get(error.code, 4400))
            return
        self.session_id = access.session.pk
        self.access = access
        self.seat = access.require_seat()
        await self.accept()
        # On the hub before the snapshot, so nothing that happens meanwhile is missed (see _send_state).
        self.hub = await hubs.attach(self.session_id, access.session.mode, self,
                                     access.session.project.private_annotations, access.session.project_id)
        try:
            state = await database_sync_to_async(services.open_connection)(self.user, self.session_id, self.connection_id)
        except DomainError as error:
            await self.close(code=CLOSE_CODES.get(error.code, 4400))
            return
        await self._send_state(state)

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> None:
        """Off the hub and out of presence, once (the others see the user leave)."""
        if self.hub is None:
            return
        hub, self.hub = self.hub, None
        self.closing = True
        await hubs.detach(hub, self)
        try:
            await database_sync_to_async(services.close_connection)(self.session_id, self.connection_id)
        except Exception:
            log.exception("collab: closing connection %s failed", self.connection_id)
        if self.ephemeral.dropped or self.writes.dropped:
            log.info("collab: connection %s of %s closed; %d frames received, %d ephemeral and %d writes dropped",
                     self.connection_id, self.seat.user, self.received, self.ephemeral.dropped, self.writes.dropped)

    # -- from the client --------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.hub is None or self.closing:
            return
        self.received += 1
        await self.hub.verify()  # every message, from a seat checked within a second (hub.RECHECK_SECONDS)
        if self.closing:
            return
        try:
            message = protocol.parse(text_data)
        except ProtocolError as error:
            await self._error(error.code, error.message, error.ref)
            return
        if isinstance(message, Signal):
            if not self.signals.take():
                await self._error("rate_limited", "Too many call messages; slow down.", None, to=message.to)
                return
        elif message.ephemeral:
            if not self.ephemeral.take():
                await self._notify_dropped()
                return
        elif not self.writes.take():
            await self._error("rate_limited", "Too many messages; slow down.", message.reference)
            return
        elif message.point_count:
            bucket = point_buckets[(self.session_id, self.seat.user)]
            if not bucket.take(message.point_count):
                await self._error("rate_limited", "Too many points drawn; slow down.", message.reference,
                                  retry_after=round(bucket.wait(message.point_count), 2))
                return
        handler = self.handlers[type(message)]
        try:
            await handler(self, message)
        except DomainError as error:
            if error.code in (ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND):
                await self.hub.verify(now=True)  # type: ignore[union-attr]  # (closes us if the seat is gone)
                if self.closing:
                    return
            await self._error(str(error.code), error.detail, message.reference, **error.data)
        except Exception:  # a bug must not end the connection (nor leave it online): answered, logged
            log.exception("collab: %s from %s failed", message.type, self.seat.user)
            await self._error("internal", "The server could not handle this message.", message.reference)

    async def on_cursor(self, message: Cursor) -> None:
        self.hub.move("cursors", self.seat, message.entry(self.seat.user))  # type: ignore[union-attr]

    async def on_viewport(self, message: Viewport) -> None:
        self.hub.move("viewports", self.seat, message.entry(self.seat.user))  # type: ignore[union-attr]

    async def on_draft(self, message: Draft) -> None:
        self.hub.move("drafts", self.seat, message.entry(self.seat.user))  # type: ignore[union-attr]

    async def on_create(self, message: AnnotationCreate) -> None:
        reply = await self._write(services.create_annotation, message, instances=self.hub.instances)  # type: ignore[union-attr]
        if reply is not None:  # a repeated ref: answered here, not broadcast again
            await self.send(text_data=encode(reply))

    async def on_update(self, message: AnnotationUpdate) -> None:
        await self._write(services.update_annotation, message)

    async def on_delete(self, message: AnnotationDelete) -> None:
        await self._write(services.delete_annotation, message)

    async def on_ping(self, message: Ping) -> None:
        await self.send(text_data=encode({
            "type": "pong", "ref": message.ref, "time": time.time(), "received": self.received,
            "dropped": self.ephemeral.dropped + self.writes.dropped,
        }))

    # -- the call and the chat ---------------------------------------------------------------------

    async def on_call_join(self, message: CallJoin) -> None:
        # Read afresh (joins are rare): whether voice is allowed is not part of the grant a seat check
        # confirms. Signals need a connection in the call, and every change that takes voice away ends it.
        access, reply = await database_sync_to_async(services.join_call)(
            self.user, self.session_id, self.connection_id, video=message.video, ref=message.ref)
        self.access, self.in_call = access, True
        await self.send(text_data=encode(reply))

    async def on_call_leave(self, message: CallLeave) -> None:
        self.in_call = False
        await database_sync_to_async(services.leave_call)(self.user, self.session_id, self.connection_id)
        await self.send(text_data=encode({"type": "call.left", "ref": message.ref}))

    async def on_signal(self, message: Signal) -> None:
        """An offer, answer, ICE candidate or hang-up for one participant in the call, checked like any
        message (seat, status, voice allowed in the mode: ``services.check_caller``) and delivered to
        that participant's connections in the call alone."""
        confirmed = self._confirmed()
        if confirmed is not None:
            services.check_caller(self.user, self.session_id, confirmed)
        else:  # read afresh, and kept: it is newer than the one this socket held
            self.access = await database_sync_to_async(services.check_caller)(self.user, self.session_id)
        if not self.in_call:
            raise Forbidden("Join the call first.", to=message.to)
        if message.to == self.seat.user or message.to not in self.hub.roster:  # type: ignore[union-attr]
            raise NotFound("That participant is not in the call.", to=message.to)
        await self.hub.signal(message.to, message.frame(self.seat.user))  # type: ignore[union-attr]

    async def on_chat(self, message: ChatSend) -> None:
        bucket = chat_buckets[(self.session_id, self.seat.user)]
        if not bucket.take():
            await self._error("rate_limited", "Too many chat messages; slow down.", message.ref,
                              retry_after=round(bucket.wait(1), 2))
            return
        reply = await self._write(services.post_chat, message)
        if reply is not None:  # a repeated ref: answered here, not broadcast again
            await self.send(text_data=encode(reply))

    def _confirmed(self) -> Any:
        return self.access if self.hub is not None and self.hub.confirms(self.access) else None

    handlers: dict[type[Message], Callable[[Any, Any], Awaitable[None]]] = {
        Cursor: on_cursor,
        Viewport: on_viewport,
        Draft: on_draft,
        AnnotationCreate: on_create,
        AnnotationUpdate: on_update,
        AnnotationDelete: on_delete,
        Ping: on_ping,
        CallJoin: on_call_join,
        CallLeave: on_call_leave,
        RtcOffer: on_signal,
        RtcAnswer: on_signal,
        RtcIce: on_signal,
        RtcLeave: on_signal,
        ChatSend: on_chat,
    }

    async def _write(self, service: Callable[..., Any], message: Any, **memo: Any) -> Any:
        """Call a write service in the database thread; the access this socket holds stands for a new
        read when the hub's seat check (awaited in :meth:`receive`) confirms it, as it does unless
        something changed in the last second."""
        confirmed = self.access if self.hub is not None and self.hub.confirms(self.access) else None

        def call() -> Any:
            origin = Origin(self.connection_id, message.ref)
            return service(self.user, self.session_id, message, confirmed=confirmed, origin=origin, **memo)

        return await database_sync_to_async(call)()

    # -- from the hub (which only forwards) -------------------------------------------------------

    async def deliver(self, text: str) -> None:
        if self.closing:
            return
        if not self.ready:
            self.backlog.append(text)
            return
        await self.send(text_data=text)

    async def refresh(self) -> None:
        """Role or mode changed: a fresh seat and snapshot (what this participant may see changed)."""
        try:
            access, state = await database_sync_to_async(services.refreshed_state)(self.user, self.session_id)
        except DomainError as error:
            await self._close(CLOSE_CODES.get(error.code, 4403))
            return
        self.access = access
        self.seat = access.require_seat()
        self.ready = False
        await self._send_state(state)

    async def revoke(self, code: str) -> None:
        """The seat is gone: close with the code a new connection would get (4401, 4403 or 4404)."""
        await self._close(next((close for error, close in CLOSE_CODES.items() if error == code), 4403))

    async def _close(self, code: int) -> None:
        self.closing = True
        await self.close(code=code)

    # -- helpers ----------------------------------------------------------------------------------

    async def _send_state(self, state: dict[str, Any]) -> None:
        """Send the snapshot (in frames under the websocket's limit), then what arrived while it was
        taken, minus what it already contains."""
        for text in protocol.snapshot_frames(state):
            await self.send(text_data=text)
        versions = {a["id"]: a["version"] for a in state["annotations"]}
        backlog, self.backlog = self.backlog, []
        self.ready = True
        for text in protocol.resume(backlog, versions):
            await self.send(text_data=text)

    async def _notify_dropped(self) -> None:
        now = time.monotonic()
        if now - self.dropped_notified_at >= 1.0:
            self.dropped_notified_at = now
            await self._error("rate_limited", "Too many cursor, viewport or draft messages; some were dropped.",
                              None, dropped=self.ephemeral.dropped)

    async def _error(self, code: str, message: str, ref: str | None, **extra: Any) -> None:
        await self.send(text_data=encode(protocol.error_frame(code, message, ref, **extra)))

