"""DICOMweb under abuse: every size a client controls has a bound, answered by a clear 4xx."""

from __future__ import annotations

import fnmatch
import io
import json
import random
import re
import time
import tracemalloc

import numpy as np
import pydicom
import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from tests.factories.dicom import ct_bytes, ct_dataset, to_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import parts, stow, stow_body
from viewer import corpus
from viewer.dicomweb import qido
from viewer.dicomweb.multipart import parse_multipart_related
from viewer.models import Instance

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------------------ STOW-RS from a browser session


def test_stow_with_a_session_and_its_csrf_token_is_stored(team):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(team["reader"])
    browser.get("/")  # sets the csrftoken cookie
    body, content_type = stow_body([ct_bytes()])
    url = "/projects/trial/dicomweb/studies"

    refused = browser.post(url, body, content_type=content_type)  # the cookie, but no X-CSRFToken
    assert refused.status_code == 403
    assert json.loads(refused.content)["code"] == "forbidden"

    token = browser.cookies["csrftoken"].value
    stored = browser.post(url, body, content_type=content_type, HTTP_X_CSRFTOKEN=token)
    assert stored.status_code == 200, stored.content
    assert len(json.loads(stored.content)["00081199"]["Value"]) == 1


# ------------------------------------------------------------------------------ WADO-RS frame lists


