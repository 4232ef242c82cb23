"""multipart/related (RFC 2387) as DICOMweb uses it (PS3.18 8.6.1.2). No Django here."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Protocol


class MultipartError(ValueError):
    pass


class TooManyParts(MultipartError):
    """The body holds more parts than the caller accepts."""


class AcceptTooLong(MultipartError):
    """An Accept header longer, or with more media ranges, than any client needs."""


#: Bounds on an Accept header: real clients send a handful of media ranges in a few hundred bytes;
#: each range costs a header parse, so a long list is work chosen by the client.
MAX_ACCEPT_CHARS = 4096
MAX_ACCEPT_RANGES = 32


@dataclass(frozen=True)
class MediaType:
    """A parsed media type such as ``multipart/related; type="application/dicom"``."""

    type: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> MediaType:
        msg = Message()
        msg["content-type"] = value
        main = msg.get_content_type()  # lowercased; text/plain when unparseable
        if "/" not in value.split(";", 1)[0]:
            raise MultipartError(f"Not a media type: {value[:100]!r}")
        found = msg.get_params() or []
        params = {k.lower(): v for k, v in found[1:]}
        return cls(main, params)


def parse_accept(header: str) -> list[MediaType]:
    """The media ranges of an Accept header, in the client's order of preference (q-values honoured).

    Not bounded here: the DICOMweb views check a client's header first (:func:`check_accept`).
    """
    ranges: list[tuple[float, int, MediaType]] = []
    for index, part in enumerate(_split_top_level(header)):
        part = part.strip()
        if not part:
            continue
        try:
            media = MediaType.parse(part)
        except MultipartError:
            continue
        try:
            quality = float(media.params.pop("q", "1"))
        except ValueError:
            quality = 1.0
        ranges.append((-quality, index, media))
    return [media for _, _, media in sorted(ranges, key=lambda item: (item[0], item[1]))]


def check_accept(header: str) -> None:
    """Raise :class:`AcceptTooLong` beyond :data:`MAX_ACCEPT_CHARS` or :data:`MAX_ACCEPT_RANGES`."""
    if len(header) > MAX_ACCEPT_CHARS:
        raise AcceptTooLong(f"The Accept header is longer than {MAX_ACCEPT_CHARS} characters.")
    if header.count(",") >= MAX_ACCEPT_RANGES and len(_split_top_level(header)) > MAX_ACCEPT_RANGES:
        raise AcceptTooLong(f"The Accept header lists more than {MAX_ACCEPT_RANGES} media ranges.")


def _split_top_level(header: str) -> list[str]:
    """Split on commas that are not inside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]
    body: bytes
    #: The part was larger than the reader's ``max_part_bytes``: its bytes were discarded unread
    #: (``body`` is empty); ``size`` says how many there were.
    too_large: bool = False
    size: int = 0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def _delimiter(content_type: str) -> bytes:
    media = MediaType.parse(content_type)
    if media.type != "multipart/related":
        raise MultipartError(f"Expected multipart/related, got {media.type}.")
    boundary = media.params.get("boundary")
    if not boundary:
        raise MultipartError("The multipart/related content type has no boundary parameter.")
    return b"--" + boundary.encode("latin-1")


