"""multipart/related (RFC 2387) as DICOMweb uses it (PS3.18 8.6.1.2). No Django here."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message


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
        params = {k.lower(): v for k, v in msg.get_params()[1:]} if msg.get_params() else {}
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
    parts, current, quoted = [], [], False
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

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def parse_multipart_related(body: bytes, content_type: str, *, max_parts: int | None = None) -> list[Part]:
    """Split a multipart/related body into parts. Raises :class:`MultipartError` when malformed,
    :class:`TooManyParts` as soon as a part beyond ``max_parts`` starts."""
    media = MediaType.parse(content_type)
    if media.type != "multipart/related":
        raise MultipartError(f"Expected multipart/related, got {media.type}.")
    boundary = media.params.get("boundary")
    if not boundary:
        raise MultipartError("The multipart/related content type has no boundary parameter.")
    delimiter = b"--" + boundary.encode("latin-1")
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
        parts.append(Part(headers, body[content_start:next_delim]))
        pos = next_delim + 2 + len(delimiter)


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
        extra = item[2] if len(item) > 2 else {}  # type: ignore[misc]
        yield from encode_part(item[0], item[1], boundary, extra)
    yield close_delimiter(boundary)


def encode_part(
    data: bytes | Iterable[bytes], part_type: str, boundary: str, extra: dict[str, str] | None = None
) -> Iterator[bytes]:
    """One part: its delimiter and headers, its content, and the line break that ends it.

    ``data`` may be an iterable of chunks (one part's content made piece by piece, read lazily)."""
    head = [f"Content-Type: {part_type}"] + [f"{k}: {v}" for k, v in (extra or {}).items()]
    yield b"--" + boundary.encode("ascii") + b"\r\n" + "\r\n".join(head).encode("latin-1") + b"\r\n\r\n"
    if isinstance(data, bytes | bytearray | memoryview):
        yield data
    else:
        yield from data
    yield b"\r\n"


def close_delimiter(boundary: str) -> bytes:
    return b"--" + boundary.encode("ascii") + b"--\r\n"
