"""What an association receives, bounded as it arrives: C-STORE data sets written to a spool file
fragment by fragment, never held in memory and never past ``MAX_INSTANCE_BYTES``.

pynetdicom assembles each DIMSE message from its P-DATA fragments in memory and hands the handler a
C-STORE data set only once all of it came, so an instance's size could be checked only after it was
held whole. Here each association's P-DATA go through :meth:`Receiver.receive` first, one fragment
at a time:

- a C-STORE request's data set fragments are written to a file in the upload spool
  (``FILE_UPLOAD_TEMP_DIR``; ``tmp*.upload.dimse``, swept by ``clean_storage`` if the process dies),
  after a PS3.10 header made from the request (:func:`viewer.dimse.rules.part10_header`), and reach
  pynetdicom empty. Past ``MAX_INSTANCE_BYTES`` (or when the spool cannot be written) the file is
  dropped and the rest of the data set is discarded as it comes: the handler answers "out of
  resources" (A700) and the association goes on.
- a command set past :data:`MAX_COMMAND_BYTES`, or another message's data set (a C-FIND, C-GET or
  C-MOVE identifier) past :data:`MAX_IDENTIFIER_BYTES`, aborts the association.

The handler takes the file of its request by Message ID (:meth:`Receiver.take`).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, field
from typing import IO, Any, Callable

from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.pdu_primitives import P_DATA

from viewer.dimse import rules

log = logging.getLogger(__name__)

#: A command set is a few hundred bytes; more than this is not one.
MAX_COMMAND_BYTES = 64 * 1024
#: A C-FIND, C-GET or C-MOVE identifier (or any data set but a C-STORE's) holds at most this.
MAX_IDENTIFIER_BYTES = 1024 * 1024


#: A spool file's name: as Django names the uploads it spools (``tmpXXXX.upload.dcm``), so that
#: ``clean_storage`` sweeps those a killed listener left.
SPOOL_PREFIX, SPOOL_SUFFIX = "tmp", ".upload.dimse"

TOO_LARGE = "The instance is larger than this archive accepts."
NOT_SPOOLED = "The instance could not be written to the spool."
BAD_META = "The request's SOP Class or Instance UID cannot be written as file meta."


@dataclass
class Received:
    """One C-STORE request's data set as it arrives: its spool file (header first), the data set's
    size so far, and why it is refused ("out of resources": past the bound, or the spool could not be
    written), then without its file."""

    message_id: int
    file: IO[bytes] | None
    size: int = 0
    refusal: str = ""
    complete: bool = False

    def close(self) -> None:
        if self.file is not None:
            self.file.close()  # a NamedTemporaryFile: closing removes it
            self.file = None

    def read(self) -> bytes:
        """The PS3.10 file: the header and the data set as received."""
        assert self.file is not None
        self.file.flush()
        self.file.seek(0)
        return self.file.read()


@dataclass
class Receiver:
    """The P-DATA filter of one association (installed by :func:`install`)."""

    assoc: Any
    deliver: Callable[[P_DATA], None]  # pynetdicom's own DIMSEServiceProvider.receive_primitive
    limit: int
    folder: str
    source_ae: str
    received: dict[int, Received] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _command_bytes: int = 0
    _other_bytes: int = 0
    _current: Received | None = None
    _aborted: bool = False

    def receive(self, primitive: P_DATA) -> None:
        """Filter ``primitive``'s fragments, then give them to pynetdicom one at a time (as its own loop
        would, fragment after fragment). A failure here aborts the association (the DUL thread that
        calls it must not die)."""
        if self._aborted:
            return
        try:
            self._receive(primitive)
        except Exception:
            log.exception("DIMSE: a P-DATA could not be received")
            self._abort("a P-DATA could not be received")

    def _receive(self, primitive: P_DATA) -> None:
        for context_id, data in primitive.presentation_data_value_list:
            if not data:
                continue
            header = data[0]
            last = bool(header & 2)
            if header & 1:  # a command set fragment
                self._command_bytes += len(data) - 1
                if self._command_bytes > MAX_COMMAND_BYTES:
                    return self._abort("a command set larger than a command set can be")
                if last:
                    self._command_bytes = 0
            else:
                data = self._data_fragment(context_id, data, last)
                if data is None:
                    return None
            single = P_DATA()
            single.presentation_data_value_list = [[context_id, data]]
            self.deliver(single)
        return None

    def _data_fragment(self, context_id: int, data: bytes, last: bool) -> bytes | None:
        message = self.assoc.dimse.message
        if not isinstance(message, C_STORE_RQ):
            self._other_bytes += len(data) - 1
            if self._other_bytes > MAX_IDENTIFIER_BYTES:
                self._abort("an identifier larger than an identifier can be")
                return None
            if last:
                self._other_bytes = 0
            return data
        current = self._current
        if current is None:
            current = self._current = self._start(context_id, message)
        size = len(data) - 1
        if not current.refusal:
            if current.size + size > self.limit:
                current.refusal = TOO_LARGE
                current.close()  # what came so far is dropped; the rest is discarded as it comes
            else:
                assert current.file is not None
                try:
                    current.file.write(memoryview(data)[1:])
                except OSError as exc:  # a full disk: refused as out of resources
                    log.warning("C-STORE request %s: the spool cannot be written (%s)", current.message_id, exc)
                    current.refusal = NOT_SPOOLED
                    current.close()
        current.size += size
        if last:
            current.complete = True
            self._current = None
        return data[:1]  # pynetdicom keeps none of it

    def _start(self, context_id: int, message: C_STORE_RQ) -> Received:
        command = message.command_set
        message_id = int(command.MessageID)
        syntax = next((str(cx.transfer_syntax[0]) for cx in self.assoc.accepted_contexts
                       if cx.context_id == context_id), "")
        received = Received(message_id, None)
        try:
            received.file = tempfile.NamedTemporaryFile(  # noqa: SIM115
                dir=self.folder, prefix=SPOOL_PREFIX, suffix=SPOOL_SUFFIX)
            received.file.write(rules.part10_header(
                transfer_syntax=syntax, sop_class=_text(command.AffectedSOPClassUID),
                sop_instance=_text(command.AffectedSOPInstanceUID), source_ae=self.source_ae))
        except OSError as exc:
            log.warning("C-STORE request %s: the spool cannot be written (%s)", message_id, exc)
            received.close()
            received.refusal = NOT_SPOOLED
        except Exception:  # noqa: BLE001 - UIDs pydicom cannot write as file meta
            log.info("C-STORE request %s: its file meta cannot be written", message_id)
            received.close()
            received.refusal = BAD_META
        with self.lock:
            stale = self.received.pop(message_id, None)
            self.received[message_id] = received
        if stale is not None:
            stale.close()
        return received

    def take(self, message_id: int) -> Received | None:
        """The data set of the C-STORE request ``message_id``, now the caller's to close."""
        with self.lock:
            return self.received.pop(message_id, None)

    def close(self) -> None:
        """Remove every spool file left (the association ended)."""
        with self.lock:
            left, self.received = list(self.received.values()), {}
        for received in left:
            received.close()

    def _abort(self, why: str) -> None:
        log.warning("DIMSE association aborted: %s", why)
        self._aborted = True
        # As pynetdicom does for a message it cannot decode: the state machine sends an A-ABORT.
        self.assoc.dul.event_queue.put("Evt19")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip("\0 ")


def install(assoc: Any, *, limit: int, folder: str, source_ae: str) -> Receiver:
    """Put a :class:`Receiver` in front of ``assoc``'s DIMSE provider: the DUL hands it every P-DATA."""
    receiver = Receiver(assoc, assoc.dimse.receive_primitive, limit, folder, source_ae)
    assoc.dimse.receive_primitive = receiver.receive
    return receiver
