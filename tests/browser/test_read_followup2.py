"""The read in the viewer with a third time point, and a trial that measures non-nodal targets by length.

The demo trial's subject gets a follow-up 2 (the phantom's follow-up again, a copy under new UIDs dated 8
weeks later: ``trial_flow.later_study``), and the trial is created with ``targets_by_length``.

- reader2 opens the read at follow-up 2: follow-up 2 in the first viewport, follow-up 1 beside it, linked;
  "Beside" brings the baseline beside it, linked too.
- reader1 measures T1 with a length in one gesture (the toolbar's length tool, drawn, named with an organ chip;
  at the follow-ups the lesion's button and the length offered next to the bidirectional): the RECIST sums are
  the lengths (30, then 21 mm: PR). A length named a lymph node is refused in words.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, login
from tests.browser.test_read_viewer import Actions, lesion, navigate, wait_for_lesion
from tests.browser.trial_flow import demo_trial_site

pytestmark = [pytest.mark.browser, pytest.mark.live,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"needs chromium at {CHROMIUM}")]

SHOTS = Path("/tmp")


@pytest.fixture(scope="module")
def site3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo trial on a 128x128 phantom with three time points, non-nodal targets measured by length."""
    root = tmp_path_factory.mktemp("trial-site-fu2")
    site, url, truth = demo_trial_site(root, follow_up_2=True, targets_by_length=True)
    try:
        yield {"site": site, "url": url, "truth": truth}
    finally:
        site.stop()


@pytest.fixture
def context(browser: Any, site3: dict[str, Any]) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1600, "height": 900}, base_url=site3["url"])
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


def _open_read(context: Any, user: str) -> tuple[Any, list[str], str, dict[str, Any]]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login(page, user)
    page.goto("/projects/demo/trial/")
    href = page.locator("[data-testid=worklist] a").first.get_attribute("href")
    read_id = href.rstrip("/").split("/")[-1]
    data = page.request.get(f"/api/trials/demo/reads/{read_id}/").json()
    return page, errors, href, data


def _studies(page: Any) -> list[str]:
    return page.evaluate("crossread.app.viewports.filter((v) => !v.root.hidden).map((v) => v.stack && v.stack.study)")


def _linked_to(page: Any, index: int) -> None:
    """Every viewport on screen shows slice `index` (the one scrolled, and those linked to it)."""
    page.wait_for_function(
        "i => crossread.app.viewports.filter((v) => !v.root.hidden).every((v) => v.shown && v.shown.index === i)", arg=index)


def test_follow_up_2_hangs_beside_follow_up_1_with_the_baseline_one_click_away(context: Any, site3: dict[str, Any]) -> None:
    truth = site3["truth"]
    page, errors, href, data = _open_read(context, "reader2")
    assert [tp["label"] for tp in data["timepoints"]] == ["baseline", "follow-up 1", "follow-up 2"]
    base, fu1, fu2 = (tp["id"] for tp in data["timepoints"])
    assert [tp["day"] for tp in data["timepoints"]] == [0, 56, 112]
    page.goto(f"{href}?timepoint={fu2}")
    page.wait_for_selector("body[data-read-panel=ready][data-modes=ready][data-first-image]")

    # follow-up 2 in the first viewport, follow-up 1 beside it, linked
    page.wait_for_function("() => crossread.app.layout === '1x2' && document.body.dataset.linked === 'on'")
    assert page.evaluate("document.body.dataset.hanging") == f"{fu2}|{fu1}"
    page.wait_for_function("n => crossread.app.viewports.slice(0, 2).every((v) => v.stack) ", arg=2)
    assert _studies(page) == [truth["followup2"]["study_instance_uid"], truth["followup"]["study_instance_uid"]]
    expect(page.locator(".viewport[data-index='0'] .corner.tl")).to_contain_text("follow-up 2")
    expect(page.locator(".viewport[data-index='1'] .corner.tl")).to_contain_text("follow-up 1")
    expect(page.locator("[data-testid=tp-2]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("[data-testid=beside-1]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("[data-testid=beside-0]")).to_have_attribute("aria-pressed", "false")
    actions = Actions(page)
    t1 = lesion(site3, "followup2", "T1")
    navigate(actions, page, 0, t1["slice_index"])
    _linked_to(page, t1["slice_index"])  # follow-up 1 followed, by position
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "trial-read-followup2.png"))

    # "Beside": the baseline beside follow-up 2, linked
    page.click("[data-testid=beside-0]")
    page.wait_for_function("s => document.body.dataset.hanging === s", arg=f"{fu2}|{base}")
    page.wait_for_function("s => crossread.app.viewports[1].stack && crossread.app.viewports[1].stack.study === s",
                           arg=truth["baseline"]["study_instance_uid"])
    assert _studies(page) == [truth["followup2"]["study_instance_uid"], truth["baseline"]["study_instance_uid"]]
    expect(page.locator(".viewport[data-index='1'] .corner.tl")).to_contain_text("baseline")
    expect(page.locator("[data-testid=beside-0]")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("document.body.dataset.linked") == "on"
    t2 = lesion(site3, "followup2", "T2")
    navigate(actions, page, 0, t2["slice_index"])
    _linked_to(page, t2["slice_index"])
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "trial-read-followup2-beside-baseline.png"))
    # and back: follow-up 1 beside it again
    page.click("[data-testid=beside-1]")
    page.wait_for_function("s => document.body.dataset.hanging === s", arg=f"{fu2}|{fu1}")
    page.wait_for_function("s => crossread.app.viewports[1].stack && crossread.app.viewports[1].stack.study === s",
                           arg=truth["followup"]["study_instance_uid"])
    assert not errors, errors