def parse_multipart_related(body: bytes, content_type: str, *, max_parts: int | None = None) -> list[Part]:
    """Split a multipart/related body held in memory into parts. Raises :class:`MultipartError` when
    malformed, :class:`TooManyParts` when a part beyond ``max_parts`` is found.

    For a request body, :func:`iter_multipart_related` reads it as a stream instead."""
    delimiter = _delimiter(content_type)
    # The body starts with the first delimiter (an optional preamble before it is ignored).
    start = body.find(delimiter)
    if start < 0:
        raise MultipartError("The body does not contain its boundary.")
    parts: list[Part] = []
    pos = start + len(delimiter)
    while True:
        if body[pos : pos + 2] == b"--":
            return parts  # close delimiter
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            raise MultipartError("The multipart body ends before its closing boundary.")
        pos = line_end + 2
        header_end = body.find(b"\r\n\r\n", pos - 2)
        if header_end < 0:
            raise MultipartError("A part has no end of headers.")
        headers = _parse_headers(body[pos:header_end]) if header_end > pos else {}
        content_start = header_end + 4
        next_delim = body.find(b"\r\n" + delimiter, content_start)
        if next_delim < 0:
            raise MultipartError("The multipart body ends before its closing boundary.")
        if max_parts is not None and len(parts) >= max_parts:
            raise TooManyParts(f"The body holds more than {max_parts} parts.")
        parts.append(Part(headers, body[content_start:next_delim], size=next_delim - content_start))
        pos = next_delim + 2 + len(delimiter)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


#: How much of a stream :func:`iter_multipart_related` reads at a time by default.
DEFAULT_CHUNK_BYTES = 256 * 1024
#: Bound on a part's delimiter line (its transport padding) and header block together: real parts
#: carry a few short headers; a longer block is refused rather than held.
MAX_PART_HEADER_BYTES = 64 * 1024


