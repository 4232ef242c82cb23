"""DIMSE's pure rules (viewer.dimse.rules): AE titles, who may associate, statuses, PS3.10 files made
from received data sets, and C-FIND/C-GET/C-MOVE identifiers. No database."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from tests.factories.dicom import ct_dataset, to_bytes
from viewer.dimse import rules


def test_ae_titles():
    assert rules.default_ae_title("demo") == "DEMO"
    assert rules.default_ae_title("a-very-long-project-slug") == "A-VERY-LONG-PROJ"
    assert rules.project_ae_title("demo", "") == "DEMO"
    assert rules.project_ae_title("demo", " PACS1 ") == "PACS1"
    assert rules.valid_ae_title("DEMO") and rules.valid_ae_title("A B")
    for bad in ("", "    ", "A" * 17, "BACK\\SLASH", "TAB\tX", "É"):
        assert not rules.valid_ae_title(bad), bad
    assert rules.same_ae_title("DEMO ", "DEMO") and not rules.same_ae_title("demo", "DEMO")


def test_addresses():
    assert rules.address_allowed("127.0.0.1", ["127.0.0.1"])
    assert rules.address_allowed("10.1.2.3", ["192.168.0.1", "10.1.0.0/16"])
    assert not rules.address_allowed("10.2.0.1", ["10.1.0.0/16"])
    assert not rules.address_allowed("not-an-address", ["0.0.0.0/0"])
    assert not rules.address_allowed("127.0.0.1", ["garbage"])
    assert rules.address_allowed("::1", ["::1"])
    assert rules.valid_network("10.0.0.0/8") and not rules.valid_network("ten")


def test_nodes_match_on_ae_title_and_address():
    node = rules.NodeFacts("DEMO", "CT1", ("10.0.0.5",), "sender")
    assert rules.node_matches(node, "CT1", "10.0.0.5")
    assert rules.node_matches(node, "CT1 ", "10.0.0.5")
    assert not rules.node_matches(node, "CT2", "10.0.0.5")
    assert not rules.node_matches(node, "CT1", "10.0.0.6")  # a known AE title from elsewhere
    anyone = rules.NodeFacts("DEMO", "*", ("127.0.0.1",), "peer")
    assert rules.node_matches(anyone, "WHATEVER", "127.0.0.1")
    assert not rules.node_matches(anyone, "WHATEVER", "10.0.0.1")


@pytest.mark.parametrize(("called_known", "known_anywhere", "allowed_here"), [
    (c, k, a) for c in (False, True) for k in (False, True) for a in (False, True)
    if not a or (c and k)  # allowed here means the project and the node exist
])
def test_who_may_associate(called_known, known_anywhere, allowed_here):
    decided = rules.association_refusal(called_known=called_known, caller_known_anywhere=known_anywhere,
                                        allowed_here=allowed_here)
    if not known_anywhere:
        assert decided == rules.CALLING_AE_NOT_RECOGNISED  # a stranger learns nothing of the projects
    elif not called_known:
        assert decided == rules.CALLED_AE_NOT_RECOGNISED
    elif not allowed_here:
        assert decided == rules.CALLING_AE_NOT_RECOGNISED
    else:
        assert decided is None


def test_store_statuses():
    assert rules.store_status(ok=True, failure_code=0, coerced=False) == 0x0000
    assert rules.store_status(ok=True, failure_code=0, coerced=True) == 0xB000
    assert rules.store_status(ok=False, failure_code=0xC000, coerced=False) == 0xC000
    assert rules.store_status(ok=False, failure_code=0xA700, coerced=True) == 0xA700
    assert rules.store_status(ok=False, failure_code=0x0111, coerced=False) == 0x0111
    assert rules.store_status(ok=False, failure_code=0x1234, coerced=False) == 0x0110


def _data_set_of(path: str) -> tuple[bytes, pydicom.Dataset]:
    raw = open(path, "rb").read()
    ds = pydicom.dcmread(path)
    meta_end = 132 + 12 + int(ds.file_meta.FileMetaInformationGroupLength)
    return raw[meta_end:], ds


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm"])
def test_part10_files_keep_the_data_set_bytes(name):
    data_set, original = _data_set_of(get_testdata_file(name))
    made = rules.part10(data_set, transfer_syntax=original.file_meta.TransferSyntaxUID,
                        sop_class=original.SOPClassUID, sop_instance=original.SOPInstanceUID, source_ae="CT1 ")
    assert made[:132] == b"\0" * 128 + b"DICM"
    assert made.endswith(data_set)
    read = pydicom.dcmread(io.BytesIO(made))
    assert read.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert read.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert read.file_meta.SourceApplicationEntityTitle == "CT1"
    assert read.PixelData == original.PixelData
    assert rules.identity_status(made, sop_class=original.SOPClassUID, sop_instance=original.SOPInstanceUID) is None


def test_a_data_set_that_is_not_the_requested_instance():
    ds = ct_dataset()
    data = to_bytes(ds)
    assert rules.identity_status(data, sop_class=ds.SOPClassUID, sop_instance=ds.SOPInstanceUID) is None
    assert rules.identity_status(data, sop_class="1.2.840.10008.5.1.4.1.1.4", sop_instance=ds.SOPInstanceUID) == 0xA900
    assert rules.identity_status(data, sop_class=ds.SOPClassUID, sop_instance="1.2.3") == 0xA900
    # Undecodable or without the UIDs: the ingest service says why (cannot understand).
    assert rules.identity_status(b"\0" * 128 + b"DICM" + b"\xff" * 40, sop_class="1", sop_instance="2") is None


def _identifier(level: str, **keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_find_identifiers_become_qido_searches():
    request = rules.find_request(_identifier("SERIES", StudyInstanceUID="1.2.3", Modality="CT",
                                             SeriesInstanceUID="", SeriesDescription="", RetrieveAETitle=""),
                                 "study")
    assert request.level == "series" and not request.patients
    assert request.matching == (("Modality", "CT"), ("StudyInstanceUID", "1.2.3"))  # in tag order
    assert request.returned == ("RetrieveAETitle", "Modality", "SeriesDescription", "StudyInstanceUID",
                                "SeriesInstanceUID")
    assert rules.qido_include(request) == ["00080060", "0008103E", "0020000D", "0020000E"]
    uid_list = rules.find_request(_identifier("IMAGE", SOPInstanceUID=["1.2", "1.3"]), "patient")
    assert uid_list.matching == (("SOPInstanceUID", "1.2,1.3"),) and uid_list.level == "instance"
    assert rules.find_request(_identifier("PATIENT", PatientName="DOE*"), "patient").patients
    with pytest.raises(rules.IdentifierError):
        rules.find_request(_identifier("PATIENT"), "study")  # no patient level in the study root
    with pytest.raises(rules.IdentifierError):
        rules.find_request(_identifier("EVERYTHING"), "patient")


def test_find_answers_hold_what_was_asked():
    request = rules.find_request(_identifier("STUDY", PatientName="", StudyInstanceUID="", StudyDate="",
                                             RetrieveAETitle="", SpecificCharacterSet="ISO_IR 192"), "study")
    result = {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "00100020": {"vr": "LO", "Value": ["SECRET-NOT-ASKED"]},
        "00081190": {"vr": "UR", "Value": ["http://x/studies/1.2.3"]},
    }
    answer = rules.find_response(result, request, retrieve_ae_title="DEMO")
    assert answer.QueryRetrieveLevel == "STUDY"
    assert str(answer.PatientName) == "Doe^Jane" and answer.StudyInstanceUID == "1.2.3"
    assert "StudyDate" in answer and answer.StudyDate in ("", None)  # asked, no value: present and empty
    assert answer.RetrieveAETitle == "DEMO"
    assert answer.SpecificCharacterSet == "ISO_IR 192"
    assert "PatientID" not in answer and "RetrieveURL" not in answer


def test_patient_answers_group_studies():
    def study(pid: str, series: int, instances: int) -> dict:
        return {"00100020": {"vr": "LO", "Value": [pid]}, "00100010": {"vr": "PN", "Value": [{"Alphabetic": pid}]},
                "00201206": {"vr": "IS", "Value": [series]}, "00201208": {"vr": "IS", "Value": [instances]}}

    patients = rules.patient_results([study("A", 1, 10), study("B", 2, 3), study("A", 2, 5)])
    assert [p["00100020"]["Value"][0] for p in patients] == ["A", "B"]
    assert [p["00201200"]["Value"][0] for p in patients] == [2, 1]
    assert patients[0]["00201202"]["Value"] == [3] and patients[0]["00201204"]["Value"] == [15]


def test_retrieve_identifiers():
    request = rules.retrieve_request(_identifier("SERIES", StudyInstanceUID="1.2", SeriesInstanceUID=["1.2.1", "1.2.2"]),
                                     "study")
    assert request.study_uids == ("1.2",) and request.series_uids == ("1.2.1", "1.2.2") and not request.sop_uids
    patient = rules.retrieve_request(_identifier("PATIENT", PatientID="P,1"), "patient")
    assert patient.patient_ids == ("P,1",)  # a Patient ID is one value, commas and all
    with pytest.raises(rules.IdentifierError):
        rules.retrieve_request(_identifier("SERIES", StudyInstanceUID="1.2"), "study")  # no series key
    with pytest.raises(rules.IdentifierError) as too_many:
        rules.retrieve_request(_identifier("STUDY", StudyInstanceUID=[f"1.{n}" for n in range(1001)]), "study")
    assert too_many.value.status == 0xA700
    with pytest.raises(rules.IdentifierError):
        rules.retrieve_request(_identifier("IMAGE", SOPInstanceUID="1." + "2" * 70), "study")


def _stored(level: str, **keys: object) -> rules.StoredMatch | None:
    request = rules.find_request(_identifier(level, **keys), "study")
    ((keyword, value),) = request.matching
    return rules.stored_match(keyword, value, request)


def _element(vr: str, *values: object) -> dict:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def test_keys_without_a_column_match_the_stored_values():
    body = _stored("SERIES", BodyPartExamined="CHE*")
    assert body is not None and body.tag == "00180015"
    assert rules.stored_matches(body, _element("CS", "CHEST"))
    assert not rules.stored_matches(body, _element("CS", "chest"))  # case and all, as other text
    assert not rules.stored_matches(body, _element("CS")) and not rules.stored_matches(body, None)  # no value
    exact = _stored("SERIES", ProtocolName="Head ")
    assert rules.stored_matches(exact, _element("LO", "Head")) and not rules.stored_matches(exact, _element("LO", "Heads"))
    assert rules.stored_matches(_stored("IMAGE", ImageType="DERIVED"), _element("CS", "ORIGINAL", "DERIVED"))  # any value
    operator = _stored("SERIES", OperatorsName="smith*")  # a person name: case-insensitive
    assert rules.stored_matches(operator, _element("PN", {"Alphabetic": "Smith^John"}))
    assert not rules.stored_matches(operator, _element("PN", {"Alphabetic": "Jones^Smith"}))
    thickness = _stored("IMAGE", SliceThickness="2.5")
    assert rules.stored_matches(thickness, _element("DS", 2.50)) and not rules.stored_matches(thickness, _element("DS", 5))
    frame = _stored("SERIES", FrameOfReferenceUID=["1.2.3", "1.2.4"])  # a UID list
    assert rules.stored_matches(frame, _element("UI", "1.2.4")) and not rules.stored_matches(frame, _element("UI", "1.2.5"))
    assert _stored("SERIES", BodyPartExamined="*") is None  # universal matching: nothing to check


def test_dates_and_times_of_stored_values_match_as_ranges():
    series_date = _stored("SERIES", SeriesDate="20240101-20240131")
    assert rules.stored_matches(series_date, _element("DA", "20240115"))
    assert not rules.stored_matches(series_date, _element("DA", "20240201"))
    assert rules.stored_matches(_stored("SERIES", SeriesDate="-20240101"), _element("DA", "20231231"))
    assert rules.stored_matches(_stored("SERIES", SeriesDate="20240101-"), _element("DA", "20991231"))
    morning = _stored("SERIES", SeriesTime="0800-1000")
    assert rules.stored_matches(morning, _element("TM", "095959.5"))
    assert rules.stored_matches(morning, _element("TM", "1000"))
    assert rules.stored_matches(morning, _element("TM", "100030"))  # within the minute 10:00
    assert not rules.stored_matches(morning, _element("TM", "101000"))
    assert rules.stored_matches(_stored("SERIES", SeriesTime="0930"), _element("TM", "093015"))
    acquired = _stored("IMAGE", AcquisitionDateTime="20240101-20240102")
    assert rules.stored_matches(acquired, _element("DT", "20240102235959.5"))
    assert not rules.stored_matches(acquired, _element("DT", "20240103"))


@pytest.mark.parametrize(("level", "keys", "status", "named"), [
    ("STUDY", {"BodyPartExamined": "CHEST"}, 0xA900, "BodyPartExamined"),  # a series key at the study level
    ("SERIES", {"SliceThickness": "1"}, 0xA900, "SliceThickness"),  # an image key at the series level
    ("IMAGE", {"ImageType": ["ORIGINAL", "PRIMARY"]}, 0xC000, "ImageType"),  # several values, not UIDs
    ("SERIES", {"SeriesDate": "yesterday"}, 0xC000, "SeriesDate"),
    ("IMAGE", {"ContentDate": "2024*"}, 0xC000, "ContentDate"),  # no wildcards in a date
    ("IMAGE", {"RedPaletteColorLookupTableData": b"\0\1"}, 0xC000, "RedPaletteColorLookupTableData"),
])
def test_keys_that_cannot_be_matched_rightly_are_refused_by_name(level, keys, status, named):
    with pytest.raises(rules.IdentifierError) as refused:
        _stored(level, **keys)
    assert refused.value.status == status and named in refused.value.reason


def test_private_keys_with_a_value_are_refused():
    identifier = _identifier("STUDY", StudyInstanceUID="")
    identifier.private_block(0x0029, "VENDOR", create=True).add_new(0x10, "LO", "")  # asked for: returned empty
    assert rules.find_request(identifier, "study").returned == ("StudyInstanceUID",)
    identifier.private_block(0x0029, "VENDOR").add_new(0x11, "LO", "MATCH-ME")
    with pytest.raises(rules.IdentifierError) as refused:
        rules.find_request(identifier, "study")
    assert refused.value.status == 0xC000 and "(0029,1011)" in refused.value.reason


def test_a_number_key_that_is_no_number_is_refused():
    request = rules.FindRequest("IMAGE", "instance", (("SliceThickness", "thin"),), ("SliceThickness",))
    with pytest.raises(rules.IdentifierError) as refused:
        rules.stored_match("SliceThickness", "thin", request)
    assert refused.value.status == 0xC000 and "SliceThickness" in refused.value.reason


def test_wildcards_take_linear_time():
    assert rules.wildcard_match("a*b?d", "axxbcd") and not rules.wildcard_match("a*b?d", "axxbd")
    assert rules.wildcard_match("*", "") and rules.wildcard_match("**a", "a") and not rules.wildcard_match("a", "")
    import time

    started = time.perf_counter()
    assert not rules.wildcard_match("*a" * 40 + "*b", "a" * 256)
    assert time.perf_counter() - started < 0.5


def test_a_header_and_the_data_set_make_the_part10_file():
    data_set, original = _data_set_of(get_testdata_file("CT_small.dcm"))
    header = rules.part10_header(transfer_syntax=original.file_meta.TransferSyntaxUID, sop_class=original.SOPClassUID,
                                 sop_instance=original.SOPInstanceUID, source_ae="CT1")
    assert header + data_set == rules.part10(data_set, transfer_syntax=original.file_meta.TransferSyntaxUID,
                                             sop_class=original.SOPClassUID, sop_instance=original.SOPInstanceUID,
                                             source_ae="CT1")
