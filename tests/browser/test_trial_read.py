"""A whole blinded double read on the phantom, through the pages of a real server.

Two readers measure (their bidirectionals are created as marks of their reads through the REST API, as
the read's viewer would), assign them to lesions on the read's summary page, watch the RECIST table and sign; their
overall responses disagree (reader2 misses the new liver lesion); the adjudicator chooses a read
with a reason; the dashboard shows the result; the CSV and the DICOM SR are exported.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.conftest import CHROMIUM, PASSWORDS, login, screenshot
from tests.browser.trial_flow import demo_trial_site

pytestmark = [pytest.mark.browser, pytest.mark.live,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"needs chromium at {CHROMIUM}")]


@pytest.fixture(scope="module")
def trial_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Demo users, a small phantom (120 slices of 128x128) and the demo trial."""
    root = tmp_path_factory.mktemp("trial-site")
    site, url, truth = demo_trial_site(root)
    try:
        yield {"site": site, "url": url, "truth": truth}
    finally:
        site.stop()


@pytest.fixture
def context(browser: Any, trial_site: dict[str, Any]) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=trial_site["url"])
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


def _page(context: Any, user: str) -> Any:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, user)
    return page


def _measure(site: dict[str, Any], token: str, timepoint: str, lesion_id: str, read: str) -> int:
    """What the read's viewer sends for a bidirectional: the lesion's declared axes on its centre slice, a
    mark of the read (the summary's chooser offers only those)."""
    lesion = next(x for x in site["truth"][timepoint]["lesions"] if x["id"] == lesion_id)
    response = requests.post(
        f"{site['url']}/api/trials/demo/reads/{read}/marks/",
        json={"instance": lesion["sop_instance_uid"], "kind": "bidirectional",
              "points": [*lesion["long_axis_endpoints_px"], *lesion["short_axis_endpoints_px"]]},
        headers={"Authorization": f"Token {token}"}, timeout=30)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _saved(page: Any, action: Any) -> None:
    with page.expect_response(lambda r: "/api/trials/" in r.url and r.request.method in ("PUT", "POST")) as info:
        action()
    assert info.value.ok, info.value.text()


def _add_lesion(page: Any, role: str, organ: str, nodal: bool = False) -> None:
    page.select_option("[data-testid=new-role]", role)
    page.fill("[data-testid=new-organ]", organ)
    if nodal:
        page.check("[data-testid=new-nodal]")
    _saved(page, lambda: page.click("form.add-lesion button[type=submit]"))
    page.wait_for_selector(f"[data-testid=new-organ]")


def _read(page: Any, site: dict[str, Any], user: str, *, sees_new_lesion: bool) -> None:
    page.goto("/projects/demo/trial/")
    rows = page.locator("[data-testid=worklist] tbody tr")
    assert rows.count() == 1  # blinded: only their own read
    page.click("[data-testid=worklist] a")  # the read opens in the viewer; its summary is the table
    page.wait_for_selector("body[data-read-panel=ready]")
    read = page.url.rstrip("/").rsplit("/", 1)[-1]
    page.goto(f"/projects/demo/trial/reads/{read}/summary/")
    page.wait_for_selector("[data-testid=recist]")
    assert "day 56" in page.inner_text(".timepoints") and "2024" not in page.inner_text(".timepoints")

    token = site["site"].token(user)  # (the user's one token: a command run for each mark took 2 s)
    ids = {(tp, lid): _measure(site, token, tp, lid, read) for tp in ("baseline", "followup") for lid in ("T1", "T2", "T3")}
    if sees_new_lesion:
        ids[("followup", "N1")] = _measure(site, token, "followup", "N1", read)
    page.reload()
    page.wait_for_selector("[data-testid=recist]")

    for identifier, organ, nodal in (("T1", "liver", False), ("T2", "lung", False), ("T3", "mediastinum", True)):
        _add_lesion(page, "target", organ, nodal)
        for order, tp in enumerate(("baseline", "followup")):
            _saved(page, lambda: page.select_option(f"[data-testid=measure-{identifier}-{order}]",
                                                    str(ids[(tp, identifier)])))
    _add_lesion(page, "non_target", "left lung")
    _saved(page, lambda: page.select_option("[data-testid=status-NT1-0]", "present"))
    _saved(page, lambda: page.select_option("[data-testid=status-NT1-1]", "absent"))
    if sees_new_lesion:
        _add_lesion(page, "new", "liver")
        _saved(page, lambda: page.select_option("[data-testid=measure-N1-1]", str(ids[("followup", "N1")])))

    page.wait_for_selector("p.ok")  # the live table: no rule broken
    assert page.inner_text("[data-testid=sum-0]") == "65 mm"
    assert page.inner_text("[data-testid=sum-1]") == "47 mm"
    assert page.inner_text("[data-testid=overall-1]") == ("PD" if sees_new_lesion else "SD")
    screenshot(page, f"trial-read-{user}")
    _saved(page, lambda: page.click("[data-testid=sign]"))
    page.wait_for_selector("[data-testid=read-status]:has-text('signed')")


