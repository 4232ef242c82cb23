"""One hub per session per process: the session group's only member here, fanning out to local sockets.

Why: 50 readers sending 30 cursors a second would be 75,000 channel-layer messages a second if every
cursor went to every consumer. Instead each process's hub

- collects the latest cursor, viewport and draft of each local participant, and publishes what moved at
  most once per tick (:data:`TICK`) to the group, one message for the whole process;
- merges what other processes published with its own, and at most once per tick gives each local socket
  one ``cursors`` (``viewports``, ``drafts``) frame with the latest entry of every other participant that
  moved and that this socket may see (:func:`collab.visibility.may_see`), never its own;
- forwards events (annotations, session changes) to the local sockets allowed to see them, and the latest
  presence (who is online) once per tick,
  and tells sockets of a removed participant to close, and those whose role or mode changed to refresh.

- checks, about once a second and for all its sockets in one go, that each local participant still
  holds a seat (:meth:`SessionHub.verify`): a consumer awaits a check younger than
  :data:`RECHECK_SECONDS` before relaying a message, so access lost in a way no signal announced (raw
  SQL, another deployment's script) still ends within a second, at the cost of one query batch per
  process and second, not one per socket.
  While the session is in use (a message or a join within :data:`IN_USE_SECONDS`) the hub runs the
  check ahead of time in the background (:meth:`SessionHub._keep_checked`), so no message waits for it;
  only the first message after a quiet spell does.

Nothing is queued without bound: entries are keyed by (kind, user) and overwritten. The hub reads the
database only for that check and to mark its connections as seen (presence survives a dead process).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from collab import events
from collab.events import encode, group_name
from collab.visibility import Seat, What, may_see
from viewer import grants

if TYPE_CHECKING:
    from collab.access import SessionAccess

log = logging.getLogger(__name__)

TICK = 0.05  # 20 ephemeral frames a second at most, per socket and kind
HEARTBEAT = 30.0
#: The longest a participant who lost their seat can go on sending ephemeral messages, when no signal
#: announced the loss (the ORM's signals close their connections at once: ``collab.services.lost_access``).
RECHECK_SECONDS = 1.0
#: How old the last seat check may grow before the hub of a session in use starts the next one, so that
#: it is done before :data:`RECHECK_SECONDS` and the messages never wait for it.
CHECK_AHEAD_SECONDS = 0.7
#: A session whose sockets sent nothing (and nobody joined) for this long is quiet: its hub stops checking
#: ahead, and the next message waits for one check (a few milliseconds).
IN_USE_SECONDS = 30.0
KINDS = {"cursors": What.CURSOR, "viewports": What.VIEWPORT, "drafts": What.DRAFT}


class Listener(Protocol):
    connection_id: str
    seat: Seat

    async def deliver(self, text: str) -> None: ...
    async def refresh(self) -> None: ...
    async def revoke(self, code: str) -> None: ...


def seat_key(session_id: int, user: str) -> tuple[str, int, str]:
    """A seat check's grant in the one memory of grants (:data:`viewer.grants.GRANTS`)."""
    return ("seat", session_id, user)


