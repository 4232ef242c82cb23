"""Acceptance: dicomweb-client, a client nobody here wrote, against a live server on the real corpus."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from tests.live import LiveSite, demo_users_site
from tests.viewer.dicomweb_helpers import stow_body
from demo import corpus
from viewer.dicomweb.multipart import parse_multipart_related

pytestmark = pytest.mark.live


def corpus_datasets() -> list[tuple[str, pydicom.Dataset, bytes]]:
    """Every corpus file pydicom reads, with the bytes dicomweb-client will send for it."""
    items = []
    for path in corpus.iter_part10_files(["pydicom", "pydicom-data", "deid-data"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(path)
                buffer = io.BytesIO()
                pydicom.dcmwrite(buffer, ds)  # exactly what store_instances sends
            except Exception:
                continue
        if all(k in ds for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID")):
            items.append((path.name, ds, buffer.getvalue()))
    return items


@pytest.fixture
def archive(tmp_path):
    """A daphne process (real clients send chunked bodies, which only an ASGI server reads)."""
    site = LiveSite.create(tmp_path, copy_of=demo_users_site(tmp_path.parent))  # load_demo --no-studies
    (server,) = site.start()
    session = requests.Session()
    session.headers["Authorization"] = f"Token {site.token('reader1')}"
    url = f"{server}/projects/demo/dicomweb"
    yield DICOMwebClient(url=url, session=session), session, url
    site.stop()


def test_real_client_stores_searches_and_retrieves_the_corpus(archive):
    client, session, url = archive
    items = corpus_datasets()
    assert len(items) > 150

    # STOW-RS: the whole corpus, in batches, plus one file pydicom cannot read.
    by_sop: dict[str, tuple[str, pydicom.Dataset, bytes]] = {}
    refused = []
    for start in range(0, len(items), 40):
        batch = items[start : start + 40]
        result = client.store_instances([ds for _, ds, _ in batch])
        for item in result.get("ReferencedSOPSequence", []):
            by_sop[item.ReferencedSOPInstanceUID] = next(i for i in batch if i[1].SOPInstanceUID == item.ReferencedSOPInstanceUID)
        refused += [item.ReferencedSOPInstanceUID for item in result.get("FailedSOPSequence", [])]
    # Several corpus files share a SOP Instance UID with different content (e.g. MR_small variants):
    # the first one stored wins and the others are reported as conflicts.
    unique_sops = {ds.SOPInstanceUID for _, ds, _ in items}
    assert set(by_sop) | set(refused) == unique_sops
    assert len(by_sop) == len(unique_sops) == len(client.search_for_instances(get_remaining=True))

    broken = corpus.file("pydicom", "MR_truncated.dcm")
    good = pydicom.dcmread(corpus.file("pydicom", "CT_small.dcm"))
    good.SOPInstanceUID = good.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, good)
    body, content_type = stow_body([broken.read_bytes(), buffer.getvalue()])
    response = session.post(f"{url}/studies", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 202
    result = pydicom.Dataset.from_json(response.json())
    assert len(result.FailedSOPSequence) == 1 and result.FailedSOPSequence[0].FailureReason == 0xC000
    assert result.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == good.SOPInstanceUID

    # QIDO-RS by each supported attribute.
    ct = pydicom.dcmread(corpus.file("pydicom", "CT_small.dcm"))
    studies = client.search_for_studies(search_filters={"PatientID": ct.PatientID})
    assert ct.StudyInstanceUID in {s["0020000D"]["Value"][0] for s in studies}
    name = str(ct.PatientName)
    pattern = name[:3] + "*"
    assert ct.StudyInstanceUID in {s["0020000D"]["Value"][0] for s in client.search_for_studies(search_filters={"PatientName": pattern})}
    assert ct.StudyInstanceUID in {s["0020000D"]["Value"][0] for s in client.search_for_studies(search_filters={"PatientName": name[:2] + "?" + name[3:]})}
    assert ct.StudyInstanceUID in {s["0020000D"]["Value"][0] for s in client.search_for_studies(search_filters={"StudyDate": ct.StudyDate})}
    in_range = client.search_for_studies(search_filters={"StudyDate": f"{ct.StudyDate}-{ct.StudyDate}"})
    assert in_range and all(s["00080020"]["Value"][0] == ct.StudyDate for s in in_range)
    assert ct.StudyInstanceUID not in {s["0020000D"]["Value"][0] for s in client.search_for_studies(search_filters={"StudyDate": "19000101-19000102"})}
    mr = pydicom.dcmread(corpus.file("pydicom-data", "MR2_J2KR.dcm"))
    for filters in (
        {"AccessionNumber": ct.AccessionNumber} if ct.get("AccessionNumber") else {"PatientID": ct.PatientID},
        {"ModalitiesInStudy": "CT"},
        {"StudyInstanceUID": f"{ct.StudyInstanceUID},{mr.StudyInstanceUID}"},
    ):
        found = {s["0020000D"]["Value"][0] for s in client.search_for_studies(search_filters=filters)}
        assert ct.StudyInstanceUID in found, filters
    two = client.search_for_studies(search_filters={"StudyInstanceUID": [ct.StudyInstanceUID, mr.StudyInstanceUID]})
    assert {s["0020000D"]["Value"][0] for s in two} == {ct.StudyInstanceUID, mr.StudyInstanceUID}
    study = next(s for s in two if s["0020000D"]["Value"][0] == ct.StudyInstanceUID)
    assert study["00201208"]["Value"][0] >= 1 and study["00201206"]["Value"][0] >= 1
    assert "CT" in study["00080061"]["Value"]

    series = client.search_for_series(search_filters={"SeriesInstanceUID": ct.SeriesInstanceUID})
    assert [s["0020000E"]["Value"][0] for s in series] == [ct.SeriesInstanceUID]
    assert series[0]["00201209"]["Value"][0] >= 1
    assert {s["00080060"]["Value"][0] for s in client.search_for_series(search_filters={"Modality": "MR"})} == {"MR"}
    instances = client.search_for_instances(search_filters={"SOPInstanceUID": ct.SOPInstanceUID})
    assert [i["00080018"]["Value"][0] for i in instances] == [ct.SOPInstanceUID]
    by_class = client.search_for_instances(search_filters={"SOPClassUID": ct.SOPClassUID}, fields=["PatientID"])
    assert by_class and all(i["00080016"]["Value"][0] == ct.SOPClassUID for i in by_class)
    assert "00100020" in by_class[0]
    paged = client.search_for_instances(limit=5, offset=5)
    assert len(paged) == 5
    everything = client.search_for_instances(get_remaining=True)
    assert len(everything) == len(by_sop) + 1

    # WADO-RS: every instance back byte-identical (transfer-syntax=*), metadata, frames.
    for sop, (name, ds, sent) in by_sop.items():
        response = session.get(
            f"{url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{sop}",
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        assert response.status_code == 200, name
        (part,) = parse_multipart_related(response.content, response.headers["Content-Type"])
        assert part.body == sent, name

    retrieved = client.retrieve_instance(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    assert retrieved.PatientID == ct.PatientID
    assert np.array_equal(retrieved.pixel_array, ct.pixel_array)
    metadata = client.retrieve_series_metadata(ct.StudyInstanceUID, ct.SeriesInstanceUID)
    assert metadata[0]["00080018"]["Value"][0] == ct.SOPInstanceUID
    assert metadata[0]["7FE00010"]["BulkDataURI"].startswith(url)
    bulk = client.retrieve_bulkdata(metadata[0]["7FE00010"]["BulkDataURI"])
    assert bulk[0] == ct.PixelData

    checked = 0
    for sop, (name, ds, _sent) in by_sop.items():
        if "PixelData" not in ds:
            continue
        try:
            expected = ds.pixel_array
        except Exception:
            continue  # pydicom itself cannot decode it; the server answers 422 for it (tested elsewhere)
        frames = int(ds.get("NumberOfFrames") or 1)
        numbers = sorted({1, frames})
        got = client.retrieve_instance_frames(ds.StudyInstanceUID, ds.SeriesInstanceUID, sop, frame_numbers=numbers)
        for number, data in zip(numbers, got):
            frame = expected[number - 1] if frames > 1 else expected
            assert_frame_equals(ds, frame, data, name)
        checked += 1
    assert checked >= 90  # every decodable image of the corpus (95 when written)


def assert_frame_equals(ds: pydicom.Dataset, expected: np.ndarray, data: bytes, name: str) -> None:
    """Uncompressed native frames come back as stored; decoded ones as pydicom decodes them."""
    bits = int(ds.BitsAllocated)
    if bits == 1 or expected.dtype.itemsize * 8 != bits or ds.file_meta.TransferSyntaxUID.is_compressed or not ds.file_meta.TransferSyntaxUID.is_little_endian:
        got = np.frombuffer(data, dtype=expected.dtype.newbyteorder("<")).reshape(expected.shape)
        assert np.array_equal(got, expected), name
        return
    got = np.frombuffer(data, dtype=expected.dtype.newbyteorder("<"))
    samples = int(ds.get("SamplesPerPixel", 1))
    if samples > 1 and int(ds.get("PlanarConfiguration", 0)) == 1:
        got = got.reshape(samples, *expected.shape[:2]).transpose(1, 2, 0)
    got = got.reshape(expected.shape)
    stored = int(ds.BitsStored)
    if stored < bits:  # pydicom masks (and sign-extends) bits above BitsStored; compare those bits only
        mask = (1 << stored) - 1
        got, expected = got.astype(np.int64) & mask, expected.astype(np.int64) & mask
    assert np.array_equal(got, expected), name
