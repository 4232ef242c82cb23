"""The DIMSE listener (``manage.py dicom_listener``): pynetdicom handlers, thin.

- Association request: the caller is identified by called AE title (the project), calling AE title and
  address (the node, :mod:`viewer.dimse.nodes`); anyone else is rejected before any DIMSE message.
- C-ECHO: success for an accepted caller.
- C-STORE: the data set as received, written to a spool file as its fragments arrive and bounded by
  ``MAX_INSTANCE_BYTES`` (:mod:`viewer.dimse.receive`: "out of resources" beyond it, never held
  whole), becomes a PS3.10 file given to the ingest service (:func:`viewer.ingest.ingest_bytes`:
  validation, de-identification, quarantine, the index rows); the result is the status
  (:func:`viewer.dimse.rules.store_status`).
- C-FIND, C-GET, C-MOVE: through the gate, with the node's access (:func:`viewer.access.access_node`),
  over QIDO-RS's search (:mod:`viewer.dimse.query`). A C-MOVE's sub-operations go from the project's
  AE title to the destination node's, naming the move's originator (:class:`ListenerAE`).

pynetdicom runs each association in its own thread: every handler starts by dropping database
connections that are unusable or too old (as Django does per request), and the thread's connections
are closed when its association ends. Each association is audited once when it ends (what a node
stored); each retrieve when it is made.
"""

from __future__ import annotations

import copy
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, build_context, evt
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from audit.models import Action, Outcome
from audit.services import record
from crossread.conf import option
from crossread.errors import DomainError
from viewer import rules as access_rules
from viewer.access import access_node
from viewer.dimse import nodes, query, receive, rules
from viewer.ingest import IngestResult, Outcome as IngestOutcome, ingest_bytes
from viewer.ingest import failed as ingest_failed

log = logging.getLogger(__name__)

#: The transfer syntaxes accepted for every storage SOP class, in the order offered by the caller:
#: implicit and explicit little endian, deflated, (retired) big endian, JPEG baseline, extended and
#: lossless, JPEG-LS, JPEG 2000 and RLE. Files are stored as sent, in their syntax.
TRANSFER_SYNTAXES = [
    ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian,
    JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1, JPEGLSLossless, JPEGLSNearLossless,
    JPEG2000Lossless, JPEG2000, RLELossless,
]
UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
QUERY_MODELS = {
    PatientRootQueryRetrieveInformationModelFind: "patient", StudyRootQueryRetrieveInformationModelFind: "study",
    PatientRootQueryRetrieveInformationModelGet: "patient", StudyRootQueryRetrieveInformationModelGet: "study",
    PatientRootQueryRetrieveInformationModelMove: "patient", StudyRootQueryRetrieveInformationModelMove: "study",
}
#: At most this many presentation contexts in an association requested for C-MOVE (PS3.8: 128).
MAX_MOVE_CONTEXTS = 128
#: ErrorComment is LO: at most 64 characters.
COMMENT_CHARS = 64


@dataclass
class _Association:
    """What the listener knows of one accepted association."""

    caller: nodes.Caller
    receiver: receive.Receiver | None = None
    stored: list[IngestResult] = field(default_factory=list)
    audited: bool = False


def _state(event: evt.Event) -> _Association | None:
    return getattr(event.assoc, "crossread", None)


def _status(status: int, comment: str = "") -> Dataset:
    ds = Dataset()
    ds.Status = status
    if comment:
        ds.ErrorComment = "".join(c for c in comment if 0x20 <= ord(c) < 0x7F and c != "\\")[:COMMENT_CHARS]
    return ds


# ----------------------------------------------------------------------------- the association


def on_requested(event: evt.Event) -> None:
    """Identify the caller; reject an association no project's node may make."""
    close_old_connections()
    primitive = event.assoc.requestor.primitive
    called = _text(primitive.called_ae_title)
    calling = _text(primitive.calling_ae_title)
    address = str(event.assoc.requestor.address)
    found = nodes.identify(called, calling, address)
    if isinstance(found, nodes.Refusal):
        log.info("DIMSE association from %s@%s to %s rejected: %s", calling, address, called, found.reason)
        record(Action.ACCESS_DENIED, actor_name=f"dicom:{calling}"[:150], outcome=Outcome.FAILURE,
               object_type="dicom.association", object_id=called, source_ip=address, via="dimse",
               reason=found.reason)
        event.assoc.acse.send_reject(0x01, 0x01, found.diagnostic)
        event.assoc.kill()  # as pynetdicom's own rejection: the DUL sends the PDU, then stops
        connections.close_all()  # no release or abort event follows a rejection
        return
    receiver = receive.install(event.assoc, limit=int(option("MAX_INSTANCE_BYTES")),
                               folder=getattr(settings, "FILE_UPLOAD_TEMP_DIR", None) or None, source_ae=found.calling)
    event.assoc.crossread = _Association(found, receiver)


