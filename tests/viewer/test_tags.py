"""The DICOM tag browser: the pure tree of one instance's DICOM JSON (names, private names by their
creator, bulk data as links, bounds) and its endpoint through the gate."""

from __future__ import annotations

from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.factories.dicom import ct_dataset, to_bytes
from tests.factories.models import token_for
from viewer import dicomfile, tags
from viewer.ingest import ingest_bytes
from viewer.models import Instance


def _find(rows: list[dict[str, Any]], tag: str) -> dict[str, Any]:
    return next(row for row in rows if row["tag"] == tag)


def test_a_real_ct_is_named_with_its_private_tags_and_its_pixels_are_a_link():
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    tree = tags.tag_tree(dicomfile.dicom_json(ds), "/projects/p/dicomweb/studies/1/series/2/instances/3")
    rows = tree["elements"]
    assert tree["omitted"] == 0
    name = _find(rows, "(0010,0010)")
    assert (name["keyword"], name["name"], name["vr"], name["value"]) == ("PatientName", "Patient's Name", "PN",
                                                                          "CompressedSamples^CT1")
    assert _find(rows, "(0028,0030)")["value"] == "0.661468\\0.661468"
    private = _find(rows, "(0009,1001)")
    assert private["creator"] == "GEMS_IDEN_01" and private["name"] == "Full fidelity"
    assert _find(rows, "(0009,0010)")["name"] == "Private Creator"
    pixels = _find(rows, "(7FE0,0010)")
    assert pixels["bulk"] == "/projects/p/dicomweb/studies/1/series/2/instances/3/bulkdata/7FE00010"
    assert pixels["value"] == "bulk data"


def test_sequences_nest_and_long_values_and_many_elements_are_bounded():
    ds = ct_dataset(ImageComments="x" * 5000)
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.ReferencedImageSequence = Sequence([item, item])
    ds.add_new(0x00091001, "LO", "creatorless")
    tree = tags.tag_tree(dicomfile.dicom_json(ds), "/x")
    rows = tree["elements"]
    sequence = _find(rows, "(0008,1140)")
    assert sequence["value"] == "2 items" and len(sequence["items"]) == 2
    assert _find(sequence["items"][0], "(0008,1155)")["value"] == "1.2.3"
    comments = _find(rows, "(0020,4000)")
    assert len(comments["value"]) == tags.MAX_VALUE_CHARS and comments["truncated"] == 5000
    assert _find(rows, "(0009,1001)")["name"] == "Private tag (no creator)"
    small = tags.tag_tree(dicomfile.dicom_json(ds), "/x", max_rows=5)
    counted = len(small["elements"]) + sum(len(items) for row in small["elements"] for items in row.get("items", []))
    assert counted <= 5 and small["omitted"] > 0


@pytest.mark.django_db
def test_the_endpoint_answers_members_through_the_gate(client, team):
    ds = ct_dataset(PatientName="Doe^Jane")
    assert ingest_bytes(team["project"], to_bytes(ds)).ok
    url = f"/projects/trial/instances/{ds.SOPInstanceUID}/tags"
    answer = client.get(url, HTTP_AUTHORIZATION=f"Token {token_for(team['viewer'])}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["study"] == ds.StudyInstanceUID and _find(body["elements"], "(0010,0010)")["value"] == "Doe^Jane"
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token_for(team['outsider'])}").status_code == 404
    Instance.objects.filter(sop_instance_uid=ds.SOPInstanceUID).update(quarantined=True)
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token_for(team['reader'])}").status_code == 404
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token_for(team['organizer'])}").status_code == 200
