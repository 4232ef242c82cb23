"""The reading toolbox in a real browser: the study's measurement table (rows on two series and
slices, a click goes there, live changes, the CSV export), the DICOM tag browser on a corpus CT, the
magnifier loupe and the image capture (with and without patient details)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any

import pydicom
import pytest
from PIL import Image
from playwright.sync_api import expect
from pydicom.data import get_testdata_file

from tests.browser.conftest import ARTIFACTS, login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.live]

LABEL0 = ".viewport[data-index='0'] .slice-label"


def open_study(page: Any, uid: str) -> Any:
    page.goto(f"/projects/demo/studies/{uid}/")
    page.wait_for_selector("body[data-first-image][data-modes][data-toolbox]")
    viewport = page.locator(".viewport[data-index='0']")
    expect(viewport).not_to_have_class(re.compile(r"\bloading\b"))
    return viewport


def create_mark(page: Any, outline: int, slice_index: int, kind: str, points: list[list[float]], label: str) -> dict[str, Any]:
    """A mark through the viewer's annotation store (as the tools make them): on image `slice_index`
    (0-based) of the first series of study `outline` (0: the page's study, 1: the patient's other)."""
    return page.evaluate(
        """async ([outline, index, kind, points, label]) => {
            const sop = crossread.app.outlines[outline].series[0].instances[index][0];
            return await crossread.annotations.create({instance: sop, frame: 1, kind, points, label}, {author: "reader1"});
        }""",
        [outline, slice_index, kind, points, label],
    )


def test_the_measurement_table_lists_the_studys_marks_goes_to_them_and_exports_csv(page, demo_site):
    login(page)
    open_study(page, demo_site["truth"]["studies"]["baseline"]["study_instance_uid"])
    tag = uuid.uuid4().hex[:6]
    here = create_mark(page, 0, 9, "length", [[200, 250], [260, 250]], f"tbl-A-{tag}")
    there = create_mark(page, 1, 39, "ellipse", [[220, 220], [260, 250]], f"tbl-B-{tag}")
    page.keyboard.press("Shift+M")
    table = page.locator("dialog.measurement-table")
    expect(table).to_be_visible()
    row_a = table.locator("tbody tr", has_text=f"tbl-A-{tag}")
    row_b = table.locator("tbody tr", has_text=f"tbl-B-{tag}")
    expect(row_a).to_contain_text("Im 10/120")
    expect(row_a).to_contain_text("Length")
    expect(row_a).to_contain_text(f"{here['measurements']['length']:.1f} mm")
    expect(row_b).to_contain_text("Im 40/120")
    expect(row_b).to_contain_text("Ellipse")
    expect(row_b).to_contain_text("reader1")
    # A click goes there: the follow-up's series, slice 40, the mark selected and drawn selected.
    row_b.click()
    expect(page.locator(LABEL0)).to_have_text("Im 40/120")
    expect(page.locator(".viewport[data-index='0'] .corner.tl")).to_contain_text("2024-03-04")
    expect(page.locator(f".viewport[data-index='0'] svg.overlay .annotation.selected")).to_have_count(1)
    assert page.evaluate("crossread.app.selected") == there["id"]
    expect(row_b).to_have_attribute("aria-selected", "true")
    screenshot(page, "viewer-measurement-table")
    row_a.click()
    expect(page.locator(LABEL0)).to_have_text("Im 10/120")
    expect(page.locator(".viewport[data-index='0'] .corner.tl")).not_to_contain_text("2024-03-04")
    # Sorted by kind, descending: the length above the ellipse... and back by series.
    table.locator("button[data-sort='value']").click()
    expect(table.locator("th:has(button[data-sort='value'])")).to_have_attribute("aria-sort", "ascending")

    # The CSV of the study shown (the baseline): the server's table of the marks this reader sees.
    with page.expect_download() as download_info:
        table.locator("button[data-export='csv']").click()
    download = download_info.value
    assert download.suggested_filename == "measurements.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    mine = [r for r in rows if r["label"] == f"tbl-A-{tag}"]
    assert len(mine) == 1
    assert (mine[0]["kind"], mine[0]["image"], mine[0]["images"], mine[0]["unit"]) == ("length", "10", "120", "mm")
    assert float(mine[0]["value"]) == pytest.approx(here["measurements"]["length"])
    assert mine[0]["author"] == "reader1" and mine[0]["instance"] == here["instance"]
    assert not [r for r in rows if r["label"] == f"tbl-B-{tag}"]  # on the other study

    # Kept current: a live mark from a session (applyRemote), an edit, a deletion.
    page.evaluate("""(a) => crossread.annotations.applyRemote({type: "created", annotation: {...a, id: 987654321,
        label: a.label + "-live", author: "reader2", version: 1}})""", here)
    expect(table.locator("tbody tr", has_text=f"tbl-A-{tag}-live")).to_contain_text("reader2")
    page.evaluate("(id) => crossread.annotations.update(id, {label: 'renamed-' + id})", there["id"])
    expect(table.locator("tbody tr", has_text=f"renamed-{there['id']}")).to_contain_text("Im 40/120")
    page.evaluate("(id) => crossread.annotations.remove(id)", here["id"])
    page.evaluate("() => crossread.annotations.applyRemote({type: 'deleted', annotation: {id: 987654321}})")
    expect(table.locator("tbody tr", has_text=f"tbl-A-{tag}")).to_have_count(0)
    page.evaluate("(id) => crossread.annotations.remove(id)", there["id"])


def test_a_mark_on_a_reformatted_plane_is_listed_with_its_plane_and_a_click_opens_mpr_there(page, demo_site):
    login(page)
    open_study(page, demo_site["truth"]["studies"]["baseline"]["study_instance_uid"])
    label = f"tbl-plane-{uuid.uuid4().hex[:6]}"
    mark = page.evaluate(
        """async (label) => crossread.annotations.create({plane: {series: crossread.app.outline.series[0].uid,
            plane: "coronal", index: 200}, kind: "length", points: [[150, 100], [250, 100]], label}, {author: "reader1"})""",
        label)
    assert mark["plane"]["plane"] == "coronal"
    page.keyboard.press("Shift+M")
    row = page.locator("dialog.measurement-table tbody tr", has_text=label)
    expect(row).to_contain_text("coronal 201")
    row.click()
    expect(page.locator("body")).to_have_attribute("data-mpr", "on")
    coronal = page.locator(".viewport[data-index='2']")
    expect(coronal.locator(".slice-label")).to_contain_text("Im 201/")
    expect(coronal.locator("svg.overlay .annotation.selected")).to_have_count(1)
    assert page.evaluate("crossread.app.selected") == mark["id"]
    page.evaluate("(id) => crossread.annotations.remove(id)", mark["id"])


def test_the_tag_browser_lists_a_corpus_ct_with_sequences_private_names_and_bulk_links(page, demo_site):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    login(page)
    open_study(page, ds.StudyInstanceUID)
    page.keyboard.press("Shift+D")
    dialog = page.locator("dialog.tag-browser")
    expect(dialog).to_have_attribute("data-state", "ready")
    name = dialog.locator(".tag-row[data-tag='(0010,0010)']")
    expect(name).to_contain_text("PatientName")
    expect(name.locator(".tag-value")).to_have_text("CompressedSamples^CT1")
    expect(dialog.locator(".tag-row[data-tag='(0028,0030)'] .tag-value")).to_have_text("0.661468\\0.661468")
    expect(dialog.locator(".tag-row[data-tag='(0009,1001)'] .tag-name")).to_have_text("Full fidelity [GEMS_IDEN_01]")
    pixels = dialog.locator(".tag-row[data-tag='(7FE0,0010)'] .tag-value a")
    expect(pixels).to_have_attribute("href", re.compile(r"/dicomweb/studies/.+/bulkdata/7FE00010$"))
    # A sequence expands to its items.
    sequence = dialog.locator("details.tag-sequence:has(summary .tag-row[data-tag='(0010,1002)'])")
    inner = sequence.locator(".tag-item .tag-row[data-tag='(0010,0020)']").first
    expect(inner).to_be_hidden()
    sequence.locator("summary").click()
    expect(inner).to_be_visible()
    screenshot(page, "viewer-tags")
    # The filter keeps the matching rows.
    dialog.locator("#tag-filter").fill("pixel spacing")
    expect(dialog.locator(".tag-row[data-tag='(0028,0030)']")).to_be_visible()
    expect(name).to_be_hidden()
    dialog.locator("button.close").click()
    expect(dialog).to_be_hidden()


def test_the_loupe_follows_the_pointer_with_the_full_resolution_image(page, demo_site):
    login(page)
    viewport = open_study(page, demo_site["truth"]["studies"]["baseline"]["study_instance_uid"])
    for _ in range(40):
        page.keyboard.press("ArrowDown")
    expect(page.locator(LABEL0)).to_have_text("Im 41/120")
    expect(viewport).not_to_have_class(re.compile(r"\bloading\b"))
    page.keyboard.press("u")
    expect(page.locator("button[data-tool='loupe']")).to_have_attribute("aria-pressed", "true")
    x, y = page.evaluate("crossread.app.viewports[0].imageToClient(300, 256)")
    page.mouse.move(x - 20, y)
    page.mouse.move(x, y, steps=3)
    loupe = viewport.locator(".loupe")
    expect(loupe).to_be_visible()
    stats = page.evaluate("""() => {
        const canvas = document.querySelector(".viewport[data-index='0'] .loupe canvas");
        const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let bright = 0, levels = new Set();
        for (let i = 0; i < px.length; i += 4) { if (px[i] > 30) bright += 1; levels.add(px[i]); }
        return {bright, levels: levels.size, pixels: px.length / 4, zoom: canvas.parentElement.dataset.zoom,
                source: canvas.parentElement.dataset.source, scale: crossread.app.viewports[0].scale};
    }""")
    assert stats["bright"] > stats["pixels"] * 0.2 and stats["levels"] > 10, stats
    assert stats["zoom"] == "3"
    side = float(stats["source"].split(",")[2])
    assert side == pytest.approx(200 / (stats["scale"] * 3), abs=1)  # 3x the screen, from image pixels
    screenshot(page, "viewer-loupe")
    page.keyboard.press("Escape")  # the pointer tool: the loupe goes
    expect(loupe).to_have_count(0)


def test_the_loupe_on_a_tiled_radiograph_asks_for_the_region_at_full_resolution(page, demo_site):
    out = demo_site["site"].manage(
        "shell", "-c",
        "from viewer.models import Instance; i = Instance.objects.filter(columns__gt=1024, series__modality='CR').first(); "
        "print(i.series.study.study_instance_uid)",
    )
    login(page)
    regions: list[Any] = []
    page.on("response", lambda response: regions.append(response) if "viewport=" in response.url else None)
    viewport = open_study(page, out.split()[-1])
    expect(viewport.locator(".corner.br")).to_contain_text("(tiles)")
    page.keyboard.press("u")
    x, y = page.evaluate("crossread.app.viewports[0].imageToClient(900, 900)")
    page.mouse.move(x - 10, y)
    page.mouse.move(x, y, steps=3)
    page.wait_for_function("""() => {
        const canvas = document.querySelector(".viewport[data-index='0'] .loupe canvas");
        if (!canvas) return false;
        const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let bright = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i] > 30) bright += 1;
        return bright > px.length / 4 * 0.2;
    }""")
    assert regions and regions[0].status == 200, [r.url for r in regions]
    params = dict(part.split("=", 1) for part in regions[0].url.split("?", 1)[1].split("&"))
    w, h, sx, sy, sw, sh = (int(v) for v in params["viewport"].replace("%2C", ",").split(","))
    assert (w, h) == (sw, sh) and sx <= 900 <= sx + sw and sy <= 900 <= sy + sh  # native size: one pixel a pixel


def _capture(page: Any, without_patient: bool) -> tuple[Image.Image, dict[str, Any]]:
    page.keyboard.press("Shift+S")
    dialog = page.locator("dialog.capture-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("#capture-anonymous").set_checked(without_patient)
    with page.expect_download() as download_info:
        dialog.locator("#capture-download").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".png")
    image = Image.open(download.path()).convert("RGB")
    image.load()
    info = page.evaluate("""async () => (await import("/static/viewer/capture.js")).lastCapture""")
    name = "capture-anonymous" if without_patient else "capture"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    image.save(ARTIFACTS / f"viewer-{name}.png")
    return image, info


def _bright_text(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    region = image.crop(box)
    return sum(1 for r, g, b in region.getdata() if r > 180 and g > 180 and b > 180)


def test_capture_is_the_viewport_with_its_marks_and_text_optionally_without_the_patient(page, demo_site):
    login(page)
    viewport = open_study(page, demo_site["truth"]["studies"]["baseline"]["study_instance_uid"])
    page.keyboard.press("ArrowDown")
    expect(page.locator(LABEL0)).to_have_text("Im 2/120")
    mark = create_mark(page, 0, 1, "length", [[150, 100], [350, 100]], "")
    page.keyboard.press("Escape")  # not selected: drawn in the marks' yellow
    expect(viewport).not_to_have_class(re.compile(r"\bloading\b"))
    expect(viewport.locator("svg.overlay .annotation.length")).to_have_count(1)
    size = page.evaluate("(() => { const c = crossread.app.viewports[0].canvas; return [c.width, c.height]; })()")
    dpr = page.evaluate("window.devicePixelRatio")
    image, info = _capture(page, without_patient=False)
    assert list(image.size) == size and [info["width"], info["height"]] == size
    assert "PHANTOM-001" in info["lines"] and "Im 2/120" in info["lines"]
    # Image pixels: the phantom's body is not black.
    assert sum(1 for p in image.getdata() if max(p) > 40) > size[0] * size[1] * 0.05
    # The mark's colour (#ffd54a) where the mark is.
    x, y = page.evaluate("(() => { const v = crossread.app.viewports[0]; const b = v.root.getBoundingClientRect(); "
                         "const [cx, cy] = v.imageToClient(250, 100); return [cx - b.left, cy - b.top]; })()")
    r, g, b = max((image.getpixel((round(x * dpr), round(y * dpr) + dy)) for dy in (-1, 0, 1)), key=lambda p: p[0] - p[2])
    assert r > 180 and g > 140 and b < 120, (r, g, b)  # #ffd54a, antialiased
    corner = page.evaluate("(() => { const v = crossread.app.viewports[0]; const b = v.root.getBoundingClientRect(); "
                           "const c = v.corners.tl.getBoundingClientRect(); return [c.left - b.left, c.top - b.top, c.right - b.left, c.bottom - b.top]; })()")
    box = tuple(round(v * dpr) for v in corner)
    assert _bright_text(image, box) > 50  # the patient's lines are drawn

    anonymous, info = _capture(page, without_patient=True)
    assert list(anonymous.size) == size
    assert not any("PHANTOM" in line for line in info["lines"]) and "Im 2/120" in info["lines"]
    assert _bright_text(anonymous, box) < 5  # nothing written where the patient's lines are
    page.evaluate("(id) => crossread.annotations.remove(id)", mark["id"])
