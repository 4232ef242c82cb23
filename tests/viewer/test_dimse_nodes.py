"""DIMSE callers and their access, with the database: who an association is (viewer.dimse.nodes), the
gate's access of a node (viewer.access.access_node) and C-FIND/C-GET over it (viewer.dimse.query)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from crossread.errors import DomainError
from demo import corpus
from tests.factories.dicom import ct_bytes
from tests.factories.models import create_project
from viewer.access import access_node
from viewer.dicomweb import qido
from viewer.dimse import nodes, query, rules
from viewer.ingest import ingest_bytes
from viewer.models import DicomNode, NodeKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def projects():
    demo = create_project("demo")
    trial = create_project("trial-with-a-long-slug")
    pacs = create_project("pacs", ae_title="ARCHIVE")
    DicomNode.objects.create(project=demo, ae_title="CT1", addresses=["10.0.0.5"], kind=NodeKind.SENDER)
    DicomNode.objects.create(project=trial, ae_title="WS", addresses=["10.0.1.0/24"], kind=NodeKind.QUERY,
                             host="10.0.1.7", port=104)
    DicomNode.objects.create(project=pacs, ae_title="*", addresses=["127.0.0.1"], kind=NodeKind.PEER)
    return {"demo": demo, "trial": trial, "pacs": pacs}


def test_the_called_ae_title_names_the_project(projects):
    assert nodes.project_for_ae_title("DEMO") == projects["demo"]
    assert nodes.project_for_ae_title("TRIAL-WITH-A-LO") is None  # one character short
    assert nodes.project_for_ae_title("TRIAL-WITH-A-LON") == projects["trial"]
    assert nodes.project_for_ae_title("ARCHIVE") == projects["pacs"]
    assert nodes.project_for_ae_title("PACS") is None  # a configured AE title replaces the default
    assert nodes.project_for_ae_title("demo") is None  # AE titles are case-sensitive
    assert nodes.project_for_ae_title("BAD\\TITLE") is None


def test_callers_are_identified_by_ae_title_and_address(projects):
    caller = nodes.identify("DEMO", "CT1", "10.0.0.5")
    assert isinstance(caller, nodes.Caller) and caller.project == projects["demo"] and caller.node.kind == "sender"
    assert caller.called == "DEMO"
    stranger = nodes.identify("DEMO", "CT9", "10.9.9.9")
    assert stranger == nodes.Refusal(rules.CALLING_AE_NOT_RECOGNISED, "calling AE title or address not recognised")
    assert nodes.identify("NOSUCH", "CT9", "10.9.9.9").diagnostic == rules.CALLING_AE_NOT_RECOGNISED
    assert nodes.identify("DEMO", "CT1", "10.0.0.6").diagnostic == rules.CALLING_AE_NOT_RECOGNISED  # other address
    assert nodes.identify("NOSUCH", "CT1", "10.0.0.5").diagnostic == rules.CALLED_AE_NOT_RECOGNISED
    # A node of one project calling another project: not recognised there.
    assert nodes.identify("ARCHIVE", "CT1", "10.0.0.5").diagnostic == rules.CALLING_AE_NOT_RECOGNISED
    assert isinstance(nodes.identify("ARCHIVE", "ANYTHING", "127.0.0.1"), nodes.Caller)
    assert isinstance(nodes.identify("TRIAL-WITH-A-LON", "WS", "10.0.1.200"), nodes.Caller)


def test_move_destinations(projects):
    assert nodes.move_destination(projects["trial"], "WS").port == 104
    assert nodes.move_destination(projects["demo"], "CT1") is None  # no host and port: not a destination
    assert nodes.move_destination(projects["demo"], "WS") is None  # another project's
    assert nodes.move_destination(projects["pacs"], "*") is None


@pytest.mark.parametrize(("kind", "role"), [("sender", None), ("query", "reader"), ("peer", "reader")])
def test_the_gate_gives_a_node_the_role_of_its_kind(projects, kind, role):
    if role is None:
        with pytest.raises(DomainError):
            access_node(projects["demo"], kind)
        return
    access = access_node(projects["demo"], kind)
    assert access.role == role and access.blinding is None and not access.sees_quarantine
    with pytest.raises(DomainError):
        access_node(projects["demo"], kind, minimum="organizer")


@pytest.fixture
def stored(projects):
    """The trial project, de-identifying, with two CTs of one study and a held US image."""
    project = projects["trial"]
    project.deidentification = {"profile": "basic", "options": []}
    project.save()
    for n in (1, 2):
        assert ingest_bytes(project, ct_bytes(StudyInstanceUID="1.2.826.0.1.3680043.8.498.7",
                                              SeriesInstanceUID="1.2.826.0.1.3680043.8.498.7.1",
                                              SOPInstanceUID=f"1.2.826.0.1.3680043.8.498.7.1.{n}",
                                              InstanceNumber=n)).ok
    held = ingest_bytes(project, corpus.file("pydicom", "examples_palette.dcm").read_bytes())
    assert held.ok
    return project, held


def _find(access, level: str, model: str = "study", **keys: object) -> list[Dataset]:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return query.find(access, rules.find_request(identifier, model), ae_title="TRIAL")


def test_c_find_over_the_gate(stored):
    project, held = stored
    access = access_node(project, "query")
    studies = _find(access, "STUDY", StudyInstanceUID="", PatientID="", NumberOfStudyRelatedInstances="")
    rows = qido.search(access, qido.parse_query(qido.QueryDict(""), "study"), {}).rows
    assert sorted(s.StudyInstanceUID for s in studies) == sorted(r.study_instance_uid for r in rows)
    assert held.study_instance_uid not in {s.StudyInstanceUID for s in studies}  # held: hidden from nodes
    assert [int(s.NumberOfStudyRelatedInstances) for s in studies] == [2]
    images = _find(access, "IMAGE", StudyInstanceUID=studies[0].StudyInstanceUID, SOPInstanceUID="",
                   InstanceNumber="")
    assert sorted(int(i.InstanceNumber) for i in images) == [1, 2]
    assert _find(access, "IMAGE", SOPInstanceUID=held.sop_instance_uid) == []
    patients = _find(access, "PATIENT", "patient", PatientID="", NumberOfPatientRelatedInstances="")
    assert len(patients) == 1 and int(patients[0].NumberOfPatientRelatedInstances) == 2
    with pytest.raises(rules.IdentifierError) as refused:
        _find(access, "STUDY", SOPInstanceUID="1.2.3")  # a key below the level
    assert refused.value.status == 0xA900
    with pytest.raises(rules.IdentifierError):
        _find(access, "PATIENT", "patient", StudyDate="20240101")  # not a patient key


def test_c_find_is_bounded(stored, settings):
    project, _ = stored
    settings.CROSSREAD = {"DIMSE_MAX_MATCHES": 1}
    with pytest.raises(rules.IdentifierError) as refused:
        _find(access_node(project, "query"), "IMAGE", SOPInstanceUID="")
    assert refused.value.status == 0xA700


def test_retrieves_reach_what_the_node_may_see(stored):
    project, held = stored
    access = access_node(project, "peer")
    every = Dataset()
    every.QueryRetrieveLevel = "STUDY"
    every.StudyInstanceUID = [held.study_instance_uid, "1.2.3.4.5.6.7.8.9"]
    assert query.instances_to_retrieve(access, rules.retrieve_request(every, "study")) == []
    studies = _find(access, "STUDY", StudyInstanceUID="")
    every.StudyInstanceUID = studies[0].StudyInstanceUID
    found = query.instances_to_retrieve(access, rules.retrieve_request(every, "study"))
    assert [i.instance_number for i in found] == [1, 2]
    sent = list(query.stored_datasets(access, found))
    assert [ds.SOPInstanceUID for ds in sent] == [i.sop_instance_uid for i in found]
    assert all(ds.PatientIdentityRemoved == "YES" for ds in sent)


def test_nodes_are_configured_by_command(projects):
    from django.core.management import CommandError, call_command

    from audit.models import AuditEvent

    call_command("dicom_node", "add", "demo", "MR2", "--address", "10.0.0.9", "--kind", "query",
                 "--host", "10.0.0.9", "--port", "104")
    assert isinstance(nodes.identify("DEMO", "MR2", "10.0.0.9"), nodes.Caller)
    assert nodes.move_destination(projects["demo"], "MR2").port == 104
    assert AuditEvent.objects.filter(object_type="dicom.node", object_id="MR2").exists()
    for bad in (["add", "demo", "BAD\\AE", "--address", "10.0.0.1"], ["add", "demo", "X", "--address", "ten"],
                ["add", "demo", "X", "--address", "10.0.0.1", "--port", "104"],
                ["ae-title", "demo", "ARCHIVE"], ["ae-title", "pacs", "DEMO"], ["remove", "demo", "NOPE"]):
        with pytest.raises(CommandError):
            call_command("dicom_node", *bad)
    call_command("dicom_node", "ae-title", "demo", "RESEARCH")
    assert nodes.project_for_ae_title("RESEARCH") == projects["demo"] and nodes.project_for_ae_title("DEMO") is None
    call_command("dicom_node", "remove", "demo", "MR2")
    assert nodes.identify("RESEARCH", "MR2", "10.0.0.9").diagnostic == rules.CALLING_AE_NOT_RECOGNISED


def test_each_association_gets_its_own_copy_of_the_listeners_contexts():
    """pynetdicom deep-copies the server's contexts for each association; the listener's cheaper copy
    is as independent (a context's transfer syntaxes are its one mutable part) and the same."""
    import copy

    from viewer.dimse.server import SupportedContexts, application_entity

    contexts = SupportedContexts(application_entity("X").supported_contexts)
    copies = copy.deepcopy(contexts)
    assert type(copies) is list and len(copies) == len(contexts) > 150
    for mine, original in zip(copies, contexts, strict=True):
        assert mine is not original and mine._transfer_syntax is not original._transfer_syntax
        assert (str(mine), mine.transfer_syntax, mine.scu_role, mine.scp_role, mine.as_scu, mine.as_scp) == (
            str(original), original.transfer_syntax, original.scu_role, original.scp_role, original.as_scu, original.as_scp)
    copies[0].transfer_syntax = [copies[0].transfer_syntax[0]]
    copies[0].context_id = 1
    assert len(contexts[0].transfer_syntax) > 1 and contexts[0].context_id is None


def test_every_connection_in_and_out_sends_its_pdus_at_once():
    """TCP_NODELAY on the listener's connections and on those it opens (a C-MOVE's): without it a
    C-FIND answer waited for the peer's delayed acknowledgement (40 ms) between its writes."""
    import socket

    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    from viewer.dimse.server import HANDLERS, ListenerAE, no_delay

    assert (evt.EVT_CONN_OPEN, no_delay) in HANDLERS
    peer = AE("PEER")
    peer.add_supported_context(Verification)
    server = peer.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_CONN_OPEN, no_delay)])
    try:
        listener = ListenerAE("CROSSREAD")
        listener.add_requested_context(Verification)
        assoc = listener.associate("127.0.0.1", server.server_address[1], ae_title="PEER")
        assert assoc.is_established
        try:
            for side in (assoc, server.active_associations[0]):
                assert side.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert assoc.send_c_echo().Status == 0
        finally:
            assoc.release()
    finally:
        server.shutdown()