def on_ended(event: evt.Event) -> None:
    """Audit what the association stored (once), then close this thread's database connections."""
    state = _state(event)
    try:
        if state is not None and state.receiver is not None:
            state.receiver.close()
        if state is not None and state.stored and not state.audited:
            state.audited = True
            results = state.stored
            counts = {outcome.value: sum(r.outcome == outcome for r in results) for outcome in IngestOutcome}
            studies = sorted({r.study_instance_uid for r in results if r.ok})
            caller = state.caller
            record(Action.UPLOAD, actor_name=f"dicom:{caller.calling}"[:150], project=caller.project,
                   object_type="studies", object_id=",".join(studies)[:200], source_ip=caller.address,
                   via="dimse", called=caller.called, **counts)
    finally:
        connections.close_all()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip()


# ----------------------------------------------------------------------------- services


def handle_echo(event: evt.Event) -> int:
    return rules.SUCCESS


def handle_store(event: evt.Event) -> Dataset:
    close_old_connections()
    state = _state(event)
    if state is None:
        return _status(rules.NOT_AUTHORISED)
    caller = state.caller
    request = event.request
    sop_class = _text(request.AffectedSOPClassUID)
    sop_instance = _text(request.AffectedSOPInstanceUID)

    def refused(status: int, reason: str) -> Dataset:
        state.stored.append(ingest_failed(sop_instance, reason, status))  # counted in the association's audit
        return _status(status, reason)

    received = state.receiver.take(int(request.MessageID)) if state.receiver is not None else None
    if received is None:
        return refused(rules.CANNOT_UNDERSTAND, "The C-STORE request carries no data set.")
    try:
        if not access_rules.node_may_store(caller.node.kind):
            return refused(rules.NOT_AUTHORISED, "This node may not store into the project.")
        if received.refusal:  # past MAX_INSTANCE_BYTES, or not written to the spool
            status = rules.CANNOT_UNDERSTAND if received.refusal == receive.BAD_META else rules.OUT_OF_RESOURCES
            return refused(status, received.refusal)
        data = received.read()  # the PS3.10 file: the header made from the request, the data set as received
    finally:
        received.close()
    mismatch = rules.identity_status(data, sop_class=sop_class, sop_instance=sop_instance)
    if mismatch is not None:
        return refused(mismatch, "The data set's SOP Class or Instance UID differs from the request's.")
    result = ingest_bytes(caller.project, data, name=sop_instance)
    state.stored.append(result)
    status = rules.store_status(ok=result.ok, failure_code=result.failure_code,
                                coerced=bool(caller.project.deidentification))
    return _status(status, "" if result.ok else result.reason)


def _query_access(event: evt.Event) -> tuple[_Association, Any, str]:
    state = _state(event)
    if state is None:
        raise rules.IdentifierError("Not authorised.", rules.NOT_AUTHORISED)
    try:
        access = access_node(state.caller.project, state.caller.node.kind)
    except DomainError:
        caller = state.caller
        record(Action.ACCESS_DENIED, actor_name=f"dicom:{caller.calling}"[:150], outcome=Outcome.FAILURE,
               project=caller.project, object_type="dicom.query", object_id=caller.called, source_ip=caller.address,
               via="dimse", reason="a sender may not query or retrieve")
        raise rules.IdentifierError("This node may not query the project.", rules.NOT_AUTHORISED) from None
    return state, access, QUERY_MODELS[_text(event.request.AffectedSOPClassUID)]


