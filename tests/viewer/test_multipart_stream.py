"""The streaming multipart/related reader against the in-memory parser, on the same bodies, read in
chunks so small that every delimiter, line break and header falls across a chunk boundary."""

from __future__ import annotations

import io

import pytest

from viewer.dicomweb.multipart import (
    MultipartError,
    TooManyParts,
    count_multipart_related,
    encode_multipart_related,
    iter_multipart_related,
    parse_multipart_related,
)

BOUNDARY = "b0und4ry"
CT = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
D = b"--" + BOUNDARY.encode()


class Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read, whatever was asked, (a socket, a pipe)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step

    def read(self, size: int = -1) -> bytes:
        size = self._step if size < 0 else min(size, self._step)
        chunk = bytes(self._data[self._pos : self._pos + size])
        self._pos += len(chunk)
        return chunk


def streamed(body: bytes, chunk: int, **kw: object) -> list[tuple[dict[str, str], bytes]]:
    return [(p.headers, p.body) for p in iter_multipart_related(io.BytesIO(body), CT, chunk_bytes=chunk, **kw)]


def in_memory(body: bytes, **kw: object) -> list[tuple[dict[str, str], bytes]]:
    return [(p.headers, p.body) for p in parse_multipart_related(body, CT, **kw)]


WELL_FORMED = {
    "encoded": b"".join(encode_multipart_related([(b"first", "application/dicom"), (b"\r\n--b0und4r", "application/dicom"),
                                                  (b"", "application/dicom")], BOUNDARY)),
    "preamble and epilogue": b"preamble --b0und4r\r\n" + D + b"\r\nContent-Type: application/dicom\r\n\r\nA\r\n"
    + D + b"--\r\nepilogue " + D + b"\r\n\r\nnot a part\r\n",
    "transport padding": D + b"  \t \r\nX-One: 1\r\n\r\nbody one\r\n" + D + b" \r\n\r\nbody two\r\n" + D + b"--",
    "no headers": D + b"\r\n\r\n\r\n" + D + b"\r\n\r\n\r\n\r\n" + D + b"--",
    "CR and LF inside content": D + b"\r\n\r\n\r\r\n\n\r\n-\r\n--\r\n--b0und\r\n" + D + b"--\r\n",
    "content that ends like a delimiter prefix": D + b"\r\n\r\n\r\n--b0und4\r\n" + D + b"--",
    "two headers": D + b"\r\nContent-Type: application/dicom\r\nContent-Length: 3\r\n\r\nabc\r\n" + D + b"--",
    "empty body": D + b"--",
}

MALFORMED = {
    "no boundary": b"nothing here\r\n",
    "truncated in a part": D + b"\r\n\r\nhalf a part",
    "truncated in the headers": D + b"\r\nContent-Type: appl",
    "truncated after the delimiter": D,
    "truncated after a dash": D + b"-",
    "no line break after the delimiter": D + b"\r\n\r\nA\r\n" + D,
    "header without colon": D + b"\r\nnot a header\r\n\r\nA\r\n" + D + b"--",
    "delimiter without CRLF before it": D + b"\r\n\r\nA" + D + b"--",
}


@pytest.mark.parametrize("name", list(WELL_FORMED))
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 11, 64, 1 << 20])
def test_the_stream_reader_splits_as_the_in_memory_parser(name, chunk):
    body = WELL_FORMED[name]
    expected = in_memory(body)
    assert streamed(body, chunk) == expected
    assert [(p.headers, p.body) for p in iter_multipart_related(Trickle(body, 3), CT, chunk_bytes=1000)] == expected
    assert count_multipart_related(io.BytesIO(body), CT, chunk_bytes=chunk) == len(expected)


def test_the_well_formed_bodies_have_the_parts_they_should():
    assert in_memory(WELL_FORMED["transport padding"]) == [({"x-one": "1"}, b"body one"), ({}, b"body two")]
    assert in_memory(WELL_FORMED["encoded"])[1][1] == b"\r\n--b0und4r"
    assert in_memory(WELL_FORMED["preamble and epilogue"]) == [({"content-type": "application/dicom"}, b"A")]
    assert in_memory(WELL_FORMED["no headers"]) == [({}, b""), ({}, b"\r\n")]
    assert in_memory(WELL_FORMED["empty body"]) == []


