"""DIMSE against a real ``manage.py dicom_listener`` process, driven by dcmtk's echoscu, storescu,
findscu, getscu and movescu and by pynetdicom as an SCU; what was stored is read back over DICOMweb
from a daphne process of the same site.
"""

from __future__ import annotations

import io
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from demo import corpus
from demo.phantom import write_phantom_studies
from tests.factories.dicom import ct_dataset
from tests.live import LiveSite, demo_users_site, free_port
from viewer.dicomweb.multipart import parse_multipart_related

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed"),
]

#: Real files in several transfer syntaxes (explicit little endian, JPEG 2000, RLE, JPEG baseline).
CORPUS = [
    ("pydicom", "CT_small.dcm"),
    ("pydicom-data", "MR2_J2KR.dcm"),
    ("pydicom-data", "emri_small_RLE.dcm"),
    ("pydicom", "examples_ybr_color.dcm"),
]
MOVE_AE = "STORESCP"

SETUP = """
from viewer.models import DicomNode, Project, Membership, NodeKind
from django.contrib.auth import get_user_model
demo = Project.objects.get(slug="demo")
DicomNode.objects.create(project=demo, ae_title="{move_ae}", addresses=["127.0.0.1"], kind=NodeKind.SENDER,
                         host="127.0.0.1", port={move_port})
secure = Project.objects.create(slug="secure", name="Secure")
DicomNode.objects.create(project=secure, ae_title="MODALITY", addresses=["127.0.0.1"], kind=NodeKind.SENDER)
deid = Project.objects.create(slug="deid", name="De-identifying", ae_title="DEIDENT",
                              deidentification={{"profile": "basic", "options": []}})
DicomNode.objects.create(project=deid, ae_title="*", addresses=["127.0.0.1"], kind=NodeKind.PEER)
organizer = get_user_model().objects.get(username="organizer")
for project in (secure, deid):
    Membership.objects.create(project=project, user=organizer, role="organizer")
"""


