"""The adjudication on the images (issue 14): the demo trial's phantom subject, read by reader1 and reader2 through
the REST API (tests/browser/trial_flow.py: reader2 misses the new liver lesion N1, so the reads disagree at
follow-up 1), adjudicated by the organizer (the demo's adjudicator) in the viewer.

From the adjudication page the organizer opens the reads on the images: two viewports, reader A's read on the
left and reader B's on the right, the same time point (follow-up 1, where they differ), linked. Each viewport's
marks are its reader's, labelled with their lesions' names (the SVG text of the overlay). "Go to" A's N1 brings
both viewports to its slice: N1 on the left, nothing on the right; "go to" B's T1 brings both to T1, labelled on
both sides. The organizer chooses reader A's read with a reason and the subject is adjudicated. Reader A's read,
opened alone in the viewer, is read-only and shows its marks.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, login
from tests.browser.trial_flow import demo_trial_site, sign_read

pytestmark = [pytest.mark.browser, pytest.mark.live,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"needs chromium at {CHROMIUM}")]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def disagreeing_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo trial on a 128x128 phantom, both reads signed and disagreeing."""
    site, url, truth = demo_trial_site(tmp_path_factory.mktemp("adjudication-site"))
    reads = {"reader1": sign_read(url, site.token("reader1"), truth, sees_new_lesion=True),
             "reader2": sign_read(url, site.token("reader2"), truth, sees_new_lesion=False)}
    try:
        yield {"site": site, "url": url, "truth": truth, "reads": reads}
    finally:
        site.stop()


def _lesion(site: dict[str, Any], timepoint: str, lesion_id: str) -> dict[str, Any]:
    return next(x for x in site["truth"][timepoint]["lesions"] if x["id"] == lesion_id)


def _labels(page: Any, viewport: int) -> list[str]:
    """The first line of each mark's text in the viewport's overlay: the lesions' names."""
    return page.eval_on_selector_all(
        f".viewport[data-index='{viewport}'] svg.overlay .annotation text",
        "(texts) => texts.map((t) => t.querySelector('tspan').textContent)")


