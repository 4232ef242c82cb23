"""Two readers in two browser contexts on the real viewer: a length drawn by one appears for the other
without a reload, with the drawer's cursor; in a blinded session the other sees neither; a label edited
reaches the other; in the MPR layout, a length drawn on a coronal plane, its draft and the cursor reach
the other reader's coronal plane."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.collab.conftest import open_reader

pytestmark = [pytest.mark.browser, pytest.mark.live]


def draw_length(page: Any, start: list[float], end: list[float], steps: int) -> tuple[list[float], list[float]]:
    """A length from ``start`` to ``end`` (image pixels) on the first viewport; their client coordinates."""
    page.locator(".viewport[data-index='0']").focus()
    page.keyboard.press("l")
    (x0, y0), (x1, y1) = (page.evaluate("([x, y]) => crossread.app.viewports[0].imageToClient(x, y)", p)
                          for p in (start, end))
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=steps)
    page.mouse.up()
    return [x0, y0], [x1, y1]


@pytest.mark.parametrize("mode, visible", [("open", True), ("blinded", False)])
def test_reader2_sees_reader1_draw_live_unless_blinded(browser: Any, live_demo: dict[str, Any], mode: str, visible: bool) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    one = open_reader(browser, live_demo, "reader1", errors, mode)
    two = open_reader(browser, live_demo, "reader2", errors, mode)
    try:
        expect(two.locator("#collab-panel li[data-user='reader1'].online")).to_have_count(1)
        _, (x1, y1) = draw_length(one, [40, 40], [90, 70], steps=8)
        one.mouse.move(x1 - 20, y1 - 10, steps=5)  # a cursor the other reader may see
        mine = one.locator(".viewport[data-index='0'] svg.overlay g.annotation.length")
        expect(mine).to_have_count(1)
        expect(one.locator("#measurement-list .measurement", has_text="Length")).not_to_contain_text("saving")
        theirs = two.locator(".viewport[data-index='0'] svg.overlay g.annotation.length")
        cursor = two.locator(".viewport[data-index='0'] svg.overlay g.remote-cursor")
        if visible:
            expect(theirs).to_have_count(1)
            one.mouse.move(300, 300, steps=4)
            one.mouse.move(320, 310, steps=4)
            expect(cursor).not_to_have_count(0)
        else:
            two.wait_for_timeout(1500)
            expect(theirs).to_have_count(0)
            expect(cursor).to_have_count(0)
        two.screenshot(path=str(demo_path(f"collab-{mode}-reader2.png")))
    finally:
        one.context.close()
        two.context.close()
    assert not errors, errors


def demo_path(name: str) -> Any:
    from tests.live import REPO

    folder = REPO / "test-artifacts" / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_a_label_edited_by_double_click_reaches_the_other_reader_live(browser: Any, live_demo: dict[str, Any]) -> None:
    """Reader1 names their length after drawing it (double-click, type, Enter): the session's
    `annotation.update` carries the version, and reader2 sees the new label without a reload."""
    from playwright.sync_api import expect

    errors: list[str] = []
    one = open_reader(browser, live_demo, "reader1", errors)
    two = open_reader(browser, live_demo, "reader2", errors)
    try:
        before = set(one.evaluate("crossread.annotations.all().map(a => a.id)"))
        (x0, y0), (x1, y1) = draw_length(one, [60, 100], [110, 100], steps=6)
        one.wait_for_function("(before) => crossread.annotations.all().some(a => !a.pending && !before.includes(a.id))",
                              arg=list(before))
        mark = next(i for i in one.evaluate("crossread.annotations.all().map(a => a.id)") if i not in before)
        theirs = two.locator(f".viewport[data-index='0'] svg.overlay g.annotation[data-id='{mark}'] text")
        expect(theirs).to_have_count(1)
        one.mouse.dblclick((x0 + x1) / 2, y0)
        expect(one.locator("#label-editor")).to_be_visible()
        one.keyboard.type("T2 lung")
        one.keyboard.press("Enter")
        expect(theirs).to_contain_text("T2 lung")
        assert two.evaluate("(id) => crossread.annotations.get(id).version", mark) == 2
    finally:
        one.context.close()
        two.context.close()
    assert not errors, errors


def enter_mpr(page: Any) -> None:
    from playwright.sync_api import expect

    page.keyboard.press("Shift+Digit4")
    expect(page.locator("body")).to_have_attribute("data-mpr", "on")
    for index in range(3):
        expect(page.locator(f".viewport[data-index='{index}']")).not_to_have_class(re.compile(r"\bloading\b"))


def test_a_length_on_a_coronal_plane_reaches_the_other_reader_in_mpr(browser: Any, live_demo: dict[str, Any]) -> None:
    """Both readers in MPR on the session's CT series: reader1's draft on the coronal plane shows on
    reader2's coronal plane while it is drawn, then the length, measured by the server in mm at the
    plane's square pixels, with the same value on both; and reader1's cursor on the plane. Nothing
    on the other planes, no "Not saved"."""
    from playwright.sync_api import expect

    errors: list[str] = []
    one = open_reader(browser, live_demo, "reader1", errors)
    two = open_reader(browser, live_demo, "reader2", errors)
    try:
        expect(two.locator("#collab-panel li[data-user='reader1'].online")).to_have_count(1)
        enter_mpr(one)
        enter_mpr(two)
        series = one.evaluate("crossread.app.viewports[2].stack.series")
        assert two.evaluate("crossread.app.viewports[2].stack.series") == series
        index = one.evaluate("crossread.app.viewports[2].target")
        two.evaluate(f"crossread.app.viewports[2].setIndex({index})")
        expect(two.locator(".viewport[data-index='2'] .slice-label")).to_have_text(re.compile(rf"^Im {index + 1}/"))
        before = set(one.evaluate("crossread.annotations.all().map(a => a.id)"))

        one.keyboard.press("v")
        one.locator(".viewport[data-index='2']").click()
        one.keyboard.press("l")
        columns, rows = one.evaluate("[crossread.app.viewports[2].item.columns, crossread.app.viewports[2].item.rows]")
        ends = [[columns * 0.3, rows * 0.25], [columns * 0.65, rows * 0.75]]
        (x0, y0), (x1, y1) = (one.evaluate("([x, y]) => crossread.app.viewports[2].imageToClient(x, y)", p) for p in ends)
        one.mouse.move(x0, y0)
        one.mouse.down()
        one.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=6)
        one.mouse.move(x1, y1, steps=6)
        # the draft on reader2's coronal plane (and on no other plane) while reader1 still holds the button
        expect(two.locator(".viewport[data-index='2'] svg.overlay g.remote-draft")).to_have_count(1)
        expect(two.locator(".viewport[data-index='0'] svg.overlay g.remote-draft")).to_have_count(0)
        one.mouse.up()
        one.wait_for_function("(before) => crossread.annotations.all().some(a => !a.pending && !before.includes(a.id))",
                              arg=list(before))
        mark = one.evaluate("(before) => crossread.annotations.all().find(a => !before.includes(a.id))", list(before))
        assert mark["plane"]["series"] == series and mark["plane"]["plane"] == "coronal" and mark["plane"]["index"] == index
        assert mark["measurements"]["unit"] == "mm" and mark["measurements"]["length"] > 0
        expect(one.locator("#toasts")).not_to_contain_text("Not saved")

        theirs = two.locator(f".viewport[data-index='2'] svg.overlay g.annotation.length[data-id='{mark['id']}']")
        expect(theirs).to_have_count(1)
        expect(theirs).to_contain_text(f"{mark['measurements']['length']:.1f} mm")
        two.wait_for_function("(id) => crossread.annotations.get(id) && !crossread.annotations.get(id).pending", arg=mark["id"])
        seen = two.evaluate("(id) => crossread.annotations.get(id)", mark["id"])
        assert seen["measurements"] == mark["measurements"] and seen["plane"] == mark["plane"]
        expect(two.locator(".viewport[data-index='2'] svg.overlay g.remote-draft")).to_have_count(0)
        for other in (0, 1):
            expect(two.locator(f".viewport[data-index='{other}'] svg.overlay [data-id='{mark['id']}']")).to_have_count(0)

        # reader1's pointer on the coronal plane: a cursor on reader2's coronal plane
        one.mouse.move(x1 - 30, y1 - 20, steps=4)
        one.mouse.move(x1 - 40, y1 - 25, steps=4)
        expect(two.locator(".viewport[data-index='2'] svg.overlay g.remote-cursor")).not_to_have_count(0)
        two.screenshot(path=str(demo_path("collab-mpr-reader2.png")))
    finally:
        one.context.close()
        two.context.close()
    assert not errors, errors


def test_an_angle_is_seen_by_the_other_reader_as_it_is_drawn(browser: Any, live_demo: dict[str, Any]) -> None:
    """Reader1 draws an angle in two steps: reader2 sees the draft's first arm, then both arms and the
    arc while the second follows the pointer, then the stored angle with its value."""
    from playwright.sync_api import expect

    errors: list[str] = []
    one = open_reader(browser, live_demo, "reader1", errors)
    two = open_reader(browser, live_demo, "reader2", errors)
    try:
        expect(two.locator("#collab-panel li[data-user='reader1'].online")).to_have_count(1)
        one.locator(".viewport[data-index='0']").focus()
        one.keyboard.press("n")
        at = [one.evaluate("([x, y]) => crossread.app.viewports[0].imageToClient(x, y)", p)
              for p in ([300, 100], [120, 220], [330, 300])]
        one.mouse.move(*at[0])
        one.mouse.down()
        one.mouse.move(*at[1], steps=6)
        draft = two.locator(".viewport[data-index='0'] svg.overlay g.remote-draft")
        expect(draft.locator("path.shape")).to_have_count(1)
        expect(draft.locator("path.arc")).to_have_count(0)  # the first arm only
        one.mouse.up()
        one.mouse.move(*at[2], steps=6)
        expect(draft.locator("path.arc")).to_have_count(1)  # the second arm follows the pointer
        one.mouse.down()
        one.mouse.up()
        theirs = two.locator(".viewport[data-index='0'] svg.overlay g.annotation.angle")
        expect(theirs).to_have_count(1)
        expect(theirs.locator(".measure-text")).to_contain_text("°")
        expect(draft).to_have_count(0)
        value = one.evaluate("crossread.annotations.all().find((a) => a.kind === 'angle').measurements.angle")
        expect(theirs.locator(".measure-text")).to_have_text(f"{value:.1f}°")
        two.screenshot(path=str(demo_path("collab-angle-reader2.png")))
    finally:
        one.context.close()
        two.context.close()
    assert not errors, errors