def test_double_read_with_adjudication_dashboard_and_exports(context: Any, trial_site: dict[str, Any]) -> None:
    pages = []
    for user, sees in (("reader1", True), ("reader2", False)):
        page = _page(context.browser.new_context(viewport={"width": 1440, "height": 1000},
                                                 base_url=trial_site["url"]), user)
        _read(page, trial_site, user, sees_new_lesion=sees)
        pages.append(page)

    organizer = _page(context, "organizer")  # the demo's adjudicator
    organizer.goto("/projects/demo/trial/dashboard/")
    assert "needs adjudication" in organizer.inner_text("[data-testid=subjects]")
    organizer.click("[data-testid=subjects] a")
    organizer.wait_for_selector("[data-testid=state]")
    assert "follow-up 1" in organizer.inner_text(".adjudication")
    assert organizer.locator(".read-card").count() == 2
    screenshot(organizer, "trial-adjudicate")
    reader1_read = organizer.locator(".read-card").filter(has_text="reader1").get_attribute("data-read")
    organizer.check(f"input[name=read][value='{reader1_read}']")
    organizer.fill("#reason", "N1 is an unequivocal new liver lesion: PD.")
    organizer.click("[data-testid=decide]")
    organizer.wait_for_selector("[data-testid=decision]")
    assert organizer.inner_text("[data-testid=state]") == "adjudicated"

    organizer.goto("/projects/demo/trial/dashboard/")
    assert "adjudicated" in organizer.inner_text("[data-testid=subjects]")
    assert "0.0 %" in organizer.inner_text("[data-testid=agreement]")
    assert organizer.locator("svg.waterfall rect.bar[data-subject=S001]").count() == 1
    assert organizer.locator("svg.spider polyline[data-subject=S001]").count() == 1
    screenshot(organizer, "trial-dashboard")

    response = organizer.request.get("/api/trials/demo/export.csv")
    assert response.ok
    rows = list(csv.DictReader(io.StringIO(response.text())))
    chosen = {r["reader"] for r in rows if r["chosen"] == "yes"}
    assert chosen == {"reader1"}
    assert {r["overall_response"] for r in rows if r["timepoint"] == "follow-up 1"} == {"PD", "SD"}

    organizer.goto(f"/projects/demo/trial/reads/{reader1_read}/summary/")
    _saved(organizer, lambda: organizer.click("[data-testid=export-sr]"))
    organizer.wait_for_selector("[data-testid=sr-instances] li")
    assert organizer.locator("[data-testid=sr-instances] li").count() == 2
    screenshot(organizer, "trial-read-exported")

    token = trial_site["site"].token("organizer")
    study = trial_site["truth"]["followup"]["study_instance_uid"]
    qido = requests.get(f"{trial_site['url']}/projects/demo/dicomweb/studies/{study}/series",
                        params={"Modality": "SR"}, headers={"Authorization": f"Token {token}"}, timeout=30)
    assert qido.status_code == 200 and len(qido.json()) == 1

    for page in [*pages, organizer]:
        assert not page.js_errors, page.js_errors
    assert PASSWORDS and Path  # shared demo credentials
