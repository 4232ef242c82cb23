"""A trial read is a viewer mode: the phantom subject of the demo trial read from the trial worklist to the
signed read without leaving the viewer page (issue 14's acceptance).

reader1 opens the trial from the home page, then the read: the viewer with the read's panel. At baseline
they draw a bidirectional on each of T1, T2, T3 (the node's short axis dragged to its size) and NT1, naming
each in the panel; at follow-up (hung beside the baseline, linked) "go to" each lesion brings both
viewports to it and the next bidirectional is its measurement; NT1 is absent; N1 is drawn and named a new
lesion. The panel's RECIST table (computed by the server) reads 65 -> 47 mm, SD for the targets, PD overall
by the new lesion; signing locks the read. The user's actions (clicks, drags, keys) are counted per lesion
and time point and printed; slice navigation (PageDown and arrow keys) is counted apart.
"""

from __future__ import annotations

import math
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, login
from tests.browser.test_trial_read import trial_site  # noqa: F401 - the module's site: the demo trial on a 128x128 phantom

pytestmark = [pytest.mark.browser, pytest.mark.live,
              pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"needs chromium at {CHROMIUM}")]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SPACING = 358.4 / 128  # mm per pixel of the 128x128 phantom


class Actions:
    """The user's actions, counted per (time point, lesion): clicks, drags, keys; navigation apart."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.where = ("", "")

    def at(self, timepoint: str, lesion: str) -> Actions:
        self.where = (timepoint, lesion)
        return self

    def click(self, selector: str) -> None:
        self.counts[self.where]["clicks"] += 1
        self.page.click(selector)

    def key(self, key: str, navigation: bool = False) -> None:
        self.counts[self.where]["navigation keys" if navigation else "keys"] += 1
        self.page.keyboard.press(key)

    def drag(self, viewport: int, start: list[float], end: list[float], *, measuring: bool = True) -> None:
        self.counts[self.where]["drags (the measurement)" if measuring else "drags (adjusting)"] += 1
        to_client = "([v, x, y]) => crossread.app.viewports[v].imageToClient(x, y)"
        x0, y0 = self.page.evaluate(to_client, [viewport, *start])
        x1, y1 = self.page.evaluate(to_client, [viewport, *end])
        self.page.mouse.move(x0, y0)
        self.page.mouse.down()
        self.page.mouse.move(x1, y1, steps=6)
        self.page.mouse.up()

    def report(self) -> str:
        lines = ["actions per time point and lesion (besides the measuring drag):"]
        for (timepoint, lesion), kinds in self.counts.items():
            besides = sum(n for kind, n in kinds.items() if kind not in ("drags (the measurement)", "navigation keys"))
            detail = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
            lines.append(f"  {timepoint:10} {lesion:8} {besides} ({detail})")
        return "\n".join(lines)


def lesion(site: dict[str, Any], timepoint: str, lesion_id: str) -> dict[str, Any]:
    return next(x for x in site["truth"][timepoint]["lesions"] if x["id"] == lesion_id)


def navigate(actions: Actions, page: Any, viewport: int, index: int) -> None:
    """PageDown/PageUp, then arrows, from the slice shown to slice `index` (0-based) of `viewport`."""
    page.evaluate("v => crossread.app.activate(crossread.app.viewports[v])", viewport)
    now = page.evaluate("v => crossread.app.viewports[v].target", viewport)
    step = 10
    while abs(index - now) >= step:
        actions.key("PageDown" if index > now else "PageUp", navigation=True)
        now += step if index > now else -step
    while now != index:
        actions.key("ArrowDown" if index > now else "ArrowUp", navigation=True)
        now += 1 if index > now else -1
    page.wait_for_function("([v, i]) => crossread.app.viewports[v].shown && crossread.app.viewports[v].shown.index === i", arg=[viewport, index])


def node_short_axis(truth: dict[str, Any]) -> tuple[list[float], list[float]]:
    """The short-axis handle of the bidirectional drawn along the node's long axis (the tool puts it at half
    the long axis, a quarter each side), and where it goes so that the short axis has the node's size."""
    (ax, ay), (bx, by) = truth["long_axis_endpoints_px"]
    length = math.hypot(bx - ax, by - ay)
    nx, ny = -(by - ay) / length, (bx - ax) / length
    cx, cy = (ax + bx) / 2, (ay + by) / 2
    wanted = truth["short_axis_mm"] / SPACING - length / 4
    return [cx + nx * length / 4, cy + ny * length / 4], [cx + nx * wanted, cy + ny * wanted]


