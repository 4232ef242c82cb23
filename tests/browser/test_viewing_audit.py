"""The viewer reports what a reader looked at, and the audit trail can answer "who saw which images"."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.browser.conftest import login
from tests.browser.test_viewer import go_to_slice, open_baseline


def viewing_events(demo_site: dict[str, Any], username: str) -> list[dict[str, Any]]:
    out = demo_site["site"].manage(
        "shell", "-c",
        "import json; from audit.models import AuditEvent; print(json.dumps([{'action': e.action, **e.detail} "
        f"for e in AuditEvent.objects.filter(actor_name='{username}', action__in=['study.opened', 'series.viewed']).order_by('id')]))",
    )
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_series_and_slice_range_reach_the_audit_trail(page, demo_site):
    # The site is shared: other tests' pages reported too (the last as they closed, let it land first).
    time.sleep(1)
    earlier = len(viewing_events(demo_site, "reader2"))
    login(page, "reader2")
    viewport = open_baseline(page, demo_site)
    go_to_slice(page, viewport, 7)
    go_to_slice(page, viewport, 3)
    page.goto("/")  # leaving the page sends what was seen (pagehide)
    # What the page sent as it left lands when the server has handled it: on a loaded machine, after
    # half a second (a record of another test's page may land first). Read until it is there, a while.
    deadline = time.monotonic() + 20
    while True:
        events = viewing_events(demo_site, "reader2")[earlier:]
        viewed = [e for e in events if e["action"] == "series.viewed"]
        # The viewer flushes what was seen every few seconds too: a slow run may split the range in records.
        ranges = [(e["first_slice"], e["last_slice"]) for e in viewed if "first_slice" in e]
        if any(last >= 7 for _, last in ranges) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert events[0]["action"] == "study.opened"
    assert viewed, events
    assert min(first for first, _ in ranges) == 1 and max(last for _, last in ranges) == 7, viewed
    assert sum(e["seconds"] for e in viewed) > 0