class Site:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.live = LiveSite.create(root / "site", copy_of=demo_users_site(root.parent))  # load_demo --no-studies
        self.move_port = free_port()
        self.live.manage("shell", "-c", SETUP.format(move_ae=MOVE_AE, move_port=self.move_port))
        (self.url,) = self.live.start()
        self.port = self.live.start_dicom()
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token {self.live.token('organizer')}"
        self.reader = requests.Session()
        self.reader.headers["Authorization"] = f"Token {self.live.token('reader1')}"

    def dcmtk(self, tool: str, *args: str, called: str = "DEMO", calling: str = "WORKSTATION",
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool, "-aet", calling, "-aec", called, *args, "127.0.0.1", str(self.port)],
                              capture_output=True, text=True, timeout=120, cwd=cwd)

    def storescu(self, files: list[Path], **kwargs: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["storescu", "-R", "-v", "-aet", kwargs.get("calling", "MODALITY"),
                               "-aec", kwargs.get("called", "DEMO"), "127.0.0.1", str(self.port),
                               *map(str, files)], capture_output=True, text=True, timeout=300)

    def qido(self, slug: str, path: str, session: requests.Session | None = None, **params: str) -> list[dict]:
        response = (session or self.http).get(f"{self.url}/projects/{slug}/dicomweb/{path}", params=params)
        response.raise_for_status()
        return response.json() if response.content else []

    def wado_instance(self, slug: str, study: str, series: str, sop: str) -> bytes:
        response = self.http.get(
            f"{self.url}/projects/{slug}/dicomweb/studies/{study}/series/{series}/instances/{sop}",
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
        response.raise_for_status()
        (part,) = parse_multipart_related(response.content, response.headers["Content-Type"])
        return part.body

    def shell(self, code: str) -> str:
        return self.live.manage("shell", "--no-imports", "-c", code)

    def scu(self, calling: str = "PYSCU") -> AE:
        ae = AE(ae_title=calling)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
        return ae


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    running = Site(tmp_path_factory.mktemp("dimse"))
    yield running
    running.live.stop()


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> list[Path]:
    return write_phantom_studies(tmp_path_factory.mktemp("phantom"), slices=6, size=64)[:6]


def dataset_bytes(part10: bytes) -> bytes:
    """The data set of a PS3.10 file: what follows the preamble, ``DICM`` and the file meta group."""
    assert part10[128:132] == b"DICM"
    ds = pydicom.dcmread(io.BytesIO(part10), stop_before_pixels=True)
    meta_end = 132 + 12 + int(ds.file_meta.FileMetaInformationGroupLength)
    return part10[meta_end:]


def uids(ds: pydicom.Dataset) -> tuple[str, str, str]:
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def instance_count(site: Site, slug: str) -> int:
    return len(site.qido(slug, "instances"))


# ------------------------------------------------------------------------------------------------


def test_echo_and_rejected_associations(site):
    assert site.dcmtk("echoscu").returncode == 0
    unknown_called = site.dcmtk("echoscu", called="NOSUCHPROJECT")
    assert unknown_called.returncode != 0 and "Called AE Title Not Recognized" in unknown_called.stderr
    # A project the caller is not configured for: its nodes are MODALITY only.
    other_project = site.dcmtk("echoscu", called="SECURE", calling="STRANGER")
    assert other_project.returncode != 0 and "Calling AE Title Not Recognized" in other_project.stderr
    assert site.dcmtk("echoscu", called="SECURE", calling="MODALITY").returncode == 0
    # The refusals are audited with the caller's AE title and address.
    out = site.shell("from audit.models import AuditEvent\n"
                     "print(AuditEvent.objects.filter(action='access.denied', actor_name='dicom:STRANGER',"
                     " source_ip='127.0.0.1').count())")
    assert int(out.strip()) >= 1


def test_storescu_stores_what_it_sends(site, phantom):
    files = [*phantom, *(corpus.file(source, name) for source, name in CORPUS)]
    # storescu proposes one compressed syntax at a time: the uncompressed files, the JPEG 2000 one, the
    # JPEG baseline one; pynetdicom sends the RLE one.
    for option, group in (("-x=", [*phantom, files[-4]]), ("-xv", [files[-3]]), ("-xy", [files[-1]])):
        sent = subprocess.run(["storescu", "-R", option, "-aet", "MODALITY", "-aec", "DEMO", "127.0.0.1",
                               str(site.port), *map(str, group)], capture_output=True, text=True, timeout=300)
        assert sent.returncode == 0, sent.stderr
    assert pynetdicom_store(site, [files[-2]], "DEMO") == [0x0000]
    for path in files:
        original = pydicom.dcmread(path)
        stored = pydicom.dcmread(io.BytesIO(site.wado_instance("demo", *uids(original))))
        # dcmtk sends the elements it parsed (without trailing padding, sequences re-encoded): the
        # same attributes and pixels.
        original.pop("DataSetTrailingPadding", None)
        assert stored == original, path.name
        assert stored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert stored.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
        assert stored.file_meta.SourceApplicationEntityTitle == "MODALITY"
    # Sending again stores nothing new and succeeds.
    again = site.storescu(files[:2])
    assert again.returncode == 0 and "Success" in again.stderr
    out = site.shell("from audit.models import AuditEvent\n"
                     "e = AuditEvent.objects.filter(action='upload', actor_name='dicom:MODALITY').first()\n"
                     "print(e.source_ip, e.project, e.detail['via'], e.detail['stored'], e.detail['already_stored'])")
    assert out.split() == ["127.0.0.1", "demo", "dimse", "0", "2"]


def test_data_sets_are_stored_byte_for_byte(site, phantom):
    """pynetdicom sends a file's data set as it is in the file: the stored file holds those bytes."""
    files = [*phantom[:2], *(corpus.file(source, name) for source, name in CORPUS)]
    assert pynetdicom_store(site, files, "SECURE") == [0x0000] * len(files)
    for path in files:
        original = path.read_bytes()
        stored = site.wado_instance("secure", *uids(pydicom.dcmread(path, stop_before_pixels=True)))
        assert dataset_bytes(stored) == dataset_bytes(original), path.name


def pynetdicom_store(site: Site, files: list[Path], called: str) -> list[int]:
    """C-STORE each file with pynetdicom, its data set sent as read from the file (not re-encoded)."""
    from pynetdicom import _config

    datasets = [pydicom.dcmread(path, stop_before_pixels=True) for path in files]
    ae = site.scu("MODALITY")
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", site.port, ae_title=called)
    assert assoc.is_established
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    try:
        return [int(assoc.send_c_store(path).Status) for path in files]
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
        assoc.release()


def test_a_de_identifying_project_stores_no_phi(site):
    path = corpus.file("pydicom", "CT_small.dcm")
    original = pydicom.dcmread(path)
    sent = site.storescu([path], called="DEIDENT")
    assert sent.returncode == 0, sent.stderr
    assert "Received Store Response (Warning" in sent.stderr  # B000: coercion of data elements
    (found,) = site.qido("deid", "instances")
    stored = pydicom.dcmread(io.BytesIO(site.wado_instance(
        "deid", found["0020000D"]["Value"][0], found["0020000E"]["Value"][0], found["00080018"]["Value"][0])))
    assert stored.PatientIdentityRemoved == "YES"
    assert stored.SOPInstanceUID != original.SOPInstanceUID
    assert original.PatientID.encode() not in stored.PatientID.encode()
    assert stored.PixelData == original.PixelData


def _all_studies() -> Dataset:
    """A C-FIND identifier asking for every study's UID."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    return identifier


def test_a_sender_may_not_query(site):
    ae = site.scu("MODALITY")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", site.port, ae_title="SECURE")
    assert assoc.is_established
    identifier = _all_studies()
    answers = list(assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind))
    assoc.release()
    assert len(answers) == 1 and answers[0][0].Status == 0x0124 and answers[0][1] is None
    out = site.shell("from audit.models import AuditEvent\n"
                     "print(AuditEvent.objects.filter(action='access.denied', object_type='dicom.query',"
                     " actor_name='dicom:MODALITY', project='secure').count())")
    assert int(out) == 1


def test_refused_data_sets_leave_nothing(site):
    before = instance_count(site, "demo")
    no_uid = ct_dataset()
    del no_uid.SOPInstanceUID
    wrong_class = ct_dataset(SOPClassUID="1.2.840.10008.5.1.4.1.1.4")  # MR Image Storage, sent as a CT
    ae = site.scu("MODALITY")
    ae.add_requested_context(CTImageStorage, "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", site.port, ae_title="DEMO")
    assert assoc.is_established

    def store(dataset: Dataset, sop_class: str, sop_instance: str) -> int:
        """A C-STORE whose request names ``sop_class``/``sop_instance`` whatever the data set holds."""
        request = C_STORE()
        request.MessageID = 1
        request.AffectedSOPClassUID = sop_class
        request.AffectedSOPInstanceUID = sop_instance
        request.Priority = 2
        request.DataSet = io.BytesIO(encode(dataset, False, True))
        context = assoc.accepted_contexts[0]
        assoc._reactor_checkpoint.clear()  # as send_c_store: the reactor leaves the response to us
        try:
            assoc.dimse.send_msg(request, context.context_id)
            _, response = assoc.dimse.get_msg(block=True)
        finally:
            assoc._reactor_checkpoint.set()
        return int(response.Status)

    dataset_only = Dataset()
    dataset_only.update(no_uid)
    assert store(dataset_only, CTImageStorage, "1.2.3.4.5.6") == 0xC000
    mismatched = Dataset()
    mismatched.update(wrong_class)
    assert store(mismatched, CTImageStorage, str(wrong_class.SOPInstanceUID)) == 0xA900
    assert store(mismatched, CTImageStorage, "1.2.3.4.5.6.7") == 0xA900  # nor another instance
    assoc.release()
    assert instance_count(site, "demo") == before
    out = site.shell("from audit.models import AuditEvent\n"
                     "e = AuditEvent.objects.filter(action='upload', actor_name='dicom:MODALITY').first()\n"
                     "print(e.detail['failed'], e.detail['stored'])")
    assert out.split() == ["3", "0"]  # the association's refusals are in its audit event
    out = site.shell("from viewer.storage import object_store\nfrom viewer.models import Instance, Project\n"
                     "p = Project.objects.get(slug='demo')\n"
                     "print(len(object_store().iter_keys(p.pk)), Instance.objects.filter(project=p).count())")
    files, rows = map(int, out.split())
    assert files == rows  # no object written without its rows


def findscu(site: Site, level: str, *keys: str, root: str = "-S", cwd: Path) -> list[Dataset]:
    for old in cwd.glob("rsp*.dcm"):
        old.unlink()
    done = site.dcmtk("findscu", root, "-v", "-X", "-k", f"QueryRetrieveLevel={level}", *(a for k in keys for a in ("-k", k)),
                      cwd=cwd)
    assert done.returncode == 0, done.stderr
    return [pydicom.dcmread(p) for p in sorted(cwd.glob("rsp*.dcm"))]


def test_c_find_answers_as_qido(site, phantom, tmp_path):
    site.storescu(phantom)
    studies = findscu(site, "STUDY", "StudyInstanceUID", "PatientName", "PatientID", "StudyDate",
                      "ModalitiesInStudy", "NumberOfStudyRelatedInstances", cwd=tmp_path)
    qido = site.qido("demo", "studies", site.reader)
    assert sorted(s.StudyInstanceUID for s in studies) == sorted(q["0020000D"]["Value"][0] for q in qido)
    by_uid = {q["0020000D"]["Value"][0]: q for q in qido}
    for answer in studies:
        expected = by_uid[answer.StudyInstanceUID]
        assert answer.QueryRetrieveLevel == "STUDY"
        assert str(answer.PatientName) == expected["00100010"].get("Value", [{}])[0].get("Alphabetic", "")
        assert int(answer.NumberOfStudyRelatedInstances) == expected["00201208"]["Value"][0]
        assert list(answer.ModalitiesInStudy) == expected["00080061"]["Value"] or answer.ModalitiesInStudy == \
            expected["00080061"]["Value"][0]
        assert "RetrieveURL" not in answer  # only what was asked
    # Matching: wildcard on the name, as QIDO-RS.
    phantom_ds = pydicom.dcmread(phantom[0], stop_before_pixels=True)
    name = str(phantom_ds.PatientName)
    matched = findscu(site, "STUDY", f"PatientName={name[:4]}*", "StudyInstanceUID", cwd=tmp_path)
    assert sorted(s.StudyInstanceUID for s in matched) == sorted(
        q["0020000D"]["Value"][0] for q in site.qido("demo", "studies", site.reader, PatientName=f"{name[:4]}*"))
    # Series of a study and images of a series.
    series = findscu(site, "SERIES", f"StudyInstanceUID={phantom_ds.StudyInstanceUID}", "SeriesInstanceUID",
                     "Modality", "NumberOfSeriesRelatedInstances", cwd=tmp_path)
    qido_series = site.qido("demo", f"studies/{phantom_ds.StudyInstanceUID}/series", site.reader)
    assert sorted(s.SeriesInstanceUID for s in series) == sorted(q["0020000E"]["Value"][0] for q in qido_series)
    assert all(s.Modality == "CT" for s in series)
    images = findscu(site, "IMAGE", f"StudyInstanceUID={phantom_ds.StudyInstanceUID}",
                     f"SeriesInstanceUID={phantom_ds.SeriesInstanceUID}", "SOPInstanceUID", "InstanceNumber",
                     cwd=tmp_path)
    qido_images = site.qido("demo", f"studies/{phantom_ds.StudyInstanceUID}/series/{phantom_ds.SeriesInstanceUID}/instances",
                            site.reader)
    assert sorted(i.SOPInstanceUID for i in images) == sorted(q["00080018"]["Value"][0] for q in qido_images)
    assert len(images) == len(phantom)
    # Patient root, patient level: one answer per patient, with its studies counted.
    patients = findscu(site, "PATIENT", f"PatientID={phantom_ds.PatientID}", "PatientName",
                       "NumberOfPatientRelatedStudies", root="-P", cwd=tmp_path)
    assert len(patients) == 1 and patients[0].PatientID == phantom_ds.PatientID
    assert int(patients[0].NumberOfPatientRelatedStudies) == len(
        site.qido("demo", "studies", site.reader, PatientID=phantom_ds.PatientID))
    # A key below the level is refused ("identifier does not match SOP class").
    refused = site.dcmtk("findscu", "-v", "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "SOPInstanceUID=1.2.3", cwd=tmp_path)
    assert "0xa900" in (refused.stdout + refused.stderr).lower() or "DataSetDoesNotMatchSOPClass" in refused.stderr


def test_c_find_matches_keys_without_a_column_on_the_stored_values(site, phantom, tmp_path):
    """A matching key QIDO-RS has no column for is not universal: it is matched on each result's stored
    value (the phantom's series are CHEST, a HEAD series is sent beside them), or refused by name when
    it cannot be matched rightly; a return key comes from the stored metadata."""
    site.storescu(phantom)
    phantom_ds = pydicom.dcmread(phantom[0], stop_before_pixels=True)
    head = ct_dataset(BodyPartExamined="HEAD", Manufacturer="Other Vendor", SliceThickness="1.25")
    head_file = tmp_path / "head.dcm"
    head.save_as(head_file, enforce_file_format=True)
    assert pynetdicom_store(site, [head_file], "DEMO") == [0x0000]

    chest = findscu(site, "SERIES", "BodyPartExamined=CHEST", "SeriesInstanceUID", "Manufacturer", cwd=tmp_path)
    every = site.qido("demo", "series", site.reader, includefield="BodyPartExamined")
    expected = sorted(q["0020000E"]["Value"][0] for q in every
                      if q.get("00180015", {}).get("Value") == ["CHEST"])
    assert phantom_ds.SeriesInstanceUID in expected and head.SeriesInstanceUID not in expected
    assert sorted(a.SeriesInstanceUID for a in chest) == expected
    assert all(a.BodyPartExamined == "CHEST" for a in chest)
    by_uid = {a.SeriesInstanceUID: a for a in chest}
    assert by_uid[phantom_ds.SeriesInstanceUID].Manufacturer == phantom_ds.Manufacturer  # from stored metadata
    heads = findscu(site, "SERIES", "BodyPartExamined=HE*", "SeriesInstanceUID", "Manufacturer", cwd=tmp_path)
    every = site.qido("demo", "series", site.reader, includefield="BodyPartExamined")
    assert sorted(a.SeriesInstanceUID for a in heads) == sorted(
        q["0020000E"]["Value"][0] for q in every if q.get("00180015", {}).get("Value", [""])[0].startswith("HE"))
    assert {a.SeriesInstanceUID: a.Manufacturer for a in heads}[head.SeriesInstanceUID] == "Other Vendor"

    ae = site.scu("PYSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", site.port, ae_title="DEMO")
    assert assoc.is_established

    def find(level: str, **keys: object) -> tuple[list[Dataset], Dataset]:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = level
        for keyword, value in keys.items():
            setattr(identifier, keyword, value)
        responses = list(assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind))
        return [a for _, a in responses if a is not None], responses[-1][0]

    try:
        thin, status = find("IMAGE", StudyInstanceUID=head.StudyInstanceUID, SliceThickness="1.25", SOPInstanceUID="")
        assert status.Status == 0x0000 and [a.SOPInstanceUID for a in thin] == [head.SOPInstanceUID]
        thick, status = find("IMAGE", StudyInstanceUID=head.StudyInstanceUID, SliceThickness="5", SOPInstanceUID="")
        assert status.Status == 0x0000 and thick == []
        # A key below the level: as for indexed keys ("identifier does not match SOP class").
        _, status = find("STUDY", BodyPartExamined="CHEST", StudyInstanceUID="")
        assert status.Status == 0xA900 and "BodyPartExamined" in status.ErrorComment
        # Several values of a key that is not a UID: unable to process, named.
        _, status = find("IMAGE", StudyInstanceUID=phantom_ds.StudyInstanceUID, ImageType=["ORIGINAL", "PRIMARY"])
        assert status.Status == 0xC000 and "ImageType" in status.ErrorComment
    finally:
        assoc.release()


def test_c_find_hides_quarantined_images_from_nodes(site):
    palette = corpus.file("pydicom", "examples_palette.dcm")  # US: held for a look at its pixels
    assert site.storescu([palette], called="DEIDENT").returncode == 0
    held = [q for q in site.qido("deid", "instances") if q["00080016"]["Value"][0] == pydicom.dcmread(
        palette, stop_before_pixels=True).SOPClassUID]
    assert held, "the organizer sees the held image"
    ae = site.scu("PYSCU")
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", site.port, ae_title="DEIDENT")
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.PatientID = ""
    identifier.SOPInstanceUID = held[0]["00080018"]["Value"][0]
    answers = [a for status, a in assoc.send_c_find(identifier, PatientRootQueryRetrieveInformationModelFind)
               if a is not None]
    assoc.release()
    assert answers == []


def test_c_get_returns_the_stored_instances(site, phantom, tmp_path):
    site.storescu(phantom)
    ds = pydicom.dcmread(phantom[0], stop_before_pixels=True)
    out = tmp_path / "get"
    out.mkdir()
    done = site.dcmtk("getscu", "-S", "-od", str(out), "-k", "QueryRetrieveLevel=SERIES",
                      "-k", f"StudyInstanceUID={ds.StudyInstanceUID}", "-k", f"SeriesInstanceUID={ds.SeriesInstanceUID}")
    assert done.returncode == 0, done.stderr
    got = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in out.iterdir()}
    assert sorted(got) == sorted(pydicom.dcmread(p).SOPInstanceUID for p in phantom)
    for path in phantom:
        original = pydicom.dcmread(path)
        assert got[original.SOPInstanceUID].PixelData == original.PixelData

    # pynetdicom as the SCU too.
    received: list[Dataset] = []
    ae = site.scu("PYSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    handlers = [(evt.EVT_C_STORE, lambda event: received.append(event.dataset) or 0x0000)]
    assoc = ae.associate("127.0.0.1", site.port, ae_title="DEMO", ext_neg=[build_role(CTImageStorage, scp_role=True)],
                         evt_handlers=handlers)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.StudyInstanceUID = ds.StudyInstanceUID
    identifier.SeriesInstanceUID = ds.SeriesInstanceUID
    identifier.SOPInstanceUID = ds.SOPInstanceUID
    statuses = [status.Status for status, _ in assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet)]
    assoc.release()
    assert statuses[-1] == 0x0000
    assert [r.SOPInstanceUID for r in received] == [ds.SOPInstanceUID]


def test_c_move_delivers_to_a_known_destination(site, phantom, tmp_path):
    """storescp receives the study: over an association from the project's AE title (the one the
    C-MOVE was asked of, not the listener's) to the destination node's, each C-STORE naming the
    move's originator and its Message ID (PS3.4 C.4.2.3.1, PS3.7 9.1.1.1)."""
    site.storescu(phantom)
    ds = pydicom.dcmread(phantom[0], stop_before_pixels=True)
    out = tmp_path / "moved"
    out.mkdir()
    log = tmp_path / "storescp.log"
    with log.open("w") as log_file:
        receiver = subprocess.Popen(["storescp", "-d", "-aet", MOVE_AE, "-od", str(out), str(site.move_port)],
                                    stdout=log_file, stderr=subprocess.STDOUT)
        try:
            _wait(site.move_port)
            done = site.dcmtk("movescu", "-S", "-aem", MOVE_AE, "-k", "QueryRetrieveLevel=STUDY",
                              "-k", f"StudyInstanceUID={ds.StudyInstanceUID}")
            assert done.returncode == 0, done.stderr
            unknown = site.dcmtk("movescu", "-S", "-aem", "NOWHERE", "-k", "QueryRetrieveLevel=STUDY",
                                 "-k", f"StudyInstanceUID={ds.StudyInstanceUID}")
            assert "MoveDestinationUnknown" in unknown.stderr
        finally:
            receiver.terminate()
            receiver.wait(timeout=10)
    moved = sorted(pydicom.dcmread(p).SOPInstanceUID for p in out.iterdir())
    assert moved == sorted(pydicom.dcmread(p).SOPInstanceUID for p in phantom)
    text = log.read_text()
    # The first association is the port probe (no titles); then the move's request and acceptance.
    assert re.findall(r"Calling Application Name:\s*(\S*)", text)[1:] == ["DEMO", "DEMO"], text[:3000]
    assert re.findall(r"Called Application Name:\s*(\S*)", text)[1:] == ["STORESCP", "STORESCP"]
    assert "CROSSREAD" not in text
    # movescu calls as WORKSTATION; its C-MOVE request is its first message.
    originators = re.findall(r"Move Originator AE Title\s*:\s*(\S+)", text)
    assert originators == ["WORKSTATION"] * len(phantom), text[:3000]
    assert set(re.findall(r"Move Originator ID\s*:\s*(\d+)", text)) == {"1"}
    out_audit = site.shell("from audit.models import AuditEvent\n"
                           "e = AuditEvent.objects.filter(action='download', detail__via='dimse.c-move').first()\n"
                           "print(e.detail['destination'], e.detail['instances'])")
    assert out_audit.split() == [MOVE_AE, str(len(phantom))]


def test_malformed_pdus_do_no_harm(site):
    for garbage in (b"\x01\x00\x00\x00\x00\x10" + b"\xff" * 16, b"GET / HTTP/1.1\r\n\r\n", b"\x07" * 5000):
        with socket.create_connection(("127.0.0.1", site.port), timeout=10) as sock:
            sock.sendall(garbage)
            sock.settimeout(10)
            try:
                sock.recv(1024)
            except (TimeoutError, ConnectionResetError):
                pass
    assert site.dcmtk("echoscu").returncode == 0


def _wait(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def test_associations_are_limited_in_number_and_idle_time(site):
    port = site.live.start_dicom(CROSSREAD_DIMSE_MAX_ASSOCIATIONS="2", CROSSREAD_DIMSE_NETWORK_TIMEOUT="2",
                                 CROSSREAD_DIMSE_ACSE_TIMEOUT="2")
    # The connection that found the port open sent no association request: it holds a slot until the
    # ACSE timeout.
    time.sleep(3)
    ae = site.scu("WORKSTATION")
    ae.add_requested_context("1.2.840.10008.1.1")
    first = ae.associate("127.0.0.1", port, ae_title="DEMO")
    second = ae.associate("127.0.0.1", port, ae_title="DEMO")
    assert first.is_established and second.is_established
    third = ae.associate("127.0.0.1", port, ae_title="DEMO")
    assert third.is_rejected  # transient: local limit exceeded
    assert third.acceptor.primitive.result == 0x02 and third.acceptor.primitive.diagnostic == 0x02
    time.sleep(4)  # idle beyond the network timeout: the listener aborts both
    assert not first.is_established and not second.is_established
    third = ae.associate("127.0.0.1", port, ae_title="DEMO")
    assert third.is_established and third.send_c_echo().Status == 0x0000
    third.release()


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_an_instance_beyond_the_bound_is_refused_as_it_arrives(site, tmp_path):
    """A 64 MiB instance to a listener that takes 4 MiB: refused "out of resources" (A700) without
    being held (the listener's peak memory grows by far less than the instance), nothing of it left in
    the spool, and the association goes on to store the next one byte for byte."""
    limit = 4 * 1024 * 1024
    port = site.live.start_dicom(CROSSREAD_MAX_INSTANCE_BYTES=str(limit))
    listener = site.live.processes[-1].pid
    big_ds = ct_dataset(Rows=4096, Columns=8192, PixelData=bytes(range(256)) * (4096 * 8192 * 2 // 256))
    big = tmp_path / "big.dcm"
    big_ds.save_as(big, enforce_file_format=True)
    small = tmp_path / "small.dcm"
    ct_dataset(Rows=512, Columns=512, PixelData=bytes(512 * 512 * 2)).save_as(small, enforce_file_format=True)
    warm = tmp_path / "warm.dcm"
    ct_dataset().save_as(warm, enforce_file_format=True)

    def storescu(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["storescu", "-v", "-nh", "-aet", "MODALITY", "-aec", "DEMO", "127.0.0.1", str(port),
                               *map(str, files)], capture_output=True, text=True, timeout=300)

    assert storescu(warm).returncode == 0  # the store path's imports and caches, before measuring
    before = _peak_rss(listener)
    sent = storescu(big, small)
    grown = _peak_rss(listener) - before

    responses = [line for line in sent.stderr.splitlines() if "Received Store Response" in line]
    assert len(responses) == 2, sent.stderr
    assert "Out of Resources" in responses[0] or "OutOfResources" in responses[0], responses[0]
    assert "Success" in responses[1], responses[1]
    assert grown < 16 * 1024 * 1024, f"the listener's peak grew by {grown / 2**20:.1f} MiB"
    spool = Path(site.live.env["CROSSREAD_DATA_DIR"]) / "tmp"
    assert not list(spool.glob("*.upload.dimse"))
    stored = site.wado_instance("demo", *uids(pydicom.dcmread(small, stop_before_pixels=True)))
    assert dataset_bytes(stored) == dataset_bytes(small.read_bytes())
    assert not site.qido("demo", "instances", SOPInstanceUID=str(big_ds.SOPInstanceUID))


def test_an_identifier_beyond_its_bound_aborts_the_association(site):
    """A C-FIND identifier is not held past 1 MiB: a 2 MiB one aborts its association, and the
    listener goes on."""
    ae = site.scu("PYSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", site.port, ae_title="DEMO")
    assert assoc.is_established
    identifier = _all_studies()
    identifier.add_new(0x00091010, "OB", b"\0" * (2 * 1024 * 1024))  # a private element: any size
    answers = list(assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind))
    deadline = time.monotonic() + 10
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.1)
    assert assoc.is_aborted
    assert [status for status, _ in answers] == [Dataset()]  # no answer: the association is gone
    assert site.dcmtk("echoscu").returncode == 0
