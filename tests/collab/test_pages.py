"""Pages: lobby, new session (from the worklist link, form post), session list; members without a seat are refused."""

import pytest
from django.test import Client
from tests.collab.conftest import make_session
pytestmark = pytest.mark.django_db

def test_pages(crew):
    s = make_session(crew)
    c = Client(); c.force_login(crew["org"])
    r = c.get(f"/sessions/{s.pk}/"); assert r.status_code == 200 and b"collab/lobby.js" in r.content
    r = c.get(f"/sessions/new?project=trial&studies={crew['study']}"); assert r.status_code == 200, r.content[:500]
    r = c.post("/sessions/new?project=trial", {"project": "trial", "title": "T", "mode": "blinded", "studies": [crew["study"]], "seat:r1": "reader", "start": "on"})
    assert r.status_code == 302, r.content[:800]
    assert c.get("/sessions/").status_code == 200
    c2 = Client(); c2.force_login(crew["member"])
    assert c2.get(f"/sessions/{s.pk}/").status_code == 403
    assert c2.get("/sessions/new?project=trial").status_code == 403


def test_the_worklist_leads_organizers_to_a_new_session_and_everyone_to_the_sessions(crew):
    for who, organizes in (("org", True), ("r1", False), ("watcher", False)):
        c = Client(); c.force_login(crew[who])
        page = c.get("/projects/trial/").content.decode()
        assert 'href="/sessions/"' in page, who
        assert ('href="/sessions/new?project=trial"' in page) == organizes, who
