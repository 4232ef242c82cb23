"""The MPR layout in a real browser, on the phantom baseline (docs/phantom.md): three viewports of
server-reformatted planes, scrolling, crosshairs on a lesion moving all three to it, a length on a
coronal plane measuring the lesion in mm, an ellipse on a sagittal plane, the window shared, a series
that cannot be reformatted, leaving MPR, and the viewport events followers apply."""

from __future__ import annotations

import io
import re
import shutil
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from demo.phantom import phantom_lesions
from tests.browser.conftest import login, screenshot
from tests.live import REPO

pytestmark = [pytest.mark.browser, pytest.mark.live]

PS, SLICE = 0.7, 2.5  # the 512 x 512, 120-slice phantom: x = -179.2 + 0.7 col, y = -179.2 + 0.7 row, slice i at z = -2.5 i
PLANES = ("axial", "sagittal", "coronal")


def label(page: Any, index: int) -> Any:
    return page.locator(f".viewport[data-index='{index}'] .slice-label")


def settled(page: Any, index: int) -> None:
    expect(page.locator(f".viewport[data-index='{index}']")).not_to_have_class(re.compile(r"\bloading\b"))


def expected_indices(point: list[float]) -> dict[str, int]:
    """The planes through a patient point (docs/rendering.md): axial/k is the k-th slice from the most
    inferior (z = -297.5), sagittal/c column c, coronal/r row r of the axial slices."""
    x, y, z = point
    return {"axial": round((z + 297.5) / SLICE), "sagittal": round((x + 179.2) / PS), "coronal": round((y + 179.2) / PS)}


def open_mpr(page: Any, demo_site: dict[str, Any]) -> str:
    login(page)
    study = demo_site["truth"]["studies"]["baseline"]
    page.goto(f"/projects/demo/studies/{study['study_instance_uid']}/")
    page.wait_for_selector("body[data-first-image][data-modes][data-linking]")
    page.keyboard.press("Shift+Digit4")
    expect(page.locator("body")).to_have_attribute("data-mpr", "on")
    expect(page.locator("button[data-action='mpr']")).to_have_attribute("aria-pressed", "true")
    for index, plane in enumerate(PLANES):
        expect(page.locator(f".viewport[data-index='{index}'] .corner.tr")).to_contain_text(f"{plane.capitalize()} MPR")
    for index in range(3):
        settled(page, index)
    return study["series_instance_uid"] if "series_instance_uid" in study else page.evaluate("crossread.app.viewports[0].stack.series")


def not_blank(page: Any, index: int) -> float:
    """The standard deviation of the canvas' pixels in the middle of the viewport (0 for a black square)."""
    return page.evaluate("""(i) => {
      const canvas = crossread.app.viewports[i].canvas;
      const ctx = canvas.getContext('2d');
      const w = Math.floor(canvas.width / 2), h = Math.floor(canvas.height / 2);
      const data = ctx.getImageData(Math.floor(w / 2), Math.floor(h / 2), w, h).data;
      let sum = 0, sum2 = 0, n = 0;
      for (let k = 0; k < data.length; k += 4) { sum += data[k]; sum2 += data[k] * data[k]; n += 1; }
      const mean = sum / n;
      return Math.sqrt(sum2 / n - mean * mean);
    }""", index)


