"""Set up a reading session on a :class:`tests.live.LiveSite` (live tests and bench/collab.py).

Everything goes through ``manage.py shell`` on the site's database, with the same services a page
would call; the users' logins are real Django sessions whose cookies the websocket clients send.
"""

from __future__ import annotations

import json
from typing import Any

from tests.live import LiveSite

SCRIPT = r"""
import json
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from collab import services
from tests.factories.dicom import ct_bytes
from viewer.ingest import ingest_files
from viewer.models import Membership, Project, Role

readers, mode = {readers}, {mode!r}
User = get_user_model()
project = Project.objects.create(slug="live", name="Live")
people = ["organizer"] + [f"reader{{i}}" for i in range(1, readers + 1)]
for name in people:
    user = User.objects.create_user(name, password=name + "-pass-123")
    Membership.objects.create(project=project, user=user, role=Role.ORGANIZER if name == "organizer" else Role.READER)
study = "1.2.826.0.1.3680043.8.498.77"
ingest_files(project, [("a.dcm", ct_bytes(StudyInstanceUID=study, SOPInstanceUID=study + ".1.1", PixelSpacing=[0.5, 0.5]))])
session = services.create_session(
    User.objects.get(username="organizer"), project="live", title="live", studies=[study], mode=mode,
    status="active", participants=[(name, "reader") for name in people[1:]],
)
cookies = {{}}
for name in people:
    user = User.objects.get(username=name)
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    cookies[name] = f"{{settings.SESSION_COOKIE_NAME}}={{store.session_key}}"
print("RESULT" + json.dumps({{"session": session.pk, "instance": study + ".1.1", "cookies": cookies}}))
"""


def prepare(site: LiveSite, *, readers: int = 2, mode: str = "open") -> dict[str, Any]:
    out = site.manage("shell", "-c", SCRIPT.format(readers=readers, mode=mode))
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])  # type: ignore[no-any-return]


def ws_url(http_url: str, session_id: int) -> str:
    return http_url.replace("http://", "ws://") + f"/ws/sessions/{session_id}/"