@pytest.mark.parametrize("name", list(MALFORMED))
@pytest.mark.parametrize("chunk", [1, 2, 5, 1 << 20])
def test_malformed_bodies_are_refused_by_both(name, chunk):
    body = MALFORMED[name]
    with pytest.raises(MultipartError) as in_memory_error:
        in_memory(body)
    with pytest.raises(MultipartError) as streamed_error:
        streamed(body, chunk)
    assert str(streamed_error.value) == str(in_memory_error.value)
    with pytest.raises(MultipartError):
        count_multipart_related(io.BytesIO(body), CT, chunk_bytes=chunk)


def test_parts_before_a_malformed_end_are_yielded_first():
    body = D + b"\r\n\r\nfirst\r\n" + D + b"\r\n\r\nsecond, cut short"
    parts = iter_multipart_related(io.BytesIO(body), CT, chunk_bytes=4)
    assert next(parts).body == b"first"
    with pytest.raises(MultipartError, match="ends before its closing boundary"):
        next(parts)


@pytest.mark.parametrize("chunk", [1, 3, 8, 1 << 20])
def test_a_part_larger_than_the_bound_comes_as_a_marker_and_is_not_held(chunk):
    limit = 10
    sizes = [limit, limit + 1, 0, 3 * limit, limit - 1]
    body = b"".join(encode_multipart_related([(bytes([65 + i]) * n, "application/dicom") for i, n in enumerate(sizes)],
                                             BOUNDARY))
    parts = list(iter_multipart_related(io.BytesIO(body), CT, max_part_bytes=limit, chunk_bytes=chunk))
    assert [p.too_large for p in parts] == [False, True, False, True, False]
    assert [p.size for p in parts] == sizes
    assert [p.body for p in parts] == [b"A" * limit, b"", b"", b"", b"E" * (limit - 1)]
    assert [p.headers for p in parts] == [p.headers for p in parse_multipart_related(body, CT)]
    assert [p.size for p in parse_multipart_related(body, CT)] == sizes


def test_a_huge_part_is_scanned_in_bounded_memory():
    """A 4 MB part beyond a 1 KB bound is discarded chunk by chunk: the buffer never holds much more
    than a chunk (measured on the reader's buffer, since the test body itself is in memory)."""
    import tracemalloc

    body = b"".join(encode_multipart_related([(b"x" * (4 << 20), "application/dicom"), (b"ok", "application/dicom")],
                                             BOUNDARY))
    tracemalloc.start()
    try:
        parts = [(p.too_large, p.body) for p in iter_multipart_related(Trickle(body, 1 << 20), CT,
                                                                       max_part_bytes=1024, chunk_bytes=64 * 1024)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert parts == [(True, b""), (False, b"ok")]
    assert peak < 512 * 1024, peak


def test_too_many_parts_is_raised_as_the_extra_part_starts():
    body = b"".join(encode_multipart_related([(b"x", "application/dicom")] * 3, BOUNDARY))
    assert len(streamed(body, 2, max_parts=3)) == 3
    with pytest.raises(TooManyParts):
        in_memory(body, max_parts=2)
    parts = iter_multipart_related(io.BytesIO(body), CT, max_parts=2, chunk_bytes=2)
    assert [p.body for p in (next(parts), next(parts))] == [b"x", b"x"]
    with pytest.raises(TooManyParts):
        next(parts)
    with pytest.raises(TooManyParts):
        count_multipart_related(io.BytesIO(body + b"never read"), CT, max_parts=2)


def test_a_header_block_beyond_its_bound_is_refused_without_reading_on():
    body = D + b"\r\nX-Long: " + b"a" * (100 * 1024) + b"\r\n\r\nA\r\n" + D + b"--"
    with pytest.raises(MultipartError, match="longer than"):
        streamed(body, 4096)
    padding = D + b" " * (100 * 1024) + b"\r\n\r\nA\r\n" + D + b"--"
    with pytest.raises(MultipartError, match="longer than"):
        streamed(padding, 4096)


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/related", "multipart/related; boundary="])
def test_the_content_type_must_be_multipart_related_with_a_boundary(content_type):
    with pytest.raises(MultipartError):
        list(iter_multipart_related(io.BytesIO(b""), content_type))