def handle_find(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
    close_old_connections()
    try:
        state, access, model = _query_access(event)
        try:
            request = rules.find_request(_identifier(event), model)
        except rules.IdentifierError:
            raise
        except (ValueError, TypeError, OverflowError):  # a value pydicom cannot read as its VR says
            raise rules.IdentifierError("The identifier cannot be decoded.", rules.UNABLE_TO_PROCESS) from None
        answers = query.find(access, request, ae_title=state.caller.called)
    except rules.IdentifierError as exc:
        yield _status(exc.status, exc.reason), None
        return
    for answer in answers:
        if event.is_cancelled:
            yield rules.CANCELLED, None
            return
        yield rules.PENDING, answer


def _identifier(event: evt.Event) -> Dataset:
    try:
        identifier = event.identifier
        list(identifier)  # decode every element now
    except Exception:
        raise rules.IdentifierError("The identifier cannot be decoded.", rules.UNABLE_TO_PROCESS) from None
    return identifier


def _retrieve(event: evt.Event) -> tuple[_Association, Any, list[Any]]:
    state, access, model = _query_access(event)
    request = rules.retrieve_request(_identifier(event), model)
    return state, access, query.instances_to_retrieve(access, request)


def _audit_retrieve(state: _Association, instances: list[Any], *, via: str, destination: str = "") -> None:
    caller = state.caller
    studies = sorted({i.series.study.study_instance_uid for i in instances})
    record(Action.DOWNLOAD, actor_name=f"dicom:{caller.calling}"[:150], project=caller.project,
           object_type="studies", object_id=",".join(studies)[:200], source_ip=caller.address, via=via,
           instances=len(instances), **({"destination": destination} if destination else {}))


def handle_get(event: evt.Event) -> Iterator[Any]:
    close_old_connections()
    try:
        state, access, instances = _retrieve(event)
    except rules.IdentifierError as exc:
        yield 1  # pynetdicom takes a failure as the result of a first sub-operation
        yield _status(exc.status, exc.reason), None
        return
    yield len(instances)
    _audit_retrieve(state, instances, via="dimse.c-get")
    for dataset in query.stored_datasets(access, instances):
        if event.is_cancelled:
            yield rules.CANCELLED, None
            return
        yield rules.PENDING, dataset


def handle_move(event: evt.Event) -> Iterator[Any]:
    close_old_connections()
    state = _state(event)
    destination_ae = _text(event.move_destination)
    destination = nodes.move_destination(state.caller.project, destination_ae) if state is not None else None
    if destination is None:
        yield None, None  # "move destination unknown" (0xA801)
        return
    try:
        state, access, instances = _retrieve(event)
    except rules.IdentifierError as exc:
        yield destination.host, destination.port
        yield 1
        yield _status(exc.status, exc.reason), None
        return
    contexts = move_contexts(instances)
    if len(contexts) > MAX_MOVE_CONTEXTS:
        yield destination.host, destination.port
        yield 1
        yield _status(rules.QR_OUT_OF_RESOURCES, "More SOP classes than one association can carry."), None
        return
    # PS3.4 C.4.2.3.1: the sub-operations are C-STOREs from the AE the move was asked of (the project's
    # AE title, the called AE title of this association) to the destination's AE title, each naming
    # the move's originator (the calling AE title) and its Message ID.
    yield destination.host, destination.port, {
        "contexts": contexts, "ae_title": destination.ae_title.strip(),
        "calling_ae_title": state.caller.called, "move_originator": state.caller.calling,
    }
    yield len(instances)
    _audit_retrieve(state, instances, via="dimse.c-move", destination=destination_ae)
    for dataset in query.stored_datasets(access, instances):
        if event.is_cancelled:
            yield rules.CANCELLED, None
            return
        yield rules.PENDING, dataset


def move_contexts(instances: list[Any]) -> list[Any]:
    """One presentation context per SOP class to send: its stored syntaxes, then the uncompressed ones."""
    syntaxes: dict[str, list[str]] = {}
    for instance in instances:
        wanted = syntaxes.setdefault(instance.sop_class_uid, [])
        if instance.transfer_syntax_uid not in wanted:
            wanted.append(instance.transfer_syntax_uid)
    contexts = []
    for sop_class, stored in syntaxes.items():
        listed = [*stored, *(ts for ts in UNCOMPRESSED if ts not in stored)]
        contexts.append(build_context(UID(sop_class), [UID(ts) for ts in listed]))
    return contexts


# ----------------------------------------------------------------------------- the application entity


def no_delay(event: evt.Event) -> None:
    """Send each PDU at once (TCP_NODELAY), on every connection in or out.

    pynetdicom writes a message as several small writes (a C-FIND answer's command, then its
    identifier); with Nagle's algorithm the kernel holds the second until the first is acknowledged,
    and the peer delays that acknowledgement (40 ms on Linux): a C-FIND took 140 ms from findscu's
    start, 100 ms of a pynetdicom SCU's query, and then 90 and 55 ms."""
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # (the peer already gone)
            pass


HANDLERS = [
    (evt.EVT_CONN_OPEN, no_delay),
    (evt.EVT_REQUESTED, on_requested),
    (evt.EVT_RELEASED, on_ended),
    (evt.EVT_ABORTED, on_ended),
    (evt.EVT_C_ECHO, handle_echo),
    (evt.EVT_C_STORE, handle_store),
    (evt.EVT_C_FIND, handle_find),
    (evt.EVT_C_GET, handle_get),
    (evt.EVT_C_MOVE, handle_move),
]


class ListenerAE(AE):
    """The listener's AE. Its associations out (a C-MOVE's sub-operations) may go under another calling
    AE title than its own, and their C-STOREs name the move's originator.

    pynetdicom's C-MOVE service asks this AE to associate with the destination (with the keywords the
    handler yields: ``calling_ae_title``, ``move_originator``) and then sends each C-STORE with
    ``originator_aet`` its own AE title; pynetdicom reads the calling AE title from ``ae_title`` while
    it requests the association, in the thread that asks, so the title is changed for that thread
    only, for that call.
    """

    _calling = threading.local()

    @property  # type: ignore[override]
    def ae_title(self) -> str:
        return getattr(self._calling, "title", None) or self._ae_title

    @ae_title.setter
    def ae_title(self, value: str) -> None:
        AE.ae_title.fset(self, value)  # type: ignore[attr-defined]

    def associate(self, *args: Any, calling_ae_title: str | None = None, move_originator: str | None = None,
                  **kwargs: Any) -> Any:
        if calling_ae_title is not None and not rules.valid_ae_title(calling_ae_title):
            raise ValueError(f"Not a valid AE title: {calling_ae_title!r}")
        self._calling.title = calling_ae_title.strip() if calling_ae_title else None
        kwargs["evt_handlers"] = [(evt.EVT_CONN_OPEN, no_delay), *kwargs.get("evt_handlers", [])]
        try:
            assoc = super().associate(*args, **kwargs)
        finally:
            self._calling.title = None
        if move_originator is not None:
            send = assoc.send_c_store

            def send_c_store(dataset: Any, msg_id: int = 1, priority: int = 2, originator_aet: str | None = None,
                             originator_id: int | None = None) -> Any:
                return send(dataset, msg_id, priority, originator_aet=move_originator, originator_id=originator_id)

            assoc.send_c_store = send_c_store
        return assoc


def application_entity(ae_title: str = "CROSSREAD") -> AE:
    """The listener's AE: every storage SOP class in the common transfer syntaxes (as SCP, and as SCU
    for C-GET on the same association), verification, and Patient and Study Root query/retrieve;
    the limits of the ``DIMSE_*`` options."""
    if not rules.valid_ae_title(ae_title):
        raise ValueError(f"Not a valid AE title: {ae_title!r}")
    ae = ListenerAE(ae_title=ae_title)
    ae.maximum_associations = int(option("DIMSE_MAX_ASSOCIATIONS"))
    ae.maximum_pdu_size = int(option("DIMSE_MAX_PDU_BYTES"))
    ae.network_timeout = float(option("DIMSE_NETWORK_TIMEOUT"))
    ae.acse_timeout = float(option("DIMSE_ACSE_TIMEOUT"))
    ae.dimse_timeout = float(option("DIMSE_DIMSE_TIMEOUT"))
    ae.connection_timeout = float(option("DIMSE_ACSE_TIMEOUT"))
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
    ae.add_supported_context(Verification, UNCOMPRESSED)
    for model in QUERY_MODELS:
        ae.add_supported_context(model, UNCOMPRESSED)
    return ae


class SupportedContexts(list):  # type: ignore[type-arg]
    """The listener's presentation contexts, as its server hands them to each association.

    pynetdicom deep-copies the server's contexts for every association it accepts: about 150
    contexts of 13 transfer syntaxes each, 20 ms of each association (Orthanc accepts one in 5 ms).
    A context's one mutable part is its list of transfer syntaxes (its UIDs are strings, its other
    fields numbers and flags): a copy of each context with a list of its own is as independent of
    the server's, and is made in a fraction of a millisecond."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        copies = []
        for context in self:
            duplicate = copy.copy(context)
            duplicate._transfer_syntax = list(context._transfer_syntax)
            copies.append(duplicate)
        return copies


def serve(host: str, port: int, ae_title: str = "CROSSREAD") -> None:
    """Listen on ``host:port`` until interrupted."""
    ae = application_entity(ae_title)
    # pynetdicom logs every message at INFO, C-FIND identifiers and answers with their patient names
    # among them: warnings and errors only.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    log.info("DIMSE listener %s on %s:%s", ae_title, host, port)
    ae.start_server((host, port), block=True, evt_handlers=HANDLERS, contexts=SupportedContexts(ae.supported_contexts))