def test_mpr_layout_scrolling_crosshairs_and_measurements_on_the_phantom(page, demo_site):
    series = open_mpr(page, demo_site)
    # Three images, not black squares; sizes as the server reformats: axial 512 x 512, sagittal and
    # coronal 512 wide and round(119 x 2.5 / 0.7) + 1 = 426 high.
    for index in range(3):
        assert not_blank(page, index) > 10, index
    sizes = page.evaluate("crossread.app.viewports.slice(0, 3).map((v) => [v.shown.bitmap.width, v.shown.bitmap.height])")
    assert sizes == [[512, 512], [512, 426], [512, 426]]
    # Through the slice on screen before (InstanceNumber 1, z = 0: the last axial plane) and the centre of its image.
    expect(label(page, 0)).to_have_text("Im 120/120")
    expect(label(page, 1)).to_have_text("Im 257/512")
    expect(label(page, 2)).to_have_text("Im 257/512")
    screenshot(page, "mpr-layout")
    page.screenshot(path="/tmp/mpr-layout.png")

    # Scrolling the sagittal: keys and the wheel move through its index; the others stay.
    sagittal = page.locator(".viewport[data-index='1']")
    sagittal.click()
    for _ in range(5):
        page.keyboard.press("ArrowDown")
    expect(label(page, 1)).to_have_text("Im 262/512")
    box = sagittal.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 100)
    expect(label(page, 1)).to_have_text("Im 263/512")
    expect(label(page, 0)).to_have_text("Im 120/120")
    settled(page, 1)
    assert not_blank(page, 1) > 10
    # The sagittal (active) is drawn as a reference line on the axial (vertical, at its column
    # 262 + 0.5) and the coronal.
    line = page.locator(".viewport[data-index='0'] svg.overlay line.reference-line.current")
    expect(line).to_have_count(1)
    expect(page.locator(".viewport[data-index='2'] svg.overlay line.reference-line.current")).to_have_count(1)

    # The window is shared: a preset on one plane applies to all three.
    page.keyboard.press("Shift+0")  # as acquired
    page.evaluate("crossread.app.viewports[1].setWindow({center: 45, width: 120})")
    windows = page.evaluate("crossread.app.viewports.slice(0, 3).map((v) => v.window)")
    assert windows == [{"center": 45, "width": 120}] * 3

    # Crosshairs on the liver lesion T1 on the axial plane through it: the sagittal and coronal go to it.
    lesion = next(item for item in phantom_lesions("baseline") if item["id"] == "T1")
    expected = expected_indices(lesion["centre_mm"])
    assert expected == {"axial": 29, "sagittal": 135, "coronal": 256}
    coronal = page.locator(".viewport[data-index='2']")
    coronal.click()
    page.keyboard.press("Home")  # the coronal elsewhere first, so that all three have to move
    expect(label(page, 2)).to_have_text("Im 1/512")
    axial = page.locator(".viewport[data-index='0']")
    axial.click()
    for _ in range(9):
        page.keyboard.press("PageUp")
    expect(label(page, 0)).to_have_text(f"Im {expected['axial'] + 1}/120")
    page.keyboard.press("c")
    col, row = lesion["centre_px"]["col"] + 0.5, lesion["centre_px"]["row"] + 0.5
    x, y = page.evaluate("([x, y]) => crossread.app.viewports[0].imageToClient(x, y)", [col, row])
    page.mouse.click(x, y)
    point = page.evaluate("crossread.app.linking.crosshair.point")
    assert all(abs(a - b) <= 0.36 for a, b in zip(point, lesion["centre_mm"], strict=True)), point
    assert expected_indices(point) == expected
    for index, plane in enumerate(PLANES):
        expect(label(page, index)).to_have_text(re.compile(rf"^Im {expected[plane] + 1}/"))
    shown = page.evaluate("crossread.app.viewports.slice(0, 3).map((v) => v.target)")
    assert shown == [expected[p] for p in PLANES]
    # Each marks the point: on the sagittal at column (y + 179.2) / 0.7 + 0.5, row -z / 0.7 + 0.5; on
    # the coronal at column (x + 179.2) / 0.7 + 0.5, the same row.
    px, py, pz = point
    marks = {0: ((px + 179.2) / PS + 0.5, (py + 179.2) / PS + 0.5), 1: ((py + 179.2) / PS + 0.5, -pz / PS + 0.5),
             2: ((px + 179.2) / PS + 0.5, -pz / PS + 0.5)}
    for index, (mx, my) in marks.items():
        mark = page.locator(f".viewport[data-index='{index}'] svg.overlay .crosshair")
        expect(mark).to_have_count(1)
        assert abs(float(mark.get_attribute("data-x")) - mx) < 0.02 and abs(float(mark.get_attribute("data-y")) - my) < 0.02, index
    for index in range(3):
        settled(page, index)
    page.screenshot(path="/tmp/mpr-crosshair.png")

    # A length on the coronal plane through the lesion, across it from top to bottom (along the
    # resliced axis): its edges found in the plane's own pixels (narrow window between lesion, 30 HU,
    # and liver, 60 HU), then measured by the server in mm. The slices sample the 30 mm sphere every
    # 2.5 mm: those at z = -210 and -240 touch it in a point, so the lesion spans the 11 slices from
    # -212.5 to -237.5 and its edges show half-way to the next ones (linear interpolation): 27.5 mm,
    # the true 30 mm within a slice spacing and a pixel.
    png = page.request.get(f"/projects/demo/series/{series}/mpr/coronal/{expected['coronal']}",
                           params={"window": "45,60", "accept": "image/png"})
    assert png.ok and png.headers["x-crossread-plane"] == f"coronal {expected['coronal']} of 512"
    image = np.asarray(Image.open(io.BytesIO(png.body())), dtype=float)
    column = lesion["centre_px"]["col"]
    profile = image[:, column - 1 : column + 2].mean(axis=1)
    profile = np.convolve(profile, np.ones(3) / 3, mode="same")
    centre_row = int(round(-lesion["centre_mm"][2] / PS))
    top = centre_row
    while profile[top - 1] < 127.5:
        top -= 1
    bottom = centre_row
    while profile[bottom + 1] < 127.5:
        bottom += 1
    ends = [[column + 0.5, float(top)], [column + 0.5, float(bottom + 1)]]  # the edges of the lesion's pixels
    SAMPLED = lesion["diameter_mm"] - SLICE
    assert abs((bottom + 1 - top) * PS - SAMPLED) <= PS + 0.01, (top, bottom)
    page.keyboard.press("v")  # (a click with the crosshair tool would move the crosshairs)
    coronal.click()
    page.keyboard.press("l")
    (x0, y0), (x1, y1) = (page.evaluate("([x, y]) => crossread.app.viewports[2].imageToClient(x, y)", p) for p in ends)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=3)
    page.mouse.move(x1, y1, steps=3)
    page.mouse.up()
    saved = page.locator(".viewport[data-index='2'] svg.overlay [data-id]:not([data-id^='local'])")
    expect(saved).to_have_count(1)
    created = page.evaluate("crossread.annotations.all().find((a) => a.plane && a.plane.plane === 'coronal')")
    assert created["plane"]["series"] == series and created["plane"]["index"] == expected["coronal"]
    assert created["plane"]["pixel_spacing"] == pytest.approx([PS, PS])
    assert created["measurements"]["unit"] == "mm"
    assert abs(created["measurements"]["length"] - SAMPLED) <= 1.0, created["measurements"]
    assert abs(created["measurements"]["length"] - lesion["diameter_mm"]) <= SLICE + PS, created["measurements"]
    # square pixels at 0.7 mm: the rows between the ends times 0.7 (the drag lands within a screen pixel)
    assert abs(created["measurements"]["length"] - (bottom + 1 - top) * PS) <= 1.0, created["measurements"]
    expect(page.locator("#measurement-list")).to_contain_text(f"{created['measurements']['length']:.1f} mm")
    # An ellipse inside the lesion on the sagittal plane: its mean in HU, from the reformatted values.
    page.keyboard.press("v")
    sagittal.click()
    page.keyboard.press("e")
    cx, cy = marks[1]
    (x0, y0), (x1, y1) = (page.evaluate("([x, y]) => crossread.app.viewports[1].imageToClient(x, y)", p)
                          for p in ([cx - 8, cy - 8], [cx + 8, cy + 8]))
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()
    expect(page.locator(".viewport[data-index='1'] svg.overlay [data-id]:not([data-id^='local'])")).to_have_count(1)
    ellipse = page.evaluate("crossread.annotations.all().find((a) => a.plane && a.plane.plane === 'sagittal')")
    assert abs(ellipse["measurements"]["stats"]["mean"] - lesion["expected_hu"]) <= 5, ellipse["measurements"]
    # Other planes do not show them; the marks are drawn on their plane only.
    expect(page.locator(".viewport[data-index='0'] svg.overlay [data-id]")).to_have_count(0)
    page.keyboard.press("Escape")
    for index in range(3):
        settled(page, index)
    page.screenshot(path="/tmp/mpr-measurements.png")
    shot = screenshot(page, "mpr-measurements")
    shutil.copy(shot, REPO / "docs" / "screenshots" / "viewer-mpr.png")

    # After a reload, back in MPR, the marks are on their planes again.
    page.reload()
    page.wait_for_selector("body[data-first-image][data-modes][data-linking]")
    page.keyboard.press("Shift+Digit4")
    expect(page.locator("body")).to_have_attribute("data-mpr", "on")
    page.evaluate("crossread.app.viewports[2].setIndex(%d)" % expected["coronal"])
    expect(page.locator(".viewport[data-index='2'] svg.overlay [data-id]")).to_have_count(1)

    # Leaving MPR restores the layout before it (1x1, the series at its slice).
    page.keyboard.press("Shift+Digit4")
    expect(page.locator("body")).to_have_attribute("data-mpr", "off")
    expect(page.locator(".viewport[data-index='1']")).to_be_hidden()
    expect(page.locator(".viewport[data-index='0'] .corner.tr")).not_to_contain_text("MPR")
    expect(label(page, 0)).to_have_text("Im 1/120")


