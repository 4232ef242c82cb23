"""Helpers to talk DICOMweb through Django's test client."""

from __future__ import annotations

from typing import Any

from viewer.dicomweb.multipart import encode_multipart_related, new_boundary, parse_multipart_related


def stow_body(files: list[bytes]) -> tuple[bytes, str]:
    boundary = new_boundary()
    body = b"".join(encode_multipart_related(((f, "application/dicom") for f in files), boundary))
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow(client: Any, slug: str, files: list[bytes], token: str, study: str | None = None) -> Any:
    body, content_type = stow_body(files)
    url = f"/projects/{slug}/dicomweb/studies" + (f"/{study}" if study else "")
    return client.post(url, body, content_type=content_type, HTTP_AUTHORIZATION=f"Token {token}")


def body(response: Any) -> bytes:
    """The body of a response, streamed or not."""
    return b"".join(response.streaming_content) if response.streaming else response.content


def parts(response: Any) -> list[bytes]:
    return [p.body for p in parse_multipart_related(body(response), response["Content-Type"])]
