"""STOW-RS and the ingest service through Django's test client: storing, duplicates, conflicts, bad input."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from django.core.management import call_command

from tests.factories.dicom import ct_bytes, ct_dataset, to_bytes
from tests.factories.models import token_for
from tests.viewer.dicomweb_helpers import stow, stow_body
from demo import corpus
from viewer.ingest import Outcome, ingest_bytes, ingest_files
from viewer.models import Instance, Study
from viewer.storage import object_store

pytestmark = pytest.mark.django_db


def stored_files(project) -> list[str]:
    return object_store().iter_keys(project.pk)


def failed_reasons(body: dict) -> list[int]:
    return [item["00081197"]["Value"][0] for item in body.get("00081198", {}).get("Value", [])]


def test_stow_stores_and_answers_referenced_sop_sequence(client, team):
    token = token_for(team["reader"])
    files = [ct_bytes(), ct_bytes()]
    response = stow(client, "trial", files, token)
    assert response.status_code == 200, response.content
    body = json.loads(response.content)
    referenced = body["00081199"]["Value"]
    assert len(referenced) == 2
    assert referenced[0]["00081190"]["Value"][0].startswith("http://testserver/projects/trial/dicomweb/studies/")
    assert Instance.objects.filter(project=team["project"]).count() == 2
    assert len(stored_files(team["project"])) == 2


def test_same_bytes_twice_is_success_and_stores_nothing_new(client, team):
    token = token_for(team["reader"])
    data = ct_bytes()
    assert stow(client, "trial", [data], token).status_code == 200
    again = stow(client, "trial", [data, data], token)
    assert again.status_code == 200
    assert Instance.objects.count() == 1
    assert len(stored_files(team["project"])) == 1


def test_same_uid_with_other_bytes_is_a_conflict_and_the_stored_one_is_untouched(client, team):
    token = token_for(team["reader"])
    ds = ct_dataset()
    first = to_bytes(ds)
    assert stow(client, "trial", [first], token).status_code == 200
    ds.PatientName = "Other^Name"
    response = stow(client, "trial", [to_bytes(ds)], token)
    assert response.status_code == 409
    assert failed_reasons(json.loads(response.content)) == [0x0111]
    instance = Instance.objects.get()
    assert object_store().read(team["project"].pk, instance.sha256) == first
    assert len(stored_files(team["project"])) == 1


@pytest.mark.parametrize(
    "bad, reason",
    [
        (b"this is not DICOM at all" * 10, "preamble"),
        (ct_bytes()[:-100], "truncated"),
        (ct_bytes(SOPInstanceUID=None), "SOPInstanceUID"),
        (corpus.file("pydicom", "MR_truncated.dcm").read_bytes(), "truncated"),
    ],
    ids=["not-dicom", "truncated", "no-sop-instance-uid", "pydicom-truncated-file"],
)
def test_bad_files_fail_with_a_reason_and_the_rest_of_the_batch_is_stored(client, team, bad, reason):
    token = token_for(team["reader"])
    good = ct_bytes()
    response = stow(client, "trial", [good, bad], token)
    assert response.status_code == 202
    body = json.loads(response.content)
    assert failed_reasons(body) == [0xC000]
    assert len(body["00081199"]["Value"]) == 1
    assert reason in response["Warning"]
    assert Instance.objects.count() == 1
    assert len(stored_files(team["project"])) == 1


def test_study_uid_in_url_must_match(client, team):
    token = token_for(team["reader"])
    response = stow(client, "trial", [ct_bytes()], token, study="1.2.3.4")
    assert response.status_code == 409
    assert failed_reasons(json.loads(response.content)) == [0xA900]
    assert Instance.objects.count() == 0


@pytest.mark.parametrize(
    "content_type, status",
    [
        ("application/json", 415),
        ('multipart/related; type="application/dicom+json"; boundary=x', 415),
        ('multipart/related; type="application/dicom"', 400),
    ],
    ids=["wrong-content-type", "json-parts", "no-boundary"],
)
def test_malformed_requests_are_refused_with_json_reason(client, team, content_type, status):
    body, _ = stow_body([ct_bytes()])
    response = client.post(
        "/projects/trial/dicomweb/studies", body, content_type=content_type,
        HTTP_AUTHORIZATION=f"Token {token_for(team['reader'])}",
    )
    assert response.status_code == status
    assert json.loads(response.content)["detail"]
    assert Instance.objects.count() == 0


def test_access_is_per_project(client, team):
    files = [ct_bytes()]
    # a member of another project, an unknown project, no credentials, a bad token, a viewer (read-only)
    assert stow(client, "trial", files, token_for(team["outsider"])).status_code == 404
    assert stow(client, "nope", files, token_for(team["reader"])).status_code == 404
    assert client.get("/projects/trial/dicomweb/studies").status_code == 401
    assert stow(client, "trial", files, "0" * 40).status_code == 401
    assert stow(client, "trial", files, token_for(team["viewer"])).status_code == 403
    assert Instance.objects.count() == 0


def test_session_users_need_csrf_for_stow(team):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(team["reader"])
    body, content_type = stow_body([ct_bytes()])
    assert csrf_client.post("/projects/trial/dicomweb/studies", body, content_type=content_type).status_code == 403
    assert csrf_client.get("/projects/trial/dicomweb/studies").status_code == 200


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_with_path_traversal_member_is_refused_and_the_rest_stored(team):
    report = ingest_files(
        team["project"],
        [("upload.zip", zip_of({"ok/a.dcm": ct_bytes(), "../../etc/evil.dcm": ct_bytes(), "/abs.dcm": ct_bytes()}))],
    )
    outcomes = {r.name: r.outcome for r in report.results}
    assert outcomes == {
        "upload.zip/ok/a.dcm": Outcome.STORED,
        "upload.zip/../../etc/evil.dcm": Outcome.FAILED,
        "upload.zip//abs.dcm": Outcome.FAILED,
    }
    assert all("Unsafe path" in r.reason for r in report.failed)
    assert Instance.objects.count() == 1


def test_import_dicom_command_reads_folders_zips_and_dicomdir(team, tmp_path, capsys):
    (tmp_path / "a.dcm").write_bytes(ct_bytes())
    (tmp_path / "b.zip").write_bytes(zip_of({"x.dcm": ct_bytes()}))
    (tmp_path / "junk.txt").write_bytes(b"hello")
    call_command("import_dicom", str(tmp_path), "--project", "trial")
    dicomdir = corpus.source_dirs()["pydicom"] / "dicomdirtests" / "DICOMDIR"
    call_command("import_dicom", str(dicomdir), "--project", "trial")
    out = capsys.readouterr()
    assert "2 stored, 0 already stored, 1 refused" in out.out
    assert "refused" in out.err and "junk.txt" in out.err
    assert Instance.objects.count() > 2  # the DICOMDIR's referenced files
    assert Study.objects.filter(project=team["project"]).count() >= 3


def test_web_upload_of_files_and_a_zip_reports_each_file(client, team):
    client.force_login(team["reader"])
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = [
        SimpleUploadedFile("one.dcm", ct_bytes()),
        SimpleUploadedFile("batch.zip", zip_of({"a.dcm": ct_bytes(), "b.dcm": ct_bytes(), "../x.dcm": ct_bytes()})),
        SimpleUploadedFile("notes.txt", b"not dicom"),
    ]
    response = client.post("/api/projects/trial/upload/", {"files": files})
    assert response.status_code == 200
    report = response.json()
    assert report["counts"] == {"stored": 3, "already_stored": 0, "failed": 2}
    assert {r["name"] for r in report["results"] if r["outcome"] == "failed"} == {"batch.zip/../x.dcm", "notes.txt"}
    client.force_login(team["viewer"])
    assert client.post("/api/projects/trial/upload/", {"files": [SimpleUploadedFile("a.dcm", ct_bytes())]}).status_code == 403
    client.force_login(team["outsider"])
    assert client.post("/api/projects/trial/upload/", {"files": [SimpleUploadedFile("a.dcm", ct_bytes())]}).status_code == 404
    assert Instance.objects.count() == 3


def test_home_page_lists_only_my_projects(client, team):
    assert client.get("/").status_code == 302
    client.force_login(team["reader"])
    page = client.get("/").content.decode()
    assert "Trial" in page and "Other" not in page
    assert client.get("/accounts/login/").status_code == 200


def test_home_page_counts_only_the_studies_a_member_may_see(client, team):
    """A study whose every image is held in quarantine is counted for organizers only."""
    shown, held = ct_dataset(), ct_dataset()
    for ds in (shown, held):
        assert ingest_bytes(team["project"], to_bytes(ds)).ok
    Instance.objects.filter(sop_instance_uid=held.SOPInstanceUID).update(quarantined=True)
    counts = {}
    for role in ("organizer", "reader"):
        client.force_login(team[role])
        page = client.get("/").content.decode()
        counts[role] = re.search(r"<td>(\d+)</td>", page).group(1)
    assert counts == {"organizer": "2", "reader": "1"}
