"""REST of reading sessions: create, list, read, patch, seat, close, invitations; one access matrix."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from collab.access import access_session
from collab.models import Invitation, Participant, ReadingSession
from crossread.errors import DomainError
from tests.collab.conftest import make_session
from tests.factories.models import token_for

pytestmark = pytest.mark.django_db


def api(user: Any) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {token_for(user)}")


def test_create_session_seats_the_organizer_and_orders_the_cases(crew: dict[str, Any]) -> None:
    response = api(crew["org"]).post("/api/sessions/", {
        "project": "trial", "title": "Tumour board", "mode": "blinded",
        "studies": [crew["other_study"], crew["study"]], "participants": [{"username": "r1", "role": "reader"}],
    }, content_type="application/json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["title"], body["mode"], body["status"], body["organizer"]) == ("Tumour board", "blinded", "draft", "org")
    assert [c["study"] for c in body["cases"]] == [crew["other_study"], crew["study"]]
    assert body["cases"][0]["viewer"] == f"/projects/trial/studies/{crew['other_study']}/?session={body['id']}"
    assert [(p["user"], p["role"], p["online"]) for p in body["participants"]] == [
        ("org", "presenter", False), ("r1", "reader", False)]
    assert len({p["colour"] for p in body["participants"]}) == 2
    assert body["you"] == {"user": "org", "role": "presenter", "manages": True}


@pytest.mark.parametrize("who, payload, status, code", [
    ("r1", {}, 403, "forbidden"),  # readers do not organise
    ("outsider", {}, 404, "not_found"),
    ("org", {"studies": ["1.2.3"]}, 400, "bad_request"),
    ("org", {"studies": []}, 400, "bad_request"),
    ("org", {"mode": "secret"}, 400, "bad_request"),
    ("org", {"title": " "}, 400, "bad_request"),
    ("org", {"participants": [{"username": "outsider", "role": "reader"}]}, 400, "bad_request"),
    ("org", {"participants": [{"username": "watcher", "role": "reader"}]}, 400, "bad_request"),  # a viewer observes
])
def test_create_session_refusals(crew: dict[str, Any], who: str, payload: dict[str, Any], status: int, code: str) -> None:
    body = {"project": "trial", "title": "t", "studies": [crew["study"]], **payload}
    response = api(crew[who]).post("/api/sessions/", body, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert not ReadingSession.objects.exists()


# role × action: who reaches the session at all (access_session), who manages it.
MATRIX = {
    #            access           patch  seat   close
    "org":      ("ok",            200,   201,   200),
    "r1":       ("ok",            403,   403,   403),
    "watcher":  ("ok",            403,   403,   403),
    "member":   ("forbidden",     403,   403,   403),  # a project member without a seat
    "outsider": ("not_found",     404,   404,   404),
}


@pytest.mark.parametrize("who", MATRIX)
def test_access_matrix(crew: dict[str, Any], session: Any, who: str) -> None:
    reach, patch, seat, close = MATRIX[who]
    try:
        access_session(crew[who], session.pk)
        outcome = "ok"
    except DomainError as error:
        outcome = str(error.code)
    assert outcome == reach
    client = api(crew[who])
    assert client.get(f"/api/sessions/{session.pk}/").status_code == {"ok": 200, "forbidden": 403, "not_found": 404}[reach]
    assert client.patch(f"/api/sessions/{session.pk}/", {"title": "x"}, content_type="application/json").status_code == patch
    assert client.post(f"/api/sessions/{session.pk}/participants/", {"username": "member", "role": "reader"},
                       content_type="application/json").status_code == seat
    assert client.post(f"/api/sessions/{session.pk}/close/").status_code == close


@pytest.mark.parametrize("session_id", ["999999", "abc", "-1", "0", "1.0", "%20", "1e3", "١"])
def test_unknown_session_ids_are_not_found(crew: dict[str, Any], session: Any, session_id: str) -> None:
    response = api(crew["org"]).get(f"/api/sessions/{session_id}/")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_anonymous_is_refused(session: Any) -> None:
    response = Client().get(f"/api/sessions/{session.pk}/")
    assert response.status_code in (401, 403)


def test_list_shows_sessions_with_a_seat_or_organised(crew: dict[str, Any], session: Any) -> None:
    other = make_session(crew, mode="blinded")
    Participant.objects.filter(session=other, user=crew["r2"]).delete()
    listed = lambda who, query="": [s["id"] for s in api(crew[who]).get(f"/api/sessions/{query}").json()["sessions"]]  # noqa: E731
    assert sorted(listed("org")) == sorted([session.pk, other.pk])
    assert listed("r2") == [session.pk]
    assert listed("member") == [] and listed("outsider") == []
    assert listed("org", "?status=closed") == []
    assert sorted(listed("org", "?project=trial")) == sorted([session.pk, other.pk])


def test_patch_close_and_nothing_after(crew: dict[str, Any], session: Any) -> None:
    client = api(crew["org"])
    response = client.patch(f"/api/sessions/{session.pk}/", {"title": "Renamed", "mode": "blinded",
                            "studies": [crew["other_study"], crew["study"]]}, content_type="application/json")
    assert response.status_code == 200
    assert (response.json()["title"], response.json()["mode"]) == ("Renamed", "blinded")
    assert [c["study"] for c in response.json()["cases"]] == [crew["other_study"], crew["study"]]
    assert client.patch(f"/api/sessions/{session.pk}/", {"colour": "x"}, content_type="application/json").status_code == 400
    closed = client.post(f"/api/sessions/{session.pk}/close/").json()
    assert closed["status"] == "closed" and closed["closed_at"]
    response = client.patch(f"/api/sessions/{session.pk}/", {"title": "Again"}, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (409, "conflict")


def test_seat_change_role_and_remove(crew: dict[str, Any], session: Any) -> None:
    client = api(crew["org"])
    url = f"/api/sessions/{session.pk}/participants/"
    assert client.post(url, {"username": "member", "role": "reader"}, content_type="application/json").status_code == 201
    assert client.post(url, {"username": "member", "role": "adjudicator"}, content_type="application/json").status_code == 201
    assert Participant.objects.get(session=session, user=crew["member"]).role == "adjudicator"
    assert client.post(url, {"username": "member", "role": "boss"}, content_type="application/json").status_code == 400
    assert client.delete(f"{url}member/").status_code == 204
    assert client.delete(f"{url}member/").status_code == 404
    assert client.delete(f"{url}org/").status_code == 400  # the organizer keeps a seat
    assert api(crew["member"]).get(f"/api/sessions/{session.pk}/").status_code == 403


def test_invitation_link_seats_a_member_with_one_click(crew: dict[str, Any], session: Any) -> None:
    created = api(crew["org"]).post(f"/api/sessions/{session.pk}/invitations/", {"role": "adjudicator", "hours": 2},
                                   content_type="application/json")
    assert created.status_code == 201
    url = created.json()["url"]
    member = Client()
    member.force_login(crew["member"])
    page = member.get(url)
    assert page.status_code == 200 and b"adjudicator" in page.content
    joined = member.post(url)
    assert joined.status_code == 302 and joined["Location"] == f"/sessions/{session.pk}/"
    assert Participant.objects.get(session=session, user=crew["member"]).role == "adjudicator"
    # someone outside the project cannot use it; a tampered link is no link
    outsider = Client()
    outsider.force_login(crew["outsider"])
    assert outsider.post(url).status_code == 404
    assert member.get(url[:-3] + "abc").status_code == 404


@pytest.mark.parametrize("spoil", ["revoke", "expire", "close", "someone_else"])
def test_invitation_refusals(crew: dict[str, Any], session: Any, spoil: str) -> None:
    client = api(crew["org"])
    body = {"role": "reader", **({"username": "r1"} if spoil == "someone_else" else {})}
    invitation = client.post(f"/api/sessions/{session.pk}/invitations/", body, content_type="application/json").json()
    if spoil == "revoke":
        assert client.delete(f"/api/sessions/{session.pk}/invitations/{invitation['id']}/").status_code == 204
        assert client.get(f"/api/sessions/{session.pk}/invitations/").json()["invitations"][0]["revoked"]
    elif spoil == "expire":
        Invitation.objects.filter(pk=invitation["id"]).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    elif spoil == "close":
        client.post(f"/api/sessions/{session.pk}/close/")
    member = Client()
    member.force_login(crew["member"])
    assert member.get(invitation["url"]).status_code == 404
    assert member.post(invitation["url"]).status_code == 404
    assert not Participant.objects.filter(session=session, user=crew["member"]).exists()


def test_only_organizers_handle_invitations(crew: dict[str, Any], session: Any) -> None:
    response = api(crew["r1"]).post(f"/api/sessions/{session.pk}/invitations/", {"role": "reader"},
                                   content_type="application/json")
    assert response.status_code == 403
    assert api(crew["r1"]).get(f"/api/sessions/{session.pk}/invitations/").status_code == 403
    assert "invitations" not in api(crew["r1"]).get(f"/api/sessions/{session.pk}/").json()