def test_a_non_nodal_target_measured_with_a_length_in_one_gesture(context: Any, site3: dict[str, Any]) -> None:
    page, errors, href, data = _open_read(context, "reader1")
    assert data["targets_by_length"] is True
    page.goto(href)
    page.wait_for_selector("body[data-read-panel=ready][data-modes=ready][data-first-image]")
    actions = Actions(page)

    # baseline: the length tool, drawn along T1, named with the liver chip: T1 measured, 30 mm
    truth = lesion(site3, "baseline", "T1")
    actions.at("baseline", "T1").click("[data-tool=length]")
    navigate(actions, page, 0, truth["slice_index"])
    actions.drag(0, *truth["long_axis_endpoints_px"])
    page.wait_for_selector("[data-testid=name-mark]")
    actions.click("[data-testid=name-mark-organ-liver]")
    wait_for_lesion(page, "T1", "30.0 mm")
    assert "×" not in page.inner_text("[data-testid=now-T1]")
    expect(page.locator("[data-testid=sum-0]")).to_have_text("30")
    expect(page.locator(".viewport[data-index='0'] .annotation text").filter(has_text="T1")).to_have_count(1)

    # a length named a lymph node: refused in words, the mark waits to be named or discarded
    node = lesion(site3, "baseline", "T3")
    navigate(actions.at("baseline", "T3"), page, 0, node["slice_index"])
    actions.drag(0, *node["long_axis_endpoints_px"])
    page.wait_for_selector("[data-testid=name-mark]")
    actions.click("[data-testid=name-mark-organ-lymph-node]")
    expect(page.locator("[data-testid=errors]")).to_contain_text(
        "A lymph node target is measured with the bidirectional tool: its RECIST diameter is the short axis.")
    page.locator("[data-testid=name-mark] button", has_text="Discard").click()
    page.wait_for_function("() => !document.querySelector('[data-testid=name-mark]')")
    page.wait_for_function("() => crossread.annotations.all().length === 1")

    # follow-up 1: with the bidirectional on, T1's button offers the length beside it; drawn: 21 mm, PR
    follow = lesion(site3, "followup", "T1")
    actions.at("follow-up 1", "T1").click("[data-testid=tp-1]")
    page.wait_for_function("() => crossread.app.layout === '1x2' && document.body.dataset.linked === 'on'")
    page.keyboard.press("b")
    actions.click("[data-testid=lesion-T1]")
    page.wait_for_function("s => document.body.dataset.wentTo && document.body.dataset.wentTo.startsWith(s)", arg="T1|")
    expect(page.locator("[data-testid=armed]")).to_contain_text("the next bidirectional or length is its measurement")
    expect(page.locator("[data-testid=armed-tool-bidirectional]")).to_have_attribute("aria-pressed", "true")
    actions.click("[data-testid=armed-tool-length]")
    expect(page.locator("[data-testid=armed-tool-length]")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("crossread.app.tool") == "length"
    _linked_to(page, follow["slice_index"])
    actions.drag(0, *follow["long_axis_endpoints_px"])
    wait_for_lesion(page, "T1", "21.0 mm")
    expect(page.locator("[data-testid=sum-1]")).to_have_text("21")
    expect(page.locator("[data-testid=target-1]")).to_have_text("PR")  # 21 <= 0.7 x 30: the sum is the lengths'
    expect(page.locator("[data-testid=history-T1-0]")).to_have_text("BL 30.0")

    # follow-up 2: hung beside follow-up 1; T1's button, the length still on: one click and the drag
    fu2 = lesion(site3, "followup2", "T1")
    actions.at("follow-up 2", "T1").click("[data-testid=tp-2]")
    page.wait_for_function("() => document.body.dataset.hanging && document.body.dataset.hanging.endsWith(`|${crossread.app.readPanel.ui.read.timepoints[1].id}`)")
    actions.click("[data-testid=lesion-T1]")
    page.wait_for_function("s => document.body.dataset.wentTo && document.body.dataset.wentTo.startsWith(s)", arg="T1|")
    _linked_to(page, fu2["slice_index"])
    # both centred on T1, follow-up 2 hung a moment before too
    (ax, ay), (bx, by) = fu2["long_axis_endpoints_px"]
    centres = page.evaluate("crossread.app.viewports.slice(0, 2).map((v) => v.centre)")
    for x, y in centres:
        assert abs(x - (ax + bx) / 2) < 1.5 and abs(y - (ay + by) / 2) < 1.5, centres
    actions.drag(0, *fu2["long_axis_endpoints_px"])
    wait_for_lesion(page, "T1", "21.0 mm")
    expect(page.locator("[data-testid=sum-2]")).to_have_text("21")
    expect(page.locator(".viewport[data-index='0'] .annotation text").filter(has_text="T1")).to_have_count(1)
    expect(page.locator(".viewport[data-index='1'] .annotation text").filter(has_text="T1")).to_have_count(1)
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "trial-read-length.png"))
    print("\n" + actions.report())
    assert "null" not in page.inner_text("#read-panel") and "undefined" not in page.inner_text("#read-panel")
    assert not errors, errors