def wait_for_lesion(page: Any, identifier: str, text: str) -> None:
    expect(page.locator(f"[data-testid=now-{identifier}]")).to_contain_text(text)


def test_a_read_from_the_worklist_to_the_signed_read_in_the_viewer(browser: Any, trial_site: dict[str, Any]) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 1600, "height": 900}, base_url=trial_site["url"])
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    responses: list[Any] = []
    page.on("response", lambda response: responses.append((response, _body(response))))  # every response the read's pages load
    login(page, "reader1")
    actions = Actions(page)

    # home -> the trial's worklist -> the read: the viewer with the read's panel
    actions.at("open", "").click("[data-testid=trial-link]")
    actions.click("[data-testid=worklist] a")
    page.wait_for_selector("body[data-read-panel=ready][data-modes=ready][data-first-image]")
    read_url = page.url
    assert "/trial/reads/" in read_url and "/studies/" not in read_url
    expect(page.locator(".viewport[data-index='0'] .corner.tl")).to_contain_text("Subject S001")
    assert "Phantom" not in page.inner_text(".viewport[data-index='0'] .corner.tl")
    assert page.evaluate("crossread.app.layout") == "1x1"
    assert page.evaluate("crossread.app.tool") == "bidirectional"
    html = page.request.get(read_url).text()  # the page and its start-up data: the subject, not the patient
    for identifying in ("Phantom", "PHANTOM-001", "20240108", "20240304", "2024-01-08", "2024-03-04"):
        assert identifying not in html, identifying

    # baseline: three targets and a non-target, each drawn then named in the panel
    base = "baseline"
    for identifier, chips in (("T1", ["liver"]), ("T2", ["lung"]), ("T3", ["lymph-node"]), ("NT1", ["role-non_target", "lung"])):
        truth = lesion(trial_site, base, identifier)
        navigate(actions.at(base, identifier), page, 0, truth["slice_index"])
        actions.drag(0, *truth["long_axis_endpoints_px"])
        page.wait_for_selector("[data-testid=name-mark]")
        if identifier == "T3":  # a node's RECIST diameter is its short axis: drag the short axis to its size
            page.wait_for_selector(".viewport[data-index='0'] .annotation.selected .handle[data-handle='3']")
            actions.drag(0, *node_short_axis(truth), measuring=False)
            page.wait_for_function("() => !crossread.annotations.all().some((a) => a.pending)")
        for chip in chips:
            actions.click(f"[data-testid=name-mark-{chip if chip.startswith('role') else 'organ-' + chip}]")
        wait_for_lesion(page, identifier, "present" if identifier == "NT1" else " mm")
    expect(page.locator("[data-testid=sum-0]")).to_have_text("65")
    expect(page.locator("[data-testid=sum-1]")).to_have_text("not complete")
    assert "null" not in page.inner_text("#read-panel")
    # the marks on this slice are labelled with their lesions' names
    expect(page.locator(".viewport[data-index='0'] .annotation text").filter(has_text="NT1")).to_have_count(1)
    expect(page.locator(".viewport[data-index='0'] .annotation text").filter(has_text="T3")).to_have_count(1)
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "trial-read-baseline.png"))

    # follow-up: hung beside the baseline, linked; go to each lesion, then draw its measurement
    follow = "followup"
    actions.at(follow, "").click("[data-testid=tp-1]")
    page.wait_for_function("() => crossread.app.layout === '1x2' && document.body.dataset.linked === 'on'")
    for identifier in ("T1", "T2", "T3"):
        truth = lesion(trial_site, follow, identifier)
        actions.at(follow, identifier).click(f"[data-testid=lesion-{identifier}]")
        page.wait_for_function("s => document.body.dataset.wentTo && document.body.dataset.wentTo.startsWith(s)", arg=f"{identifier}|")
        # both viewports at the lesion's level (the baseline shows its mark, the follow-up follows it)
        page.wait_for_function("i => crossread.app.viewports.slice(0, 2).every((v) => v.shown && v.shown.index === i)", arg=truth["slice_index"])
        actions.drag(0, *truth["long_axis_endpoints_px"])
        if identifier == "T3":
            wait_for_lesion(page, identifier, " mm")
            page.wait_for_selector(".viewport[data-index='0'] .annotation.selected .handle[data-handle='3']")
            actions.drag(0, *node_short_axis(truth), measuring=False)
            wait_for_lesion(page, identifier, f"× {truth['short_axis_mm']:.1f} mm")
        wait_for_lesion(page, identifier, f"{truth['long_axis_mm']:.1f} ×")
    actions.at(follow, "NT1").click("[data-testid=lesion-NT1]")
    actions.click("[data-testid=status-NT1-absent]")
    wait_for_lesion(page, "NT1", "absent")
    truth = lesion(trial_site, follow, "N1")
    navigate(actions.at(follow, "N1"), page, 0, truth["slice_index"])
    actions.drag(0, *truth["long_axis_endpoints_px"])
    actions.click("[data-testid=name-mark-organ-liver]")  # a new lesion, the default role at a follow-up
    wait_for_lesion(page, "N1", " mm")

    expect(page.locator("[data-testid=sum-1]")).to_have_text("47")
    expect(page.locator("[data-testid=target-1]")).to_have_text("SD")
    expect(page.locator("[data-testid=nontarget-1]")).to_have_text("CR")
    expect(page.locator("[data-testid=overall-1]")).to_have_text("PD")
    expect(page.locator("[data-testid=complete]")).to_be_visible()
    assert "null" not in page.inner_text("#read-panel") and "undefined" not in page.inner_text("#read-panel")
    page.locator("[data-testid=lesion-T1]").click()  # (looking, not counted): the screenshot shows T1 on both
    page.wait_for_function("() => document.body.dataset.wentTo.startsWith('T1|')")
    page.wait_for_timeout(400)
    page.screenshot(path=str(DOCS / "trial-read-followup.png"))

    actions.at("sign", "").click("[data-testid=sign]")
    actions.click("[data-testid=sign-confirm]")
    expect(page.locator("[data-testid=read-status]")).to_have_text("signed")
    assert page.url == read_url  # never left the viewer page
    assert page.evaluate("crossread.app.canWrite") is False
    print("\n" + actions.report())

    # the reader aligns the two studies by hand (linking off, the baseline two slices on, link): the
    # registration is remembered for the read
    page.evaluate("crossread.app.activate(crossread.app.viewports[1])")
    before = page.evaluate("crossread.app.viewports[1].shown.index")
    page.keyboard.press("k")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    # (the link takes the slices on screen: wait until the second step is shown, as a reader would)
    page.wait_for_function("(i) => Math.abs(crossread.app.viewports[1].shown.index - i) === 2", arg=before)
    page.keyboard.press("Shift+K")
    offset = page.wait_for_function("() => { const r = crossread.app.linking.registrations(); return r.length && Math.abs(r[0].offset[2]) > 1 && r[0].offset; }").json_value()
    assert abs(abs(offset[2]) - 5.0) < 1e-6  # two slices of 2.5 mm

    # the signed read opens read-only, every mark on its slice; go to a lesion still works
    page.reload()
    page.wait_for_selector("body[data-read-panel=ready][data-modes=ready]")
    expect(page.locator("[data-testid=read-only]")).to_be_visible()
    assert page.locator("[data-tool=bidirectional]").is_disabled()
    page.locator("[data-testid=lesion-N1]").click()
    page.wait_for_function("() => document.body.dataset.wentTo && document.body.dataset.wentTo.startsWith('N1|')")
    expect(page.locator(".viewport[data-index='0'] .annotation text").filter(has_text="N1")).to_have_count(1)
    page.locator("[data-testid=history-T1-0]").click()  # a key image: T1 at baseline, on its slice
    page.wait_for_function("i => crossread.app.viewports.some((v) => !v.root.hidden && v.shown && v.shown.index === i)",
                           arg=lesion(trial_site, base, "T1")["slice_index"])
    page.wait_for_function("() => crossread.app.linking && crossread.app.linking.registrations().length")
    assert page.evaluate("crossread.app.linking.registrations()[0].offset") == offset

    # the read's summary: a key image opens the read in the viewer on the lesion's slice
    page.click("text=Summary")
    page.wait_for_selector("[data-testid=recist]")
    page.locator("tr[data-lesion=T1] a[href*='lesion=']").first.click()
    page.wait_for_function("() => document.body.dataset.wentTo && document.body.dataset.wentTo.startsWith('T1|')")
    assert page.evaluate("document.body.dataset.wentTo").endswith(f"|{lesion(trial_site, base, 'T1')['slice_index']}")
    # the reading toolbox in the read: the tag browser answers masked as WADO-RS metadata (its response is
    # scanned below with the others), the measurement table lists the read's marks, and the project's
    # exports are not offered for a read's marks
    page.locator(".viewport[data-index='0']").focus()
    page.keyboard.press("Shift+D")
    tags = page.locator("dialog.tag-browser")
    expect(tags).to_have_attribute("data-state", "ready")
    expect(tags.locator(".tag-row[data-tag='(0010,0010)'] .tag-value")).to_have_text("S001")
    expect(tags.locator(".tag-row[data-tag='(0008,0020)']")).to_have_count(0)  # no study date
    tags.locator("button.close").click()
    page.keyboard.press("Shift+M")
    table = page.locator("dialog.measurement-table")
    expect(table.locator("tbody tr", has_text="Bidirectional")).not_to_have_count(0)
    expect(table.locator("button[data-export='csv']")).to_be_disabled()
    assert "null" not in table.inner_text() and "undefined" not in table.inner_text()
    _assert_nothing_identifies_the_patient(responses)
    context.close()
    assert not errors, errors