class SessionHub:
    def __init__(self, session_id: int, mode: str, private: bool = False, project_id: int | None = None) -> None:
        self.id = uuid.uuid4().hex
        self.session_id = session_id
        self.group = group_name(session_id)
        self.mode = mode
        self.private = private  # the project's private_annotations (collab.visibility), as last checked
        self.project_id = project_id
        #: The project's instances held in quarantine and their series, as of the last seat check (None:
        #: too many to list, every instance counts as held); ephemeral entries on them (or on a plane of
        #: such a series) reach project organizers only.
        self.held: frozenset[str] | None = frozenset()
        self.layer = get_channel_layer()
        self.loop = asyncio.get_running_loop()
        self.listeners: dict[str, Listener] = {}
        self.channel = ""
        self.closed = False
        # (kind) → user → (author seat, entry): local moves to publish, everything to deliver.
        self.outbox: dict[str, dict[str, tuple[Seat, dict[str, Any]]]] = {k: {} for k in KINDS}
        self.inbox: dict[str, dict[str, tuple[Seat, str, bool]]] = {k: {} for k in KINDS}
        self.presence: str | None = None  # the latest presence frame not yet delivered
        self.last_publish = self.last_flush = 0.0
        self.publish_scheduled = self.flush_scheduled = False
        self.tasks: list[asyncio.Task[None]] = []
        self.ready: asyncio.Future[None] = asyncio.ensure_future(self._start())
        self.stats = {"published": 0, "flushed_frames": 0, "events": 0, "seat_checks": 0, "waits_for_seat_check": 0}
        self.verified_at = time.monotonic()  # the first listener was checked when it connected
        self.used_at = time.monotonic()  # the last message or join (see _keep_checked)
        self.verifying: asyncio.Future[None] | None = None
        # A memo of the session's instances for live writes, dropped whenever access changes. (What the
        # last seat check granted each local user is in the one memory of grants: see confirms.)
        self.instances: dict[str, Any] = {}
        #: Who is in the session's call (usernames), as the latest ``call`` event said: signalling
        #: messages are addressed to one of them (:meth:`signal`).
        self.roster: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def _start(self) -> None:
        events.start_outbox()
        # The default prefix: channels-redis reads all of a process's specific channels in one loop.
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        if self.project_id is not None:  # (the seat check reads it again, about once a second)
            from viewer.access import held_instance_uids

            self.held = await database_sync_to_async(held_instance_uids)(self.project_id)
        self.roster = await database_sync_to_async(_roster)(self.session_id)
        self.tasks = [asyncio.ensure_future(task) for task in
                      (self._receive(), self._heartbeat(), self._keep_checked(), self._prepare_writes())]

    async def _prepare_writes(self) -> None:
        from collab.services import prepare_live_writes

        try:
            await database_sync_to_async(prepare_live_writes)(self.session_id)
        except Exception:  # only an optimisation: the first write does the same itself
            log.exception("collab hub: preparing the live writes of session %s failed", self.session_id)

    async def stop(self) -> None:
        self.closed = True
        await self.ready
        for task in self.tasks:
            task.cancel()
        await self.layer.group_discard(self.group, self.channel)

    # -- ephemeral: cursors, viewports, drafts ---------------------------------------------------------

    def move(self, kind: str, seat: Seat, entry: dict[str, Any]) -> None:
        """A local participant's latest ``kind`` entry; replaces the one not yet sent."""
        self.outbox[kind][seat.user] = (seat, entry)
        self.inbox[kind][seat.user] = (seat, encode(entry), self._on_held(entry))
        self._schedule("publish")
        self._schedule("flush")

    def forget(self, user: str) -> None:
        for kind in KINDS:
            self.outbox[kind].pop(user, None)
            self.inbox[kind].pop(user, None)

    def _schedule(self, what: str) -> None:
        if getattr(self, f"{what}_scheduled"):
            return
        setattr(self, f"{what}_scheduled", True)
        delay = max(0.0, getattr(self, f"last_{what}") + TICK - time.monotonic())
        self.loop.call_later(delay, lambda: asyncio.ensure_future(getattr(self, f"_{what}")()))

    async def _publish(self) -> None:
        self.publish_scheduled = False
        self.last_publish = time.monotonic()
        items = [[kind, seat.as_dict(), entry] for kind, moved in self.outbox.items() for seat, entry in moved.values()]
        for moved in self.outbox.values():
            moved.clear()
        if not items or self.closed:
            return
        self.stats["published"] += 1
        try:
            await self.layer.group_send(self.group, {"type": "hub.moves", "origin": self.id, "items": items})
        except Exception:
            log.exception("collab hub: publishing moves of session %s failed", self.session_id)

    async def _flush(self) -> None:
        self.flush_scheduled = False
        self.last_flush = time.monotonic()
        batches = {kind: list(moved.values()) for kind, moved in self.inbox.items() if moved}
        for moved in self.inbox.values():
            moved.clear()
        presence, self.presence = self.presence, None
        if presence is not None:
            for listener in list(self.listeners.values()):
                await self._deliver(listener, presence)
        if not batches:
            return
        for listener in list(self.listeners.values()):
            viewer = listener.seat
            for kind, entries in batches.items():
                fragments = [
                    text for author, text, held in entries
                    if author.user != viewer.user
                    and may_see(viewer, author, self.mode, KINDS[kind], private=self.private, quarantined=held)
                ]
                if fragments:
                    self.stats["flushed_frames"] += 1
                    await self._deliver(listener, '{"type":"%s","%s":[%s]}' % (kind, kind, ",".join(fragments)))

    # -- seats -------------------------------------------------------------------------------------

    async def verify(self, *, now: bool = False) -> None:
        """Return once every local participant's seat was checked within :data:`RECHECK_SECONDS`
        (``now``: check again at once, as after a write the services refused).

        One check at a time for the whole process (callers share it); sockets whose user lost the seat
        are closed, those whose seat changed take a fresh snapshot. Callers look at their own state after.
        """
        self.used_at = time.monotonic()
        if not now and self.used_at - self.verified_at < RECHECK_SECONDS:
            return
        self.stats["waits_for_seat_check"] += 1
        await asyncio.shield(self._check())

    def _check(self) -> asyncio.Future[None]:
        """The seat check under way, started if none is."""
        if self.verifying is None:
            self.verifying = asyncio.ensure_future(self._verify())
        return self.verifying

    async def _keep_checked(self) -> None:
        """While the session is in use, start each seat check before the last one is a second old."""
        while True:
            now = time.monotonic()
            wait = self.verified_at + CHECK_AHEAD_SECONDS - now
            if wait <= 0 and self.listeners and now - self.used_at < IN_USE_SECONDS:
                await asyncio.shield(self._check())
                wait = self.verified_at + CHECK_AHEAD_SECONDS - time.monotonic()
            # (quiet, or the check failed and was logged: look again shortly)
            await asyncio.sleep(wait if wait > 0 else CHECK_AHEAD_SECONDS / 2)

    def confirms(self, access: SessionAccess) -> bool:
        """Did a seat check of this session, within the memory's TTL, grant exactly ``access``'s grant?

        Then a write may use ``access`` without reading it again (``collab.services.live._writer``): its seat,
        project role, the session's status and mode are what the database held a moment ago. The checks
        keep their grants in the one memory of granted decisions (:data:`viewer.grants.GRANTS`), which any
        change of access since emptied (:data:`viewer.grants.access_changed`; in other processes, through
        the events that reach their hubs: :meth:`_on_event`).
        """
        grant = access.grant
        return grant is not None and grants.GRANTS.get(seat_key(self.session_id, grant.seat.user)) == grant

    def forget_grants(self) -> None:
        """Access changed somewhere: every remembered grant (images' and seats') goes, here and in every
        receiver of :data:`~viewer.grants.access_changed` of this process; so does the instances memo."""
        self.instances = {}
        grants.access_changed.send(sender=SessionHub, session_id=self.session_id)

    def _on_held(self, entry: dict[str, Any]) -> bool:
        """Is this cursor, viewport or draft on an instance held in quarantine, or on a reformatted plane
        of a series holding one (``plane``, or a viewport's ``mpr``)? A plane is as held as the series it
        is cut from (the set holds the held images' series too: ``viewer.access.held_instance_uids``)."""
        plane = entry.get("plane") or entry.get("mpr")  # (a viewport in the MPR layout: its series')
        uids = [uid for uid in (entry.get("instance"), plane.get("series") if isinstance(plane, dict) else None) if uid]
        if not uids:
            return False
        return self.held is None or any(uid in self.held for uid in uids)

    async def _verify(self) -> None:
        from collab.services import check_seats
        from viewer.access import held_instance_uids

        def check(usernames: set[str]) -> Any:
            generation = grants.GRANTS.generation  # read before the check (see GrantMemory.remember)
            held = held_instance_uids(self.project_id) if self.project_id is not None else frozenset()
            checked = check_seats(self.session_id, usernames)
            for user, grant in checked.grants.items():
                grants.GRANTS.remember(seat_key(self.session_id, user), grant, generation)
            return checked, held

        try:
            listeners = list(self.listeners.values())
            checked, self.held = await database_sync_to_async(check)({l.seat.user for l in listeners})
            self.verified_at = time.monotonic()
            self.stats["seat_checks"] += 1
            mode_changed = checked.mode is not None and (checked.mode != self.mode or checked.private != self.private)
            self.mode = checked.mode or self.mode
            self.private = checked.private if checked.mode is not None else self.private
            for listener in listeners:
                seat = checked.seats.get(listener.seat.user)
                if seat is None:
                    self.forget(listener.seat.user)
                    await listener.revoke(str(checked.refused.get(listener.seat.user, "forbidden")))
                elif seat != listener.seat or mode_changed:
                    await listener.refresh()
        except Exception:
            log.exception("collab hub: checking the seats of session %s failed", self.session_id)
        finally:
            self.verifying = None

    # -- the group ----------------------------------------------------------------------------------

    async def _receive(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
                if message.get("type") == "hub.moves":
                    self._on_moves(message)
                elif message.get("type") == "hub.event":
                    await self._on_event(message)
                elif message.get("type") == "hub.signal":
                    if message.get("origin") != self.id:
                        await self._deliver_signal(message["to"], message["text"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("collab hub: session %s could not handle a message", self.session_id)
                await asyncio.sleep(0.1)

    def _on_moves(self, message: dict[str, Any]) -> None:
        if message.get("origin") == self.id:
            return  # already delivered locally when it moved
        for kind, seat, entry in message["items"]:
            if kind in KINDS:
                self.inbox[kind][seat["user"]] = (Seat.from_dict(seat), encode(entry), self._on_held(entry))
        self._schedule("flush")

    async def _on_event(self, message: dict[str, Any]) -> None:
        self.stats["events"] += 1
        kind = message["kind"]
        if kind in ("session", "seat", "revoke"):
            self.forget_grants()  # the next write reads its access (and instances) afresh
        if kind == "annotation":
            author = Seat.from_dict(message["author"])
            origin = message.get("origin")
            for listener in list(self.listeners.values()):
                if may_see(listener.seat, author, self.mode, What.ANNOTATION, private=self.private,
                           quarantined=bool(message.get("quarantined"))):
                    text = message["origin_text"] if listener.connection_id == origin else message["text"]
                    await self._deliver(listener, text)
        elif kind == "chat":
            author = Seat.from_dict(message["author"])
            origin = message.get("origin")
            for listener in list(self.listeners.values()):
                if may_see(listener.seat, author, self.mode, What.CHAT, private=self.private):
                    text = message["origin_text"] if listener.connection_id == origin else message["text"]
                    await self._deliver(listener, text)
        elif kind == "call":
            self.roster = set(message.get("users", ()))
            for listener in list(self.listeners.values()):
                if getattr(listener, "in_call", False) and listener.seat.user not in self.roster:
                    listener.in_call = False  # type: ignore[attr-defined]  # (the call was ended for them)
                await self._deliver(listener, message["text"])
        elif kind == "presence":
            # Each frame lists everyone: when many join at once, only the latest is sent, once a tick.
            self.presence = message["text"]
            self._schedule("flush")
        elif kind == "session":
            self.mode = message["mode"]
            for listener in list(self.listeners.values()):
                await self._deliver(listener, message["text"])
                if message.get("refresh"):
                    await listener.refresh()
        elif kind == "seat":
            for listener in list(self.listeners.values()):
                if listener.seat.user == message["user"]:
                    await listener.refresh()
        elif kind == "revoke":
            self.forget(message["user"])
            for listener in list(self.listeners.values()):
                if listener.seat.user == message["user"]:
                    await listener.revoke(message.get("code", "forbidden"))

    # -- the call: signalling addressed to one participant -------------------------------------------

    async def signal(self, to: str, frame: dict[str, Any]) -> None:
        """Deliver a WebRTC signalling ``frame`` to ``to``'s connections in the call, here and in the
        session's other processes (through the group); nobody else receives it. Not stored."""
        text = encode(frame)
        await self._deliver_signal(to, text)
        try:
            await self.layer.group_send(self.group, {"type": "hub.signal", "origin": self.id, "to": to, "text": text})
        except Exception:
            log.exception("collab hub: signalling in session %s failed", self.session_id)

    async def _deliver_signal(self, to: str, text: str) -> None:
        for listener in list(self.listeners.values()):
            if listener.seat.user == to and getattr(listener, "in_call", False):
                await self._deliver(listener, text)

    async def _deliver(self, listener: Listener, text: str) -> None:
        try:
            await listener.deliver(text)
        except Exception:  # one broken socket must not stop the others
            log.exception("collab hub: delivery to %s failed", listener.connection_id)

    async def _heartbeat(self) -> None:
        from collab.services import touch_connections

        while True:
            await asyncio.sleep(HEARTBEAT)
            if self.listeners:
                try:
                    await database_sync_to_async(touch_connections)(list(self.listeners))
                except Exception:
                    log.exception("collab hub: heartbeat of session %s failed", self.session_id)


def _roster(session_id: int) -> set[str]:
    from collab.models import ReadingSession
    from collab.services import call_roster

    session = ReadingSession.objects.filter(pk=session_id).first()
    return {p["user"] for p in call_roster(session)} if session is not None else set()


_hubs: dict[int, SessionHub] = {}


async def attach(session_id: int, mode: str, listener: Listener, private: bool = False,
                 project_id: int | None = None) -> SessionHub:
    """The process's hub of the session (started if needed) with ``listener`` on it."""
    hub = _hubs.get(session_id)
    if hub is None or hub.closed or hub.loop is not asyncio.get_running_loop():
        hub = _hubs[session_id] = SessionHub(session_id, mode, private, project_id)
    hub.listeners[listener.connection_id] = listener
    hub.used_at = time.monotonic()
    await hub.ready
    return hub


async def detach(hub: SessionHub, listener: Listener) -> None:
    hub.listeners.pop(listener.connection_id, None)
    if not hub.listeners and not hub.closed:
        if _hubs.get(hub.session_id) is hub:
            del _hubs[hub.session_id]
        await hub.stop()
