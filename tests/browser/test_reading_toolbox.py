"""The reading toolbox in a real browser (issue 16): the window of an image without a stored window,
presets per body region and one's own presets, rotate and flip with marks on the anatomy, redo, and
the layouts up to 3x3."""

from __future__ import annotations

import json
import re
from typing import Any

import pydicom
import pytest
from playwright.sync_api import expect

from demo import corpus
from demo.phantom import phantom_lesions, uniform_regions
from tests.browser.conftest import login, screenshot
from tests.browser.test_viewer import go_to_slice, open_baseline, settled

pytestmark = [pytest.mark.browser, pytest.mark.live]

VIEWPORT = ".viewport[data-index='0']"

#: The standard deviation of the image's grey values (0-255) in the middle of CT_small, as acquired in
#: its auto window about 40; one flat grey after a window drag from 65535 wide (the bug) about 2.
VISIBLE_STD = 15


def image_std(page: Any, viewport: int = 0) -> float:
    """Standard deviation of the red channel over the middle half of the image on the canvas."""
    return page.evaluate("""(index) => {
        const vp = crossread.app.viewports[index];
        const [columns, rows] = vp.imageSize();
        const box = vp.canvas.getBoundingClientRect();
        const dpr = window.devicePixelRatio || 1;
        const [x0, y0] = vp.imageToClient(columns * 0.25, rows * 0.25);
        const [x1, y1] = vp.imageToClient(columns * 0.75, rows * 0.75);
        const left = Math.round((Math.min(x0, x1) - box.left) * dpr), top = Math.round((Math.min(y0, y1) - box.top) * dpr);
        const width = Math.round(Math.abs(x1 - x0) * dpr), height = Math.round(Math.abs(y1 - y0) * dpr);
        const data = vp.context.getImageData(left, top, width, height).data;
        let sum = 0, squares = 0, n = 0;
        for (let i = 0; i < data.length; i += 4) { sum += data[i]; squares += data[i] * data[i]; n += 1; }
        const mean = sum / n;
        return Math.sqrt(squares / n - mean * mean);
    }""", viewport)


def grey_at(page: Any, point: list[float], viewport: int = 0) -> float:
    """The mean red value of the 3x3 device pixels of the canvas where image point `point` is drawn."""
    return page.evaluate("""([index, x, y]) => {
        const vp = crossread.app.viewports[index];
        const box = vp.canvas.getBoundingClientRect();
        const dpr = window.devicePixelRatio || 1;
        const [cx, cy] = vp.imageToClient(x, y);
        const data = vp.context.getImageData(Math.round((cx - box.left) * dpr) - 1, Math.round((cy - box.top) * dpr) - 1, 3, 3).data;
        let sum = 0;
        for (let i = 0; i < data.length; i += 4) sum += data[i];
        return sum / 9;
    }""", [viewport, *point])


def new_mark(page: Any, known: list[Any], kind: str) -> dict[str, Any]:
    """The saved mark of `kind` that is not among the ids `known` (waits for the server's answer)."""
    found = page.wait_for_function("""([known, kind]) => crossread.annotations.all().find((m) => m.kind === kind
        && !m.pending && !known.includes(m.id))""", arg=[known, kind])
    return found.json_value()


def unfiltered(viewport: Any) -> None:
    """The server's render is on the canvas (no client preview filter left)."""
    settled(viewport)
    viewport.page.wait_for_function("(canvas) => !canvas.style.filter", arg=viewport.locator("canvas.image").element_handle())


def test_a_window_drag_on_an_image_without_a_stored_window_keeps_a_visible_image(page, demo_site):
    """CT_small declares no window: the corner says the window the server chose from its values
    ("auto"), not "W 65535 L -1025 (file)", and a 20-pixel right-drag starts from it."""
    ds = pydicom.dcmread(corpus.file("pydicom", "CT_small.dcm"), stop_before_pixels=True)
    assert "WindowCenter" not in ds
    login(page)
    page.goto(f"/projects/demo/studies/{ds.StudyInstanceUID}/")
    page.wait_for_selector("body[data-first-image][data-modes]")
    viewport = page.locator(VIEWPORT)
    unfiltered(viewport)
    corner = viewport.locator(".corner.bl")
    expect(corner).to_contain_text("(auto)")
    expect(corner).not_to_contain_text("65535")
    width = float(re.search(r"W (\d+)", corner.inner_text()).group(1))
    assert 1000 < width < 4000, corner.inner_text()  # CT_small's values span about 2,000 HU
    before = image_std(page)
    assert before > VISIBLE_STD, before
    box = viewport.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x + 20, y, steps=4)
    page.mouse.up(button="right")
    expect(corner).not_to_contain_text("(auto)")
    unfiltered(viewport)
    after_width = page.evaluate("crossread.app.viewports[0].window.width")
    assert after_width == pytest.approx(width * (1 + 20 / 300), rel=0.05)
    std = image_std(page)
    assert std > VISIBLE_STD, std
    screenshot(page, "viewer-auto-window-dragged")


