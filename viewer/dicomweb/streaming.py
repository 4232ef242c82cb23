"""Streamed multipart/related responses: each part made as the body is sent, not all of it first.

Django consumes a synchronous iterator whole before sending it under ASGI (and an asynchronous one
whole under WSGI), so each server gets the kind it streams. Under ASGI the parts are made in worker
threads (they read files and decode pixels), off the event loop and off the thread that runs
Django's synchronous views; they must not use the database.

A part that fails once the answer has started can only cut the body short (no closing delimiter),
which a client sees as an incomplete response: callers make the first part before answering, so
that the usual refusals (406, 422) stay JSON answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse

from viewer.dicomweb.multipart import encode_multipart_related, new_boundary

#: Under ASGI, each step of a streamed response makes about this much of the body in a worker thread.
STEP_BYTES = 256 * 1024


def multipart_stream(
    request: HttpRequest, parts: Iterator[tuple[bytes | Iterable[bytes], str]], part_type: str
) -> StreamingHttpResponse:
    """A multipart/related response whose ``parts`` (and a part's chunks) are made one at a time."""
    boundary = new_boundary()
    chunks = encode_multipart_related(parts, boundary)
    body = _in_worker_threads(chunks) if isinstance(request, ASGIRequest) else chunks
    return StreamingHttpResponse(body, content_type=f'multipart/related; type="{part_type}"; boundary={boundary}')


def _next_chunks(chunks: Iterator[bytes]) -> list[bytes]:
    taken: list[bytes] = []
    size = 0
    for chunk in chunks:
        taken.append(chunk)
        size += len(chunk)
        if size >= STEP_BYTES:
            break
    return taken


async def _in_worker_threads(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    step = sync_to_async(_next_chunks, thread_sensitive=False)
    while taken := await step(chunks):
        for chunk in taken:
            yield chunk
