"""QIDO-RS matching and WADO-RS responses through Django's test client, with their errors."""

from __future__ import annotations

import io
import json

import pydicom
import pytest

from tests.factories.dicom import ct_bytes, ct_dataset, to_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import parts, stow
from demo import corpus

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(client, team):
    token = token_for(team["viewer"])
    study_a = ct_dataset(PatientName="Doe^Jane", PatientID="A1", StudyDate="20240110", AccessionNumber="ACC1")
    study_b = ct_dataset(PatientName="Roe^Richard", PatientID="B2", StudyDate="20240320", Modality="MR")
    second_in_a = ct_dataset(
        StudyInstanceUID=study_a.StudyInstanceUID, SeriesInstanceUID=study_a.SeriesInstanceUID,
        PatientName="Doe^Jane", PatientID="A1", StudyDate="20240110", InstanceNumber=2,
    )
    files = [to_bytes(ds) for ds in (study_a, study_b, second_in_a)]
    assert stow(client, "trial", files, token_for(team["reader"])).status_code == 200
    return {"token": token, "a": study_a, "b": study_b}


def qido(client, loaded, path, **params):
    response = client.get(f"/projects/trial/dicomweb/{path}", params, HTTP_AUTHORIZATION=f"Token {loaded['token']}")
    return response


def uids(response, tag="0020000D"):
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/dicom+json"
    return sorted(item[tag]["Value"][0] for item in json.loads(response.content))


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"PatientName": "doe^*"}, ["a"]),
        ({"PatientName": "?oe^*"}, ["a", "b"]),
        ({"00100010": "Roe^Richard"}, ["b"]),
        ({"PatientID": "A1"}, ["a"]),
        ({"StudyDate": "20240110"}, ["a"]),
        ({"StudyDate": "20240201-"}, ["b"]),
        ({"StudyDate": "-20240201"}, ["a"]),
        ({"StudyDate": "20240101-20241231"}, ["a", "b"]),
        ({"AccessionNumber": "ACC1"}, ["a"]),
        ({"ModalitiesInStudy": "MR"}, ["b"]),
        ({"ModalitiesInStudy": "CT,MR"}, ["a", "b"]),
        ({"PatientID": ""}, ["a", "b"]),
    ],
)
def test_study_matching(client, loaded, params, expected):
    want = sorted(loaded[k].StudyInstanceUID for k in expected)
    assert uids(qido(client, loaded, "studies", **params)) == want


def test_study_results_carry_required_attributes_and_counts(client, loaded):
    (study,) = json.loads(qido(client, loaded, "studies", PatientID="A1").content)
    assert study["00201206"]["Value"] == [1]
    assert study["00201208"]["Value"] == [2]
    assert study["00080061"]["Value"] == ["CT"]
    assert study["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}]
    assert study["00081190"]["Value"][0].endswith(f"/studies/{loaded['a'].StudyInstanceUID}")
    assert "00100020" in study and "00080020" in study and "00080050" in study


def test_includefield_limit_offset_and_paging_warning(client, loaded):
    response = qido(client, loaded, "instances", includefield="PixelRepresentation,00280004", limit=2)
    items = json.loads(response.content)
    assert len(items) == 2 and "additional results" in response["Warning"]
    assert items[0]["00280103"]["Value"] == [1] and items[0]["00280004"]["Value"] == ["MONOCHROME2"]
    rest = json.loads(qido(client, loaded, "instances", limit=2, offset=2).content)
    assert len(rest) == 1
    everything = json.loads(qido(client, loaded, "instances", includefield="all").content)
    assert all("7FE00010" not in item and "00280010" in item for item in everything)


def test_nested_searches_are_scoped(client, loaded):
    a = loaded["a"]
    assert uids(qido(client, loaded, f"studies/{a.StudyInstanceUID}/series"), "0020000E") == [a.SeriesInstanceUID]
    instances = uids(qido(client, loaded, f"studies/{a.StudyInstanceUID}/series/{a.SeriesInstanceUID}/instances"), "00080018")
    assert len(instances) == 2 and a.SOPInstanceUID in instances
    assert qido(client, loaded, "studies/1.2.3/series").status_code == 404
    assert qido(client, loaded, "studies/1.2.3/instances").status_code == 404
    assert qido(client, loaded, f"studies/{a.StudyInstanceUID}/series/1.2.3/instances").status_code == 404
    assert qido(client, loaded, f"studies/1.2.3/series/{a.SeriesInstanceUID}/instances").status_code == 404
    # a study or series that is there but matches nothing is an empty answer, not "not found"
    empty = qido(client, loaded, f"studies/{a.StudyInstanceUID}/series", Modality="XX")
    assert empty.status_code == 200 and json.loads(empty.content or b"[]") == []
    empty = qido(client, loaded, f"studies/{a.StudyInstanceUID}/series/{a.SeriesInstanceUID}/instances", InstanceNumber="999")
    assert empty.status_code == 200 and json.loads(empty.content or b"[]") == []


@pytest.mark.parametrize(
    "params",
    [{"StudyDate": "2024-01-10"}, {"NoSuchAttribute": "x"}, {"limit": "-1"}, {"SOPInstanceUID": "1"}, {"includefield": "Bogus"}],
    ids=["bad-date", "unknown-key", "negative-limit", "instance-key-at-study-level", "bad-includefield"],
)
def test_bad_queries_are_400_with_a_reason(client, loaded, params):
    response = qido(client, loaded, "studies", **params)
    assert response.status_code == 400
    assert json.loads(response.content)["code"] == "bad_request"


def test_retrieve_defaults_to_explicit_vr_little_endian_and_honours_star(client, team):
    source = corpus.file("pydicom", "JPEG2000.dcm").read_bytes()
    ds = pydicom.dcmread(io.BytesIO(source))
    assert stow(client, "trial", [source], token_for(team["reader"])).status_code == 200
    url = f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    auth = {"HTTP_AUTHORIZATION": f"Token {token_for(team['viewer'])}"}
    (default,) = parts(client.get(url, HTTP_ACCEPT='multipart/related; type="application/dicom"', **auth))
    transcoded = pydicom.dcmread(io.BytesIO(default))
    assert transcoded.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert (transcoded.pixel_array == ds.pixel_array).all()
    (as_stored,) = parts(client.get(url, HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=*', **auth))
    assert as_stored == source
    assert client.get(url, HTTP_ACCEPT="image/png", **auth).status_code == 406


def test_frames_errors(client, team):
    ds = ct_dataset()
    assert stow(client, "trial", [to_bytes(ds)], token_for(team["reader"])).status_code == 200
    base = f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    auth = {"HTTP_AUTHORIZATION": f"Token {token_for(team['viewer'])}"}
    (frame,) = parts(client.get(f"{base}/frames/1", **auth))
    assert frame == ds.PixelData
    assert client.get(f"{base}/frames/2", **auth).status_code == 404
    assert client.get(f"{base}/frames/x", **auth).status_code == 400
    assert client.get(f"{base}/bulkdata/00100010", **auth).status_code == 404
    assert client.get(f"{base}/frames/1", **{"HTTP_AUTHORIZATION": f"Token {token_for(team['outsider'])}"}).status_code == 404
    metadata = json.loads(client.get(f"{base}/metadata", **auth).content)
    assert metadata[0]["7FE00010"]["BulkDataURI"] == f"http://testserver{base}/bulkdata/7FE00010"
    assert client.post(f"{base}/metadata", **auth).status_code == 405