def iter_multipart_related(
    stream: Readable,
    content_type: str,
    *,
    max_parts: int | None = None,
    max_part_bytes: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Iterator[Part]:
    """The parts of a multipart/related body read from ``stream`` ``chunk_bytes`` at a time, yielded
    one by one as each one's closing delimiter is read: at any time it holds about one part and one chunk.

    The same grammar as :func:`parse_multipart_related` (a preamble before the first delimiter and
    an epilogue after the close delimiter are ignored, so is transport padding after a delimiter).
    A part larger than ``max_part_bytes`` is not held: its bytes are discarded while scanning for its
    end, and it comes as a part with ``too_large`` set and an empty body, so that the caller refuses
    that one part. Raises :class:`MultipartError` when the structure is malformed (which may be found
    after some parts were yielded: a caller that must not act on half a body validates it first with
    :func:`count_multipart_related`), :class:`TooManyParts` as soon as a part beyond ``max_parts`` starts.
    The epilogue is not read.
    """
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be positive")
    delimiter = _delimiter(content_type)
    reader = _ChunkReader(stream, chunk_bytes)
    if not reader.skip_past(delimiter):
        raise MultipartError("The body does not contain its boundary.")
    separator = b"\r\n" + delimiter
    count = 0
    while True:
        if reader.peek(2) == b"--":
            return  # close delimiter
        line_end = reader.find(b"\r\n", 0, MAX_PART_HEADER_BYTES)
        if line_end < 0:
            raise MultipartError("The multipart body ends before its closing boundary.")
        header_end = reader.find(b"\r\n\r\n", line_end, MAX_PART_HEADER_BYTES)
        if header_end < 0:
            raise MultipartError("A part has no end of headers.")
        raw = reader.take(header_end + 4)
        headers = _parse_headers(raw[line_end + 2 : header_end]) if header_end > line_end + 2 else {}
        count += 1
        if max_parts is not None and count > max_parts:
            raise TooManyParts(f"The body holds more than {max_parts} parts.")
        body, size = reader.read_until(separator, max_part_bytes)
        if body is None:
            yield Part(headers, b"", too_large=True, size=size)
        else:
            yield Part(headers, body, size=size)


def count_multipart_related(
    stream: Readable, content_type: str, *, max_parts: int | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> int:
    """Check the structure of a multipart/related body read from ``stream`` and count its parts,
    holding no part (each is discarded while scanning). Raises as :func:`iter_multipart_related`."""
    return sum(1 for _ in iter_multipart_related(stream, content_type, max_parts=max_parts, max_part_bytes=-1,
                                                 chunk_bytes=chunk_bytes))


class _ChunkReader:
    """A buffer over a stream, filled a chunk at a time; consumed bytes are dropped from its front."""

    def __init__(self, stream: Readable, chunk_bytes: int) -> None:
        self._stream = stream
        self._chunk = chunk_bytes
        self._buf = bytearray()
        self._eof = False

    def _more(self) -> bool:
        if self._eof:
            return False
        chunk = self._stream.read(self._chunk)
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def skip_past(self, needle: bytes) -> bool:
        """Discard everything up to and including the first ``needle``; False if there is none."""
        while True:
            found = self._buf.find(needle)
            if found >= 0:
                del self._buf[: found + len(needle)]
                return True
            del self._buf[: max(0, len(self._buf) - len(needle) + 1)]
            if not self._more():
                return False

    def peek(self, size: int) -> bytes:
        while len(self._buf) < size and self._more():
            pass
        return bytes(self._buf[:size])

    def find(self, needle: bytes, start: int, limit: int) -> int:
        """The offset of ``needle`` at or after ``start``, reading on as needed; -1 at the end of the
        stream. Raises :class:`MultipartError` rather than look beyond ``limit`` bytes."""
        while True:
            found = self._buf.find(needle, start)
            if 0 <= found <= limit:
                return found
            if found > limit or len(self._buf) > limit + len(needle):
                raise MultipartError(f"A part's delimiter line and headers are longer than {limit} bytes.")
            if not self._more():
                return -1

    def take(self, size: int) -> bytes:
        taken = bytes(self._buf[:size])
        del self._buf[:size]
        return taken

    def read_until(self, separator: bytes, limit: int | None) -> tuple[bytes | None, int]:
        """The bytes before ``separator`` (which is consumed too) and their count; None for the bytes
        when there are more than ``limit``: those are discarded as they are read, never held."""
        scan = 0  # where the separator may start: the bytes before it are content
        discarded = 0
        while True:
            found = self._buf.find(separator, scan)
            if found >= 0:
                size = discarded + found
                content: bytes | None = None
                if discarded == 0 and (limit is None or size <= limit):
                    with memoryview(self._buf) as view:
                        content = bytes(view[:found])
                del self._buf[: found + len(separator)]
                return content, size
            scan = max(0, len(self._buf) - len(separator) + 1)
            if discarded or (limit is not None and scan > limit):
                discarded += scan
                del self._buf[:scan]
                scan = 0
            if not self._more():
                raise MultipartError("The multipart body ends before its closing boundary.")


def _parse_headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.decode("latin-1").split("\r\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise MultipartError("A part header has no colon.")
        headers[name.strip().lower()] = value.strip()
    return headers


def new_boundary() -> str:
    return f"crossread-{secrets.token_hex(16)}"


def encode_multipart_related(
    parts: Iterable[tuple[bytes | Iterable[bytes], str] | tuple[bytes | Iterable[bytes], str, dict[str, str]]],
    boundary: str,
) -> Iterator[bytes]:
    """Yield the body of a multipart/related message, part by part (for streaming responses).

    ``parts`` is read lazily: a generator of parts is asked for each one only when the previous
    one has been yielded, so a streamed response holds one part at a time.
    """
    for item in parts:
        extra = item[2] if len(item) > 2 else {}
        yield from encode_part(item[0], item[1], boundary, extra)
    yield close_delimiter(boundary)


def encode_part(
    data: bytes | Iterable[bytes], part_type: str, boundary: str, extra: dict[str, str] | None = None
) -> Iterator[bytes]:
    """One part: its delimiter and headers, its content, and the line break that ends it.

    ``data`` may be an iterable of chunks (one part's content made piece by piece, read lazily)."""
    head = [f"Content-Type: {part_type}"] + [f"{k}: {v}" for k, v in (extra or {}).items()]
    yield b"--" + boundary.encode("ascii") + b"\r\n" + "\r\n".join(head).encode("latin-1") + b"\r\n\r\n"
    if isinstance(data, bytes):
        yield data
    else:
        yield from data
    yield b"\r\n"


def close_delimiter(boundary: str) -> bytes:
    return b"--" + boundary.encode("ascii") + b"--\r\n"
