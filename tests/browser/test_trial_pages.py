"""The trial's pages as deployed (DJANGO_DEBUG=0; the static files collected and served by the server,
crossread.staticfiles): after both reads of the demo subject are signed and disagree, the worklist, read,
adjudication and dashboard pages show no "null" or "None", states in words ("needs adjudication"),
and the Overall column's cells under its heading. The members page offers "viewer" to a new member."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, PASSWORDS, screenshot
from tests.browser.trial_flow import demo_trial_site, sign_read

pytestmark = [pytest.mark.browser, pytest.mark.live,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"needs chromium at {CHROMIUM}")]


@pytest.fixture(scope="module")
def signed_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("trial-pages")
    site, url, truth = demo_trial_site(root, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="trial-pages-" + "k" * 50,
                                       DJANGO_ALLOWED_HOSTS="127.0.0.1")
    sign_read(url, site.token("reader1"), truth, sees_new_lesion=True)
    sign_read(url, site.token("reader2"), truth, sees_new_lesion=False)  # misses N1: they disagree
    try:
        yield {"site": site, "url": url}
    finally:
        site.stop()


def _page(browser: Any, site: dict[str, Any], user: str) -> Any:
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=site["url"])
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    page.goto("/accounts/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    return page


def _clean(page: Any, name: str) -> str:
    text = page.inner_text("body")
    for bad in ("null", "None", "undefined", "needsadjudication", "needs_adjudication", "non_target", "too_small"):
        assert bad not in text, f"{name}: {bad!r} in the page"
    screenshot(page, f"trial-pages-{name}")
    return text


def _overall_aligned(page: Any, table: str) -> None:
    """Each row's Overall cell lies under the heading's Overall cell."""
    column = page.evaluate("""(selector) => [...document.querySelectorAll(selector)].map((table) => {
        const heads = [...table.querySelectorAll('thead th')];
        const at = heads.findIndex((th) => th.textContent.trim() === 'Overall');
        const head = heads[at].getBoundingClientRect();
        return [...table.querySelectorAll('tbody tr')].map((tr) => {
            const cell = tr.children[at].getBoundingClientRect();
            return [head.left, head.right, cell.left, cell.right];
        });
    })""", table)
    rows = [row for t in column for row in t]
    assert rows
    for head_left, head_right, left, right in rows:
        assert abs(head_left - left) < 1 and abs(head_right - right) < 1, rows


def test_the_trial_pages_speak_in_words_without_null(browser: Any, signed_site: dict[str, Any]) -> None:
    reader = _page(browser, signed_site, "reader1")
    reader.goto("/projects/demo/trial/")
    _clean(reader, "worklist-reader1")
    reader.click("[data-testid=worklist] tbody a")  # the read opens in the viewer; its summary page:
    reader.wait_for_url("**/reads/*/**")
    reader.goto(reader.url.split("?")[0].rstrip("/") + "/summary/")
    reader.wait_for_selector("[data-testid=recist] tbody tr")
    text = _clean(reader, "read-reader1")
    assert "Signed" in text
    _overall_aligned(reader, "table.recist")

    organizer = _page(browser, signed_site, "organizer")
    organizer.goto("/projects/demo/trial/")
    assert "needs adjudication" in _clean(organizer, "worklist-organizer")
    organizer.goto("/projects/demo/trial/dashboard/")
    text = _clean(organizer, "dashboard")
    assert "needs adjudication" in text and "No final reads yet" in text
    badge = organizer.locator("[data-testid=subjects] .state").first
    assert badge.bounding_box()["height"] < 30  # one line
    organizer.click("[data-testid=subjects] a")
    organizer.wait_for_selector("[data-testid=state]")
    assert organizer.inner_text("[data-testid=state]") == "needs adjudication"
    _clean(organizer, "adjudicate")
    _overall_aligned(organizer, "table.recist")
    organizer.goto("/projects/demo/members/")
    assert organizer.locator("#new-role").input_value() == "viewer"
    for page in (reader, organizer):
        assert not page.js_errors, page.js_errors
        page.context.close()
