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


def stored_frame_url(client: Any, team: dict[str, Any]) -> str:
    """Store a CT image in the team's project (as its reader) and return its first frame's rendered URL."""
    from tests.factories.dicom import ct_dataset, to_bytes
    from tests.factories.models import token_for

    ds = ct_dataset()
    assert stow(client, "trial", [to_bytes(ds)], token_for(team["reader"])).status_code == 200
    return (
        f"/projects/trial/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/1/rendered"
    )
