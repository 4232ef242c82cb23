"""Projects and members over REST (issue 8): who may create, read, change and add members."""

from __future__ import annotations

import pytest

from viewer.models import Membership, Project

pytestmark = pytest.mark.django_db


def test_staff_create_projects_and_become_organizer(client, make_user):
    staff = make_user("admin1", is_staff=True)
    client.force_login(staff)
    response = client.post(
        "/api/projects/",
        {"slug": "lung-trial", "name": "Lung trial", "deidentification": {"profile": "basic", "options": ["retain-patient-characteristics"]}},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["deidentification"] == {"profile": "basic", "options": ["retain-patient-characteristics"]}
    assert "secret" not in response.json()
    assert Membership.objects.get(project__slug="lung-trial").role == "organizer"
    assert client.post("/api/projects/", {"slug": "lung-trial", "name": "x"}, content_type="application/json").status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"slug": "x", "name": "x", "deidentification": {"profile": "basic", "options": ["retain-everything"]}},
        {"slug": "x", "name": "x", "deidentification": {"profile": "full"}},
        {"slug": "not a slug", "name": "x"},
        {"name": "missing slug"},
    ],
)
def test_bad_project_input_is_400(client, make_user, body):
    client.force_login(make_user(is_staff=True))
    response = client.post("/api/projects/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert not Project.objects.filter(slug="x").exists()


def test_only_staff_create(client, team):
    client.force_login(team["organizer"])
    assert client.post("/api/projects/", {"slug": "y", "name": "y"}, content_type="application/json").status_code == 403
    client.logout()
    assert client.post("/api/projects/", {"slug": "y", "name": "y"}, content_type="application/json").status_code in (401, 403)


def test_read_change_and_members_by_role(client, team):
    client.force_login(team["reader"])
    assert client.get("/api/projects/trial/").json()["slug"] == "trial"
    assert [p["slug"] for p in client.get("/api/projects/").json()["projects"]] == ["trial"]
    assert client.patch("/api/projects/trial/", {"name": "New"}, content_type="application/json").status_code == 403
    assert client.post("/api/projects/trial/members/", {"username": "outsider", "role": "reader"}, content_type="application/json").status_code == 403

    client.force_login(team["organizer"])
    changed = client.patch("/api/projects/trial/", {"name": "Renamed", "deidentification": {"profile": "basic"}}, content_type="application/json")
    assert changed.status_code == 200 and changed.json()["name"] == "Renamed"
    assert changed.json()["deidentification"] == {"profile": "basic", "options": []}
    added = client.post("/api/projects/trial/members/", {"username": "outsider", "role": "viewer"}, content_type="application/json")
    assert added.status_code == 201
    assert {"username": "outsider", "role": "viewer"} in client.get("/api/projects/trial/members/").json()["members"]
    assert client.post("/api/projects/trial/members/", {"username": "nobody", "role": "viewer"}, content_type="application/json").status_code == 404
    assert client.post("/api/projects/trial/members/", {"username": "outsider", "role": "king"}, content_type="application/json").status_code == 400

    client.force_login(team["outsider"])  # now a viewer of trial; still nothing of 'other' leaks the other way
    assert client.get("/api/projects/trial/").status_code == 200
    client.force_login(team["reader"])
    assert client.get("/api/projects/other/").status_code == 404


def test_members_page_for_organizers(client, team):
    client.force_login(team["reader"])
    assert client.get("/projects/trial/members/").status_code == 403
    client.force_login(team["outsider"])
    assert client.get("/projects/trial/members/").status_code == 404
    client.force_login(team["organizer"])
    page = client.get("/projects/trial/members/")
    assert page.status_code == 200 and b"reader" in page.content
    client.post("/projects/trial/members/", {"username": "outsider", "role": "reader"})
    assert Membership.objects.get(project__slug="trial", user__username="outsider").role == "reader"
    client.post("/projects/trial/members/", {"username": "outsider", "action": "remove"})
    assert not Membership.objects.filter(project__slug="trial", user__username="outsider").exists()
    refused = client.post("/projects/trial/members/", {"username": "nobody", "role": "reader"}, follow=True)
    assert b"No such user" in refused.content
