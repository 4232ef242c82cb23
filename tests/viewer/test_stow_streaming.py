"""STOW-RS and uploads in bounded memory: the body is read as a stream, its structure checked before
anything is stored, its parts ingested one at a time, and an ingest batch bounded by bytes."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import numpy as np
import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.test.client import ClientHandler
from pydicom.uid import generate_uid

from tests.factories.dicom import ct_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stow, stow_body
from viewer import dicomfile, ingest
from viewer.dicomweb import views
from viewer.ingest import Outcome, ingest_many
from viewer.models import Instance
from viewer.storage import object_store

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024
URL = "/projects/trial/dicomweb/studies"


def big_ct(side: int, **overrides: Any) -> bytes:
    """A CT image of side x side 16-bit pixels (side 724: about 1 MB)."""
    return ct_bytes(Rows=side, Columns=side, PixelData=np.zeros(side * side, "<i2").tobytes(), **overrides)


def traced(environ: dict[str, Any]) -> tuple[Any, int]:
    """A request through the whole Django stack, and the peak of memory allocated meanwhile (the
    request's body was made before, as a server would have it in its socket or spool)."""
    handler = ClientHandler()
    tracemalloc.start()
    try:
        response = handler(environ)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return response, peak


def stored_objects(project_id: int) -> list[str]:
    return object_store().iter_keys(project_id)


def test_a_stow_of_40_megabytes_holds_a_fraction_of_it(client, team, monkeypatch):
    """40 parts of 1 MB: the body is never held whole (request.body would be 40 MB at once), nor all
    its instances (the ingest batch is bounded by bytes, here 4 MiB)."""
    monkeypatch.setattr(ingest, "INDEX_BATCH_BYTES", 4 * MiB)
    token = token_for(team["reader"])
    assert stow(client, "trial", [big_ct(64)], token).status_code == 200  # imports and caches warmed up
    study, series = generate_uid(), generate_uid()
    files = [big_ct(724, StudyInstanceUID=study, SeriesInstanceUID=series, InstanceNumber=n) for n in range(40)]
    body, content_type = stow_body(files)
    environ = RequestFactory().post(URL, body, content_type=content_type, HTTP_AUTHORIZATION=f"Token {token}").environ
    del files

    response, peak = traced(environ)

    assert response.status_code == 200, response.content
    assert len(json.loads(response.content)["00081199"]["Value"]) == 40
    assert Instance.objects.filter(series__series_instance_uid=series).count() == 40
    assert len(body) > 40 * MiB - MiB
    assert peak < len(body) / 3, f"{peak / MiB:.1f} MiB for a body of {len(body) / MiB:.1f} MiB"
    # one batch, and a few parts and chunks on the way (measured: 5.6 MiB; 9.7 when a finished batch
    # was held while the next one filled)
    assert peak < ingest.INDEX_BATCH_BYTES + 3 * MiB, f"{peak / MiB:.1f} MiB"


def test_a_body_found_malformed_after_good_parts_stores_nothing(client, team):
    """The structure is checked in a first pass that holds no part: good parts before a broken end are
    not stored, and the answer is the 400 of a malformed body."""
    good = [ct_bytes(), ct_bytes()]
    body, content_type = stow_body([*good, ct_bytes()])
    for broken in (body[: len(body) - 200], body.replace(b"Content-Type: application/dicom", b"no colon here", 3)[:-4]):
        response = client.post(URL, broken, content_type=content_type,
                               HTTP_AUTHORIZATION=f"Token {token_for(team['reader'])}")
        assert response.status_code == 400, response.content
        assert json.loads(response.content)["code"] == "bad_request"
    assert not Instance.objects.exists()
    assert stored_objects(team["project"].pk) == []


def test_a_part_beyond_the_instance_bound_is_refused_unheld_and_the_others_stored(client, team, settings):
    settings.CROSSREAD = {"MAX_INSTANCE_BYTES": 64 * 1024}
    small, large = ct_bytes(), big_ct(256)
    assert len(large) > 64 * 1024
    response = stow(client, "trial", [small, large, ct_bytes()], token_for(team["reader"]))
    assert response.status_code == 202
    failed = json.loads(response.content)["00081198"]["Value"]
    assert failed == [{"00081197": {"vr": "US", "Value": [dicomfile.FAILURE_OUT_OF_RESOURCES]}}]
    assert "part 2: The file is larger than this archive accepts." in response["Warning"]
    assert Instance.objects.count() == 2


def test_the_bytes_of_an_oversized_part_are_not_passed_to_the_ingest(client, team, settings, monkeypatch):
    """The part is a marker (its bytes were discarded by the reader), not bytes that the ingest measures."""
    seen: list[Any] = []
    real = views._stow_parts

    def spy(parts: Any) -> Any:
        for name, data in real(parts):
            seen.append(data if isinstance(data, ingest.IngestResult) else len(data))
            yield name, data

    monkeypatch.setattr(views, "_stow_parts", spy)
    settings.CROSSREAD = {"MAX_INSTANCE_BYTES": 64 * 1024}
    assert stow(client, "trial", [big_ct(256), ct_bytes()], token_for(team["reader"])).status_code == 202
    assert isinstance(seen[0], ingest.IngestResult) and seen[0].failure_code == dicomfile.FAILURE_OUT_OF_RESOURCES
    assert isinstance(seen[1], int)


def asgi_post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """A POST through the server's ASGI handler (Django's, spooling in large writes: crossread.bodies),
    which spools the body to a temporary file as a server hands it over (the test AsyncClient gives the
    request an unseekable payload instead)."""
    from crossread.bodies import SpoolingASGIHandler as ASGIHandler
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    async def run() -> tuple[int, bytes]:
        import asyncio

        pending = [{"type": "http.request", "body": body[i : i + 65536], "more_body": i + 65536 < len(body)}
                   for i in range(0, len(body), 65536)]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop(0)
            await asyncio.Event().wait()  # no disconnect
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"content-length", str(len(body)).encode()), (b"host", b"testserver")],
            "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        }
        await ASGIHandler()(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        return async_to_sync(run)()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_a_stow_under_asgi_reads_the_body_django_spooled_without_copying_it(team, monkeypatch):
    def no_copy(*args: Any) -> Any:
        raise AssertionError("the body Django spooled was copied again")

    monkeypatch.setattr(views, "_copied", no_copy)
    body, content_type = stow_body([ct_bytes(), big_ct(300), ct_bytes()])
    headers = {"Authorization": f"Token {token_for(team['reader'])}", "Content-Type": content_type}
    status, content = asgi_post(URL, body, headers)
    assert status == 200, content
    assert Instance.objects.count() == 3
    assert asgi_post(URL, body, headers)[0] == 200  # the same again: already stored
    assert Instance.objects.count() == 3
    status, content = asgi_post(URL, body[:-100], headers)
    assert status == 400 and json.loads(content)["code"] == "bad_request"


def test_a_stow_beyond_the_request_bound_under_asgi_is_a_413(team, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body, content_type = stow_body([ct_bytes(), ct_bytes()])
    headers = {"Authorization": f"Token {token_for(team['reader'])}", "Content-Type": content_type}
    status, content = asgi_post(URL, body, headers)
    assert status == 413 and json.loads(content)["code"] == "too_large"
    assert not Instance.objects.exists()


def test_an_ingest_batch_is_indexed_once_its_files_hold_the_byte_bound(team, monkeypatch):
    files = [(f"f{n}", ct_bytes()) for n in range(10)]
    size = max(len(data) for _, data in files)  # UIDs of random lengths: within a few bytes
    monkeypatch.setattr(ingest, "INDEX_BATCH_BYTES", 2 * size + 1)  # reached by the third file
    batches: list[int] = []
    real = ingest._index

    def counting(project: Any, batch: list[Any]) -> Any:
        batches.append(len(batch))
        return real(project, batch)

    monkeypatch.setattr(ingest, "_index", counting)
    results = ingest_many(team["project"], files)
    assert [r.outcome for r in results] == [Outcome.STORED] * 10
    assert batches == [3, 3, 3, 1]


def test_an_ingest_reads_its_files_one_at_a_time(team, monkeypatch):
    """The files are asked for lazily: at most one batch of them is held."""
    monkeypatch.setattr(ingest, "INDEX_BATCH", 2)
    asked: list[int] = []
    indexed: list[int] = []
    real = ingest._index

    def counting(project: Any, batch: list[Any]) -> Any:
        indexed.append(len(asked))
        return real(project, batch)

    def files() -> Any:
        for n in range(5):
            asked.append(n)
            yield f"f{n}", ct_bytes()

    monkeypatch.setattr(ingest, "_index", counting)
    ingest_many(team["project"], files())
    assert indexed == [2, 4, 5]


def test_an_uploaded_file_beyond_every_bound_is_refused_unread(team, settings):
    """Django spooled the large file to disk; the upload view refuses it by its size, without reading
    it into memory."""
    settings.CROSSREAD = {"MAX_INSTANCE_BYTES": 64 * 1024, "MAX_ZIP_BYTES": 128 * 1024}
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    huge = SimpleUploadedFile("huge.dcm", b"\0" * (8 * MiB), content_type="application/dicom")
    small = SimpleUploadedFile("small.dcm", ct_bytes(), content_type="application/dicom")
    environ = RequestFactory().post(
        "/api/projects/trial/upload/", {"files": [huge, small]}, HTTP_AUTHORIZATION=f"Token {token_for(team['reader'])}"
    ).environ

    response, peak = traced(environ)

    assert response.status_code == 200, response.content
    report = json.loads(response.content)
    outcomes = {r["name"]: (r["outcome"], r.get("reason", "")) for r in report["results"]}
    assert outcomes == {"huge.dcm": ("failed", "The file is larger than this archive accepts."),
                        "small.dcm": ("stored", "")}
    assert peak < 4 * MiB, f"{peak / MiB:.1f} MiB"
