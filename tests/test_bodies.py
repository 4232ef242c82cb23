"""crossread.bodies: the request body spooled as Django's handler does, in large writes."""

from __future__ import annotations

import os
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import RequestAborted

from crossread import bodies
from crossread.bodies import SpoolingASGIHandler


def messages(body: bytes, size: int) -> list[dict[str, Any]]:
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    return [{"type": "http.request", "body": c, "more_body": n < len(chunks) - 1} for n, c in enumerate(chunks)]


def read(pending: list[dict[str, Any]]) -> Any:
    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    return async_to_sync(SpoolingASGIHandler().read_body)(receive)


class CountingWrites:
    def __init__(self, monkeypatch: Any) -> None:
        self.sizes: list[int] = []
        real = bodies.tempfile.SpooledTemporaryFile
        counter = self

        class Spool(real):  # type: ignore[misc,valid-type]
            def write(self, data: bytes) -> int:
                counter.sizes.append(len(data))
                return super().write(data)

        monkeypatch.setattr(bodies.tempfile, "SpooledTemporaryFile", Spool)


def test_daphnes_small_messages_are_spooled_in_large_writes(monkeypatch, settings):
    body = os.urandom(3 * bodies.SPOOL_WRITE_BYTES + 12345)
    writes = CountingWrites(monkeypatch)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024  # past it, the spool moves to disk, as for a large STOW
    pending = messages(body, 8192)
    pending.insert(3, {"type": "http.request", "body": b"", "more_body": True})  # an empty message on the way
    spooled = read(pending)
    assert spooled.tell() == 0 and spooled.read() == body
    assert len(writes.sizes) == 4 and sum(writes.sizes) == len(body)  # not one write per 8 KiB message


@pytest.mark.parametrize("body", [b"", b"small", os.urandom(100_000)])
def test_any_body_reads_back_the_same(body):
    assert read(messages(body, 65536)).read() == body


def test_a_client_gone_midway_aborts_the_request():
    pending = messages(os.urandom(50_000), 8192)[:3] + [{"type": "http.disconnect"}]
    with pytest.raises(RequestAborted):
        read(pending)