def test_the_adjudicator_compares_both_reads_on_the_images_and_chooses_one(browser: Any, disagreeing_site: dict[str, Any]) -> None:
    site = disagreeing_site
    context = browser.new_context(viewport={"width": 1600, "height": 900}, base_url=site["url"])
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login(page, "organizer")

    # the dashboard -> the adjudication page -> the reads on the images
    page.goto("/projects/demo/trial/dashboard/")
    page.click("[data-testid=subjects] a:has-text('open')")
    page.wait_for_selector("[data-testid=state]")
    page.click("[data-testid=on-images]")
    page.wait_for_selector("body[data-adjudication-panel=ready][data-modes=ready][data-first-image]")
    assert "/adjudicate/images/" in page.url
    assert page.evaluate("crossread.app.layout") == "1x2"
    assert page.evaluate("crossread.app.canWrite") is False
    # the same series (follow-up 1, where the reads differ) on both sides, linked
    series = page.evaluate("crossread.app.viewports.slice(0, 2).map((v) => v.stack && v.stack.series)")
    assert series[0] and series[0] == series[1]
    assert page.evaluate("crossread.app.outlines.find((o) => o.study === crossread.app.viewports[0].stack.study).label") == "follow-up 1"
    page.wait_for_function("() => document.body.dataset.linked === 'on'")
    expect(page.locator("[data-testid=compare-1]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("[data-testid=verdict-1]")).to_have_text("differ")
    expect(page.locator("[data-testid=compare-1]")).to_contain_text("A PD")
    expect(page.locator("[data-testid=compare-1]")).to_contain_text("B SD")
    expect(page.locator("[data-testid=verdict-best]")).to_have_text("differ")
    expect(page.locator("[data-testid=side-badge-A]")).to_contain_text("Reader A")
    expect(page.locator("[data-testid=side-badge-B]")).to_contain_text("Reader B")
    # each reader's RECIST table side by side
    expect(page.locator("[data-testid=overall-A-1]")).to_have_text("PD")
    expect(page.locator("[data-testid=overall-B-1]")).to_have_text("SD")

    # go to reader A's new lesion: both viewports at its slice; N1 on A's side only
    n1 = _lesion(site, "followup", "N1")
    page.click("[data-testid=lesion-A-N1]")
    page.wait_for_function("() => (document.body.dataset.wentTo || '').startsWith('A|N1|')")
    page.wait_for_function("i => crossread.app.viewports.slice(0, 2).every((v) => v.shown && v.shown.index === i)", arg=n1["slice_index"])
    expect(page.locator(".viewport[data-index='0'] .annotation text").filter(has_text="N1")).to_have_count(1)
    assert "N1" not in _labels(page, 1)
    page.wait_for_timeout(300)
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "trial-adjudicate-images.png"))

    # go to reader B's T1: both at its slice, T1 labelled on both sides, each side its own reader's mark
    t1 = _lesion(site, "followup", "T1")
    page.click("[data-testid=lesion-B-T1]")
    page.wait_for_function("() => (document.body.dataset.wentTo || '').startsWith('B|T1|')")
    page.wait_for_function("i => crossread.app.viewports.slice(0, 2).every((v) => v.shown && v.shown.index === i)", arg=t1["slice_index"])
    expect(page.locator(".viewport[data-index='1'] .annotation text").filter(has_text="T1")).to_have_count(1)
    expect(page.locator(".viewport[data-index='0'] .annotation text").filter(has_text="T1")).to_have_count(1)
    page.wait_for_timeout(300)
    page.screenshot(path=str(DOCS / "trial-adjudicate-images-t1.png"))
    reads = {side: page.eval_on_selector_all(f".viewport[data-index='{i}'] svg.overlay .annotation",
                                             "(groups) => groups.map((g) => crossread.annotations.get(Number(g.dataset.id)).read)")
             for i, side in enumerate("AB")}
    assert set(reads["A"]) == {site["reads"]["reader1"]} and set(reads["B"]) == {site["reads"]["reader2"]}
    # linked scrolling: a step on one side moves the other
    page.evaluate("crossread.app.activate(crossread.app.viewports[1])")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("i => crossread.app.viewports[0].target === i + 1", arg=t1["slice_index"])
    assert "null" not in page.inner_text("#adjudication-panel") and "undefined" not in page.inner_text("#adjudication-panel")

    # the baseline, where both agree on the lesions: shown on both sides
    page.click("[data-testid=compare-0]")
    page.wait_for_function("() => crossread.app.viewports.slice(0, 2).every((v) => crossread.app.outlines.find((o) => o.study === v.stack.study).label === 'baseline')")
    assert page.evaluate("crossread.app.viewports[0].stack.series === crossread.app.viewports[1].stack.series")
    page.click("[data-testid=lesion-A-T1]")  # A's T1 at the baseline: 30 mm, labelled on both sides
    page.wait_for_function("() => (document.body.dataset.wentTo || '').startsWith('A|T1|')")
    page.wait_for_function("i => crossread.app.viewports.slice(0, 2).every((v) => v.shown && v.shown.index === i)",
                           arg=_lesion(site, "baseline", "T1")["slice_index"])
    for viewport in (0, 1):
        expect(page.locator(f".viewport[data-index='{viewport}'] .annotation text").filter(has_text="L 30.0")).to_have_count(1)

    # the choice, with a reason
    page.click("[data-testid=choose-A]")
    page.fill("[data-testid=reason]", "N1 is an unequivocal new liver lesion: PD.")
    page.click("[data-testid=decide]")
    expect(page.locator("[data-testid=decision]")).to_contain_text("Reader A's read chosen by organizer")
    expect(page.locator("[data-testid=state]")).to_have_text("adjudicated")
    page.goto("/projects/demo/trial/dashboard/")
    assert "adjudicated" in page.inner_text("[data-testid=subjects]")

    # reader A's read alone in the viewer: read-only, its marks on their slices
    page.goto(f"/projects/demo/trial/reads/{site['reads']['reader1']}/")
    page.wait_for_selector("body[data-read-panel=ready][data-modes=ready]")
    expect(page.locator("[data-testid=read-only]")).to_be_visible()
    assert page.locator("[data-tool=bidirectional]").is_disabled()
    assert page.evaluate("crossread.app.canWrite") is False
    page.locator("[data-testid=lesion-N1]").click()
    page.wait_for_function("() => (document.body.dataset.wentTo || '').startsWith('N1|')")
    expect(page.locator(".viewport[data-index='0'] .annotation text").filter(has_text="N1")).to_have_count(1)
    context.close()
    assert not errors, errors