def store_corpus_file(client, team, source: str, name: str) -> tuple[pydicom.Dataset, str]:
    data = corpus.file(source, name).read_bytes()
    assert stow(client, "trial", [data], token_for(team["reader"])).status_code == 200
    ds = pydicom.dcmread(io.BytesIO(data))
    url = (
        f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    return ds, url


def viewer_auth(team) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {token_for(team['viewer'])}"}


def measured(call):
    """``call()``'s result, its peak of traced memory in bytes, and its duration in seconds."""
    tracemalloc.start()
    try:
        started = time.perf_counter()
        result = call()
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak, elapsed


def test_a_repeated_frame_number_is_refused_before_any_frame_is_made(client, team):
    ds, url = store_corpus_file(client, team, "pydicom-data", "emri_small.dcm")  # 10 frames of 8 KiB
    frame_list = ",".join(["1"] * 2000)  # 4 KB of URL; as many frames, 16 MB, were built in memory
    response, peak, elapsed = measured(lambda: client.get(f"{url}/frames/{frame_list}", **viewer_auth(team)))
    assert response.status_code == 400
    assert json.loads(response.content)["code"] == "bad_request"
    assert peak < 2 * 2**20, peak
    assert elapsed < 2.0


@pytest.mark.parametrize(
    "frame_list, status, says",
    [
        ("1,2,1", 400, "more than once"),
        (",".join(str(n) for n in range(1, 12)), 400, "the instance has 10"),
        ("+1", 400, "positive integers"),
        ("1_0", 400, "positive integers"),
    ],
    ids=["duplicate", "more-than-the-frames", "signed", "underscore"],
)
def test_frame_lists_are_checked_with_a_json_reason(client, team, frame_list, status, says):
    _, url = store_corpus_file(client, team, "pydicom-data", "emri_small.dcm")
    response = client.get(f"{url}/frames/{frame_list}", **viewer_auth(team))
    assert response.status_code == status
    assert says in json.loads(response.content)["detail"]


def expected_frames(ds: pydicom.Dataset, numbers: list[int]) -> list[bytes]:
    array = ds.pixel_array
    return [np.ascontiguousarray(array[n - 1]).astype(array.dtype.newbyteorder("<")).tobytes() for n in numbers]


def test_several_frames_are_streamed_one_at_a_time_and_byte_identical(client, team):
    ds, url = store_corpus_file(client, team, "pydicom", "examples_ybr_color.dcm")  # 30 JPEG frames, 225 KiB decoded
    numbers = list(range(30, 0, -1))

    def read(frame_list: str) -> tuple[object, int]:
        response = client.get(f"{url}/frames/{frame_list}", **viewer_auth(team))
        if not response.streaming:
            return response, len(response.content)
        size = 0
        for chunk in response.streaming_content:
            size += len(chunk)  # read and dropped, as a server sends it
        return response, size

    read("1")  # the first decode's one-time imports and caches
    _, one_frame_peak, _ = measured(lambda: read("1"))  # mostly the JPEG decoder's own buffers
    (response, size), peak, _ = measured(lambda: read(",".join(map(str, numbers))))
    assert response.status_code == 200 and response.streaming  # made as it is sent, not built first
    assert size > 30 * int(ds.Rows) * int(ds.Columns) * 3
    assert peak < 1.5 * one_frame_peak, (peak, one_frame_peak)  # 30 frames need about what one does
    got = parts(client.get(f"{url}/frames/{','.join(map(str, numbers))}", **viewer_auth(team)))
    assert got == expected_frames(ds, numbers)
    one = client.get(f"{url}/frames/7", **viewer_auth(team))
    assert not one.streaming and parts(one) == expected_frames(ds, [7])  # one frame: answered whole, as before


def test_the_pixel_data_of_many_frames_is_streamed_frame_by_frame(client, team):
    ds, url = store_corpus_file(client, team, "pydicom", "examples_ybr_color.dcm")  # 6.9 MB once decoded

    def read(resource: str) -> tuple[object, int]:
        response = client.get(resource, **viewer_auth(team))
        if not response.streaming:
            return response, len(response.content)
        return response, sum(len(chunk) for chunk in response.streaming_content)

    read(f"{url}/frames/1")
    _, one_frame_peak, _ = measured(lambda: read(f"{url}/frames/1"))
    (response, size), peak, _ = measured(lambda: read(f"{url}/bulkdata/7FE00010"))
    assert response.status_code == 200 and response.streaming
    assert peak < 1.5 * one_frame_peak, (peak, one_frame_peak)
    (pixel_data,) = parts(client.get(f"{url}/bulkdata/7FE00010", **viewer_auth(team)))
    assert pixel_data == b"".join(expected_frames(ds, list(range(1, 31))))


def test_frames_stream_under_asgi_too(client, team):
    """Under ASGI the parts come from an asynchronous iterator (a synchronous one is read whole first)."""
    ds, url = store_corpus_file(client, team, "pydicom-data", "emri_small.dcm")
    numbers = [10, 2, 5]
    headers = {"Authorization": f"Token {token_for(team['viewer'])}"}

    async def fetch() -> tuple[object, bytes]:
        response = await AsyncClient().get(f"{url}/frames/{','.join(map(str, numbers))}", headers=headers)
        assert response.streaming and response.is_async
        return response, b"".join([chunk async for chunk in response.streaming_content])

    response, content = async_to_sync(fetch)()
    got = [p.body for p in parse_multipart_related(content, response["Content-Type"])]
    assert got == expected_frames(ds, numbers)


def test_a_series_is_streamed_one_instance_at_a_time(client, team):
    first = ct_dataset(InstanceNumber=1)
    files = [to_bytes(first)] + [
        ct_bytes(StudyInstanceUID=first.StudyInstanceUID, SeriesInstanceUID=first.SeriesInstanceUID, InstanceNumber=n)
        for n in (2, 3)
    ]
    assert stow(client, "trial", files, token_for(team["reader"])).status_code == 200
    url = f"/projects/trial/dicomweb/studies/{first.StudyInstanceUID}/series/{first.SeriesInstanceUID}"
    as_stored = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    response = client.get(url, HTTP_ACCEPT=as_stored, **viewer_auth(team))
    assert response.status_code == 200 and response.streaming
    assert parts(response) == files


# ------------------------------------------------------------------------------ STOW-RS: Warning header and parts


def test_the_warning_header_of_a_stow_stays_short_however_many_parts_fail(client, team):
    token = token_for(team["reader"])
    headers = {}
    for count in (10, 400):
        junk = [b"not DICOM, part %d " % n * 8 for n in range(count)]
        response = stow(client, "trial", [ct_bytes(), *junk], token)
        assert response.status_code == 202
        failed = json.loads(response.content)["00081198"]["Value"]
        assert len(failed) == count and all(item["00081197"]["Value"] == [0xC000] for item in failed)
        headers[count] = response["Warning"]
    assert "400 of 401 instances were refused" in headers[400]
    assert "part 2: " in headers[400]  # the first refused part, with its reason
    assert len(headers[400]) < 1024
    assert len(headers[400]) - len(headers[10]) <= 4  # the counts' digits, nothing per part


def test_a_stow_carries_at_most_as_many_parts_as_an_upload_form(client, team, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    token = token_for(team["reader"])
    response = stow(client, "trial", [ct_bytes() for _ in range(4)], token)
    assert response.status_code == 413
    assert json.loads(response.content)["code"] == "too_large"
    assert not Instance.objects.exists()
    assert stow(client, "trial", [ct_bytes() for _ in range(3)], token).status_code == 200


# ------------------------------------------------------------------------------ QIDO-RS and Accept bounds


def search(client, team, path: str, params: dict[str, str]):
    return client.get(f"/projects/trial/dicomweb/{path}", params, **viewer_auth(team))


@pytest.mark.parametrize(
    "path, params, says",
    [
        ("studies", {"offset": str(10**20)}, "offset must be at most"),
        ("studies", {"StudyInstanceUID": ",".join(f"1.2.{n}" for n in range(1001))}, "more than 1000 values"),
        ("series", {"Modality": "CT", "ModalitiesInStudy": "\\".join(["CT"] * 1001)}, "more than 1000 values"),
        ("studies", {"includefield": ",".join(["PatientID"] * 257)}, "more than 256 attributes"),
        ("studies", {"PatientID": "x" * 257}, "longer than 256 characters"),
    ],
    ids=["offset", "uid-list", "modality-list", "includefield", "long-value"],
)
def test_qido_sizes_are_bounded_with_a_json_reason(client, team, path, params, says):
    assert stow(client, "trial", [ct_bytes()], token_for(team["reader"])).status_code == 200
    response = search(client, team, path, params)
    assert response.status_code == 400
    assert says in json.loads(response.content)["detail"]


def test_wildcards_match_in_linear_time(client, team):
    """``*a*a*...*b`` made the regular expression try every split of the value (43 s for 7 stars
    against one 64-character description stored by any reader)."""
    assert stow(client, "trial", [ct_bytes(StudyDescription="a" * 64)], token_for(team["reader"])).status_code == 200
    started = time.perf_counter()
    response = search(client, team, "studies", {"StudyDescription": "*a" * 7 + "*b"})
    assert time.perf_counter() - started < 1.0
    assert json.loads(response.content) == []
    assert len(json.loads(search(client, team, "studies", {"StudyDescription": "*a" * 7 + "*"}).content)) == 1
    # The same answers as a glob, for every short pattern over a small alphabet.
    rng = random.Random(13)
    for _ in range(5000):
        pattern = "".join(rng.choice("ab?*") for _ in range(rng.randint(0, 7)))
        value = "".join(rng.choice("ab") for _ in range(rng.randint(0, 8)))
        assert (re.search(qido._wildcard_regex(pattern), value) is not None) == fnmatch.fnmatchcase(value, pattern)


@pytest.mark.parametrize(
    "accept",
    ["application/octet-stream;q=0.5, " * 40 + "*/*", "multipart/related; type=" + '"' + "x" * 5000 + '"'],
    ids=["many-ranges", "long"],
)
def test_long_accept_headers_are_refused(client, team, accept):
    ds, url = store_corpus_file(client, team, "pydicom-data", "emri_small.dcm")
    for resource in (url, f"{url}/frames/1", f"{url}/bulkdata/7FE00010"):
        response = client.get(resource, HTTP_ACCEPT=accept, **viewer_auth(team))
        assert response.status_code == 400, resource
        assert "Accept header" in json.loads(response.content)["detail"]


def test_a_stow_body_beyond_the_request_bound_is_a_413_with_a_json_reason(client, team, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = stow(client, "trial", [ct_bytes(), ct_bytes()], token_for(team["reader"]))
    assert response.status_code == 413
    assert json.loads(response.content)["code"] == "too_large"
    assert not Instance.objects.exists()


def test_a_search_with_more_parameters_than_django_reads_is_a_400_with_a_json_reason(client, team):
    query = "&".join(["includefield=PatientID"] * 1001)
    response = client.get(f"/projects/trial/dicomweb/studies?{query}", **viewer_auth(team))
    assert response.status_code == 400
    assert "parameters" in json.loads(response.content)["detail"]