#: What the phantom's files say of the patient and the visits (demo/phantom.py): none of it may reach a
#: blinded reader, in any response (the page, its data, DICOM JSON, scripts), in any form.
IDENTIFYING = ("Phantom^Synthetic", "Phantom Synthetic", "PHANTOM-001", "20240108", "20240304", "2024-01-08",
               "2024-03-04", "08/01/2024", "04/03/2024", "Jan 8, 2024", "Mar 4, 2024", "SYNTHETIC phantom CT",
               "follow-up 8 weeks")


def _body(response: Any) -> str | None:
    """The response's text, read as it arrives (the browser forgets a page's bodies once it navigates)."""
    if response.status in (204, 304) or 300 <= response.status < 400:
        return None
    if response.headers.get("content-type", "").startswith(("image/", "font/")):
        return None  # rendered pixels: no text
    try:
        return response.body().decode("latin-1")
    except Exception:  # (a response the browser no longer holds: an aborted one)
        return None


def _assert_nothing_identifies_the_patient(responses: list[tuple[Any, str | None]]) -> None:
    looked = 0
    for response, body in responses:
        if body is None:
            continue
        looked += 1
        for identifying in IDENTIFYING:
            assert identifying not in body, (identifying, response.url)
    assert looked > 20, looked  # the pages, scripts, the read's data and DICOM JSON were looked into