def test_rotate_and_flip_keep_the_marks_on_the_anatomy(page, demo_site):
    """On a turned and mirrored view the picture, the orientation letters and a mark drawn on a lesion
    all agree: the mark is stored at the lesion's image coordinates; followers get the rotation."""
    lesion = next(item for item in phantom_lesions("baseline") if item["id"] == "T1")
    regions = {r["name"]: r for r in uniform_regions()}
    samples = [[regions[n]["centre_px"]["col"] + 0.5, regions[n]["centre_px"]["row"] + 0.5] for n in ("air", "subcutaneous_fat", "liver")]
    login(page, "reader2")
    viewport = open_baseline(page, demo_site)
    go_to_slice(page, viewport, lesion["instance_number"])
    unfiltered(viewport)
    page.evaluate("window.__vp = []; crossread.bus.on('viewport', (e) => window.__vp.push(e))")
    greys = [grey_at(page, p) for p in samples]
    assert greys[0] < 10 < greys[1] < greys[2] - 40, greys  # air, fat, liver: distinct greys
    expect(viewport.locator(".orient.right")).to_have_text("L")
    expect(viewport.locator(".orient.top")).to_have_text("A")
    a0, b0 = (page.evaluate("([x, y]) => crossread.app.viewports[0].imageToClient(x, y)", [p[0] + 0.5, p[1] + 0.5])
              for p in lesion["long_axis_endpoints_px"])
    assert abs(a0[1] - b0[1]) < 0.01 and b0[0] > a0[0]  # the lesion's long axis is horizontal, left to right

    viewport.focus()
    page.keyboard.press("o")  # 90 degrees clockwise
    page.keyboard.press("h")  # then mirrored left-right, as seen
    unfiltered(viewport)
    assert page.evaluate("[crossread.app.viewports[0].rotation, crossread.app.viewports[0].flipH]") == [90, True]
    # The patient's anterior (the image's top) is now on the right... mirrored: the image's top is on the right
    expect(viewport.locator(".orient.right")).to_have_text("P")
    expect(viewport.locator(".orient.left")).to_have_text("A")
    expect(viewport.locator(".orient.top")).to_have_text("R")
    expect(viewport.locator(".orient.bottom")).to_have_text("L")
    a, b = (page.evaluate("([x, y]) => crossread.app.viewports[0].imageToClient(x, y)", [p[0] + 0.5, p[1] + 0.5])
            for p in lesion["long_axis_endpoints_px"])
    assert abs(a[0] - b[0]) < 0.01 and b[1] > a[1]  # now vertical on screen, top to bottom
    # The picture turned with the transform: each tissue is drawn where the view says it is.
    assert [grey_at(page, p) for p in samples] == pytest.approx(greys, abs=6)
    screenshot(page, "viewer-rotated-flipped")

    # A length drawn on the turned view lands on the lesion's image coordinates (other tests of the
    # session may have left marks on this slice: the new one is the one looked at).
    known = page.evaluate("crossread.annotations.all().map((m) => m.id)")
    page.keyboard.press("l")
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=6)
    page.mouse.up()
    mark = new_mark(page, known, "length")
    for got, want in zip(mark["points"], lesion["long_axis_endpoints_px"], strict=True):
        assert got == pytest.approx([want[0] + 0.5, want[1] + 0.5], abs=0.05), mark["points"]
    assert abs(mark["measurements"]["length"] - lesion["long_axis_mm"]) <= 0.7
    expect(page.locator(f"#measurement-list .measurement[data-id='{mark['id']}']")).to_contain_text("mm")
    page.keyboard.press("Escape")
    screenshot(page, "viewer-rotated-length")
    page.wait_for_timeout(120)
    event = page.evaluate("window.__vp.at(-1)")
    assert (event["rotation"], event["flipH"], event["flipV"]) == (90, True, False)

    # Reset restores the view as acquired.
    page.keyboard.press("r")
    unfiltered(viewport)
    expect(viewport.locator(".orient.right")).to_have_text("L")
    assert page.evaluate("[crossread.app.viewports[0].rotation, crossread.app.viewports[0].flipH]") == [0, False]
    assert [grey_at(page, p) for p in samples] == pytest.approx(greys, abs=6)

    # A presenter's rotation is applied by a follower.
    page.evaluate("crossread.bus.emit('apply-viewport', {rotation: 270, flipV: true})")
    unfiltered(viewport)
    assert page.evaluate("[crossread.app.viewports[0].rotation, crossread.app.viewports[0].flipV]") == [270, True]
    assert [grey_at(page, p) for p in samples] == pytest.approx(greys, abs=6)

    # The site is shared by the session's tests: the mark on lesion T1 goes (test_viewer measures it too).
    deleted = page.evaluate("""async (id) => {
        const csrf = document.cookie.match(/csrftoken=([^;]+)/)[1];
        return (await fetch(`/api/projects/demo/annotations/${id}/`, {method: "DELETE", headers: {"X-CSRFToken": csrf}})).status;
    }""", mark["id"])
    assert deleted == 204, deleted