def test_viewport_events_carry_the_planes_and_followers_apply_them(page, demo_site):
    series = open_mpr(page, demo_site)
    page.evaluate("window.seen = []; crossread.bus.on('viewport', (v) => window.seen.push(v))")
    page.locator(".viewport[data-index='1']").click()
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => seen.some((v) => v.mpr && v.mpr.plane === 'sagittal' && v.mpr.sagittal === 257)")
    sent = page.evaluate("seen.filter((v) => v.mpr && v.mpr.plane === 'sagittal').pop()")
    assert sent["mpr"] == {"series": series, "plane": "sagittal", "axial": 119, "sagittal": 257, "coronal": 256}
    assert sent["series"] == series and sent["instance"] is None
    # The pointer and a draft on a plane name the plane, not an instance (a session sends them so);
    # others' cursors and drafts on a plane are drawn on that plane only.
    page.evaluate("""() => { window.cursors = []; window.drafts = [];
        crossread.bus.on('cursor', (c) => cursors.push(c)); crossread.bus.on('annotation.draft', (d) => drafts.push(d)); }""")
    coronal = {"series": series, "plane": "coronal", "index": 256}
    x, y = page.evaluate("() => crossread.app.viewports[2].imageToClient(200.5, 100.5)")
    page.mouse.move(x - 5, y - 5)  # (one move alone may fall within the cursor's 33 ms)
    page.mouse.move(x, y, steps=3)
    # (the steps on the way send cursors too: wait for the one where the pointer came to rest)
    cursor = page.wait_for_function(
        "() => cursors.find((c) => c.plane && Math.abs(c.x - 200.5) < 0.6 && Math.abs(c.y - 100.5) < 0.6)").json_value()
    assert cursor["plane"] == coronal and cursor["instance"] is None
    page.keyboard.press("l")
    page.mouse.down()
    page.mouse.move(x + 60, y + 40, steps=4)
    draft = page.wait_for_function("() => drafts.length && drafts.at(-1).plane && drafts.at(-1)").json_value()
    assert draft["plane"] == coronal and draft["kind"] == "length" and "instance" not in draft
    page.keyboard.press("Escape")
    page.mouse.up()
    page.keyboard.press("v")
    page.evaluate("""(plane) => {
        crossread.bus.emit('remote-cursors', {cursors: [{user: 'reader2', colour: '#f5a623', plane, x: 300, y: 100}]});
        crossread.bus.emit('remote-draft', {user: 'reader2', colour: '#f5a623', plane, kind: 'length', points: [[10, 10], [200, 200]]});
    }""", coronal)
    for index, count in ((0, 0), (1, 0), (2, 1)):
        expect(page.locator(f".viewport[data-index='{index}'] svg.overlay g.remote-cursor")).to_have_count(count)
        expect(page.locator(f".viewport[data-index='{index}'] svg.overlay g.remote-draft")).to_have_count(count)
    page.evaluate("""() => { crossread.bus.emit('remote-cursors', {cursors: []}); crossread.bus.emit('remote-draft-clear', {user: 'reader2'}); }""")
    # A presenter's planes and crosshair (the lymph node T3 at (0, 4.9, -75)).
    frame = page.evaluate("crossread.app.viewports[0].meta.frameOfReference")
    page.evaluate("""([series, frame]) => crossread.bus.emit('apply-viewport', {series, window: {center: 40, width: 400},
        crosshair: {frameOfReference: frame, point: [0, 4.9, -75]},
        mpr: {series, plane: 'coronal', axial: 89, sagittal: 256, coronal: 263}})""", [series, frame])
    for index, text in ((0, "Im 90/120"), (1, "Im 257/512"), (2, "Im 264/512")):
        expect(label(page, index)).to_have_text(text)
    expect(page.locator(".viewport[data-index='2']")).to_have_class(re.compile(r"\bactive\b"))
    expect(page.locator("svg.overlay .crosshair")).to_have_count(3)
    # The presenter leaves MPR: so does the follower.
    page.evaluate("crossread.bus.emit('apply-viewport', {mpr: null, crosshair: null})")
    expect(page.locator("body")).to_have_attribute("data-mpr", "off")


def test_a_series_that_cannot_be_reformatted_says_why(page, demo_site):
    login(page)
    studies = page.request.get("/projects/demo/dicomweb/studies", params={"ModalitiesInStudy": "MR"}).json()
    single = next(s for s in studies if s["00201208"]["Value"][0] == 1)
    page.goto(f"/projects/demo/studies/{single['0020000D']['Value'][0]}/")
    page.wait_for_selector("body[data-first-image][data-modes][data-linking]")
    page.locator("button[data-action='mpr']").click()
    expect(page.locator("body")).to_have_attribute("data-mpr", "refused")
    note = page.locator(".viewport[data-index='0'] .mpr-note.refused")
    expect(note).to_contain_text("cannot be reformatted")
    page.screenshot(path="/tmp/mpr-refused.png")
    page.keyboard.press("Shift+Digit4")
    expect(page.locator("body")).to_have_attribute("data-mpr", "off")
    expect(page.locator(".mpr-note")).to_have_count(0)
    settled(page, 0)
