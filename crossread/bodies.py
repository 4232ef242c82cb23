"""Django's ASGI handler, spooling a request's body in large writes.

The server hands the body over in many small messages (daphne: 8 KiB each, about 7,700 for a 63 MB
STOW-RS request), and Django's handler writes each one to its spool file on the event loop: a write
call per message, and a system call per message once the spool has moved to disk. Here the messages
are gathered and written :data:`SPOOL_WRITE_BYTES` at a time, to the same kind of spool (in memory up
to ``FILE_UPLOAD_MAX_MEMORY_SIZE``, then on disk), and nothing else changes.
"""

from __future__ import annotations

import tempfile
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler

from crossread.errors import DomainError, ErrorCode

#: How many bytes of the body are gathered before one write to the spool.
SPOOL_WRITE_BYTES = 1024 * 1024


def request_too_large() -> DomainError:
    """The refusal of a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (STOW-RS's bound)."""
    return DomainError(
        f"The request is larger than this server takes ({settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes); "
        "send the instances in several requests.",
        code=ErrorCode.TOO_LARGE,
    )


def declared_length(meta: dict[str, Any]) -> int:
    """The request's ``Content-Length`` (0 when it has none or an unreadable one)."""
    try:
        return max(0, int(meta.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


class BodyTooLarge(Exception):
    """The body passed the ``limit`` given to :meth:`SpoolingASGIHandler.read_body` (nothing was kept)."""


class SpoolingASGIHandler(ASGIHandler):
    async def read_body(self, receive: Any, limit: int | None = None) -> IO[bytes]:
        """The body as Django's handler reads it (a spooled temporary file at its start), written in
        chunks of about :data:`SPOOL_WRITE_BYTES`; :class:`BodyTooLarge` once it passes ``limit``."""
        body_file = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")
        pending: list[bytes] = []
        size = 0
        total = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise RequestAborted()  # an early client disconnect
                chunk = message.get("body", b"")
                if chunk:
                    pending.append(chunk)
                    size += len(chunk)
                    total += len(chunk)
                    if limit is not None and total > limit:
                        raise BodyTooLarge()
                more = message.get("more_body", False)
                if pending and (size >= SPOOL_WRITE_BYTES or not more):
                    body_file.write(b"".join(pending))
                    pending.clear()
                    size = 0
                if not more:
                    break
        except BaseException:
            body_file.close()
            raise
        body_file.seek(0)
        return body_file