def test_redo_after_undo(page, demo_site):
    lesion = next(item for item in phantom_lesions("baseline") if item["id"] == "T2")
    login(page, "reader1")
    viewport = open_baseline(page, demo_site)
    go_to_slice(page, viewport, lesion["instance_number"])
    a, b = (page.evaluate("([x, y]) => crossread.app.viewports[0].imageToClient(x, y)", [p[0] + 0.5, p[1] + 0.5])
            for p in lesion["long_axis_endpoints_px"])
    lengths = page.locator("#measurement-list .measurement", has_text="Length")
    count = lengths.count()  # marks other tests of the session left on this slice
    known = page.evaluate("crossread.annotations.all().map((m) => m.id)")
    page.keyboard.press("l")
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=5)
    page.mouse.up()
    mark = new_mark(page, known, "length")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+z")
    expect(lengths).to_have_count(count)
    page.keyboard.press("Control+Shift+z")  # at once: the redo waits for its undo
    expect(lengths).to_have_count(count + 1)
    again = new_mark(page, known + [mark["id"]], "length")
    assert (again["points"], again["instance"]) == (mark["points"], mark["instance"])
    page.keyboard.press("Control+z")  # the re-created mark is undone again
    expect(lengths).to_have_count(count)
    page.keyboard.press("Control+y")
    expect(lengths).to_have_count(count + 1)
    new_mark(page, known + [mark["id"], again["id"]], "length")
    # On the server: the mark, once.
    marks = page.evaluate("""(study) => fetch(`/api/projects/demo/annotations/?study=${study}`).then((r) => r.json())""",
                          demo_site["truth"]["studies"]["baseline"]["study_instance_uid"])
    mine = [m for m in marks["annotations"] if m["kind"] == "length" and m["points"] == mark["points"]]
    assert len(mine) == 1
    page.keyboard.press("Control+y")
    expect(page.locator("#toasts")).to_contain_text("Nothing to redo")


def test_presets_follow_the_body_region_and_a_reader_keeps_their_own(page, demo_site):
    login(page, "reader1")
    viewport = open_baseline(page, demo_site)  # the phantom: BodyPartExamined CHEST
    viewport.focus()
    page.keyboard.press("1")
    expect(viewport.locator(".corner.bl")).to_contain_text("W 400 L 50")  # soft tissue, not the brain
    expect(page.locator("#preset")).to_have_value("ct-soft-tissue")
    page.keyboard.press("2")
    expect(page.locator("#preset")).to_have_value("ct-lung")
    page.keyboard.press("0")  # the tenth preset
    tenth = page.evaluate("crossread.app.presetsFor('CT')[9]")
    expect(viewport.locator(".corner.bl")).to_contain_text(f"W {tenth['width']} L {tenth['center']}")
    page.keyboard.press("Shift+0")
    expect(viewport.locator(".corner.bl")).to_contain_text("(file)")
    groups = page.evaluate("[...document.querySelectorAll('#preset optgroup')].map((g) => [g.label, g.children.length])")
    assert sum(n for _, n in groups) == 10 and groups[0][0] == "CT · Body", groups

    # My own preset: the current window, added from the dialog; first on key 1 from then on.
    page.evaluate("crossread.app.viewports[0].setWindow({center: -550, width: 1700})")
    page.click("[data-action='presets']")
    dialog = page.locator("dialog#my-presets")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#my-presets-current")).to_contain_text("CT · W 1700 L -550")
    dialog.locator("#my-preset-name").fill("Lung wide")
    dialog.locator("#my-presets-add button[type=submit]").click()
    expect(dialog.locator("#my-preset-list li[data-id]")).to_have_count(1)
    page.evaluate("crossread.app.viewports[0].setWindow({center: 70, width: 120})")
    dialog.locator("#my-preset-name").fill("Liver narrow")
    dialog.locator("#my-presets-add button[type=submit]").click()
    expect(dialog.locator("#my-preset-list li[data-id]")).to_have_count(2)
    dialog.locator("#my-preset-list li").nth(1).get_by_role("button", name="Move up: Liver narrow").click()
    expect(dialog.locator("#my-preset-list li").first.locator("input")).to_have_value("Liver narrow")
    rename = dialog.locator("#my-preset-list li").nth(1).locator("input")
    rename.fill("Lung, wide")
    rename.press("Tab")
    expect(page.locator("#preset optgroup[label='My presets'] option").nth(1)).to_contain_text("Lung, wide")
    screenshot(page, "viewer-my-presets")
    dialog.get_by_role("button", name="Close").click()
    page.keyboard.press("Shift+0")
    viewport.focus()
    page.keyboard.press("1")
    expect(viewport.locator(".corner.bl")).to_contain_text("W 120 L 70")
    page.keyboard.press("3")
    expect(page.locator("#preset")).to_have_value("ct-soft-tissue")
    # Stored on the server, for this user, in this order, whatever the project.
    mine = page.evaluate("fetch('/api/me/presets/').then((r) => r.json())")["presets"]
    assert [(p["label"], p["center"], p["width"]) for p in mine] == [("Liver narrow", 70, 120), ("Lung, wide", -550, 1700)]
    page.reload()
    page.wait_for_selector("body[data-first-image][data-modes]")
    expect(page.locator("#preset optgroup[label='My presets'] option")).to_have_count(2)
    page.click("[data-action='presets']")
    page.locator("#my-preset-list li").first.get_by_role("button", name="Delete: Liver narrow").click()
    expect(page.locator("#my-preset-list li[data-id]")).to_have_count(1)
    assert json.dumps(page.evaluate("fetch('/api/me/presets/').then((r) => r.json())")["presets"]).count("label") == 1


def test_layouts_up_to_3x3_are_remembered_per_modality_and_stay_linked(page, demo_site):
    login(page, "reader2")
    viewport = open_baseline(page, demo_site)
    page.click("#layout-menu-button")
    expect(page.locator("#layout-menu")).to_be_visible()
    screenshot(page, "viewer-layout-menu")
    page.click("[data-layout-choice='3x3']")
    visible = page.locator(".viewport:not([hidden])")
    expect(visible).to_have_count(9)
    for i in range(9):
        settled(visible.nth(i))
    page.wait_for_selector("body[data-linking=ready]")
    screenshot(page, "viewer-layout-3x3")
    # Linked scrolling reaches the viewports of the other study among the nine.
    other = page.evaluate("""() => crossread.app.viewports.filter((v) => !v.root.hidden && v.stack
        && v.stack.study !== crossread.app.viewports[0].stack.study).map((v) => v.index)""")
    assert other, "a study of the same patient is among the nine"
    viewport.focus()
    for _ in range(5):
        page.keyboard.press("ArrowDown")
    expect(page.locator(f".viewport[data-index='{other[0]}']")).not_to_have_attribute("data-target-index", "0")
    # Remembered for CT in this browser: the study opens in 3x3 again.
    page.reload()
    page.wait_for_selector("body[data-first-image][data-modes]")
    expect(page.locator(".viewport:not([hidden])")).to_have_count(9)
    page.click("#layout-menu-button")
    page.click("[data-layout-choice='1x3']")
    expect(page.locator(".viewport:not([hidden])")).to_have_count(3)
    assert page.evaluate("localStorage.getItem('crossread.layout.CT')") == "1x3"
    for name, count in (("2x1", 2), ("2x3", 6), ("1x2", 2), ("2x2", 4), ("1x1", 1)):
        page.click("#layout-menu-button")
        page.click(f"[data-layout-choice='{name}']")
        expect(page.locator(".viewport:not([hidden])")).to_have_count(count)
        expect(page.locator("#viewports")).to_have_class(re.compile(f"layout-{name}"))
