"""SR, SEG and RTSTRUCT in the viewer: the series panel lists them after the images; an SR opens as a
report whose regions are drawn on the images they refer to; a SEG's segments are coloured overlays with
a checkbox each and an opacity slider.

The objects are made over the demo's baseline phantom study and imported into the demo project: the
report with Crossread's own TID 1500 writer (as "Store as DICOM SR" writes it), the SEG with highdicom
from the phantom's lesion truth (tests/factories/derived.py).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import login, screenshot
from tests.browser.test_viewer import go_to_slice, open_baseline, settled
from demo import corpus
from tests.factories import derived

pytestmark = [pytest.mark.browser, pytest.mark.live]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def objects(demo_site: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    site = demo_site["site"]
    folder = site.root / "data" / "phantom"
    out = tmp_path_factory.mktemp("derived")
    report, lesions = derived.measurement_report(folder)
    seg, _masks, sources = derived.lesion_segmentation(folder)
    report.save_as(out / "report.dcm", enforce_file_format=True)
    seg.save_as(out / "seg.dcm", enforce_file_format=True)
    (out / "rtstruct.dcm").write_bytes(corpus.file("pydicom", "rtstruct.dcm").read_bytes())  # no preamble
    structures, contours = derived.lesion_structure_set(folder)
    structures.save_as(out / "lesions-rt.dcm", enforce_file_format=True)
    site.manage("import_dicom", str(out), "--project", "demo")
    return {"report": report, "lesions": lesions, "seg": seg, "sources": sources, "contours": contours,
            "images": {str(ds.SOPInstanceUID): ds for ds in derived.images(folder)}}


def _viewport_pixels(page: Any) -> np.ndarray:
    box = page.locator(".viewport[data-index='0']").bounding_box()
    png = page.screenshot(clip=box)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int), box


def test_an_sr_opens_as_a_report_and_its_regions_are_drawn_on_the_images(page, demo_site, objects):
    login(page)
    viewport = open_baseline(page, demo_site)
    entry = page.locator("#series-list button.series.document[data-kind='sr']")
    expect(entry).to_contain_text("SR · Se 7001")
    entry.click()
    panel = page.locator("#document-panel")
    expect(panel.locator("h2")).to_have_text("Imaging Measurement Report")
    expect(panel.locator(".sr-header")).to_contain_text("TID 1500")
    numbers = panel.locator("li.sr-num", has_text="Long axis")
    expect(numbers).to_have_count(len(objects["lesions"]))
    values = sorted(numbers.nth(i).locator(".sr-value").first.inner_text() for i in range(numbers.count()))
    assert values == sorted(f"{float(lesion['long_axis_mm'])} mm" for lesion in objects["lesions"])
    expect(panel.locator("li.sr-code", has_text="Finding Site").first).to_contain_text("Liver")
    # the viewer went to the first measured image, and draws its two axes there
    first = objects["lesions"][0]
    expect(page.locator(".viewport[data-index='0'] .slice-label")).to_have_text(f"Im {first['instance_number']}/120")
    settled(viewport)
    regions = page.locator(".viewport[data-index='0'] svg.derived .sr-regions")
    expect(regions).to_have_attribute("data-count", "2")
    expect(regions.locator(".sr-label").first).to_contain_text(f"{first['id']} Long axis")
    # the long axis is drawn where its end points are on the image
    drawn = page.evaluate("""() => {
        const path = document.querySelector(".viewport[data-index='0'] svg.derived .sr-shape");
        const matrix = path.getScreenCTM();
        const length = path.getTotalLength();
        return [0, length].map((at) => { const p = path.getPointAtLength(at).matrixTransform(matrix); return [p.x, p.y]; });
    }""")
    # (where the annotations' overlay puts an image point: its own box, inside the viewport's border)
    expected = [page.evaluate("""([x, y]) => {
        const viewport = crossread.app.viewports[0];
        const box = viewport.overlay.getBoundingClientRect();
        const [sx, sy] = viewport.toScreen([x, y]);
        return [box.left + sx, box.top + sy];
    }""", p) for p in first["long_axis_endpoints_px"]]
    assert np.allclose(drawn, expected, atol=1.0), (drawn, expected)
    screenshot(page, "sr-report")
    page.screenshot(path=str(DOCS / "viewer-sr-report.png"))
    # another slice without a region: nothing drawn; a click on an image reference goes back to it
    go_to_slice(page, viewport, 1)
    expect(regions).to_have_count(0)
    panel.locator("button.sr-image").first.click()
    expect(page.locator(".viewport[data-index='0'] .slice-label")).to_have_text(f"Im {first['instance_number']}/120")
    expect(regions).to_have_count(1)
    panel.locator("button.close").click()
    expect(panel).to_have_count(0)
    expect(regions).to_have_count(0)


def test_a_seg_is_a_coloured_overlay_with_segment_checkboxes_and_opacity(page, demo_site, objects):
    login(page)
    viewport = open_baseline(page, demo_site)
    lesion = objects["lesions"][0]  # T1, segment 1, red
    page.locator("#series-list button.series.document[data-kind='seg']").click()
    panel = page.locator("#document-panel")
    expect(panel.locator(".overlay-list input[type=checkbox]")).to_have_count(3)
    expect(panel.locator(".overlay-list")).to_contain_text("1 T1 (Neoplasm)")
    go_to_slice(page, viewport, lesion["instance_number"])
    overlay = page.locator(".viewport[data-index='0'] svg.derived .seg-overlay")
    expect(overlay.locator("image[data-segment='1']")).to_have_count(1)
    segment = panel.locator(".overlay-list input[data-number='1']")
    segment.uncheck()
    expect(overlay.locator("image[data-segment='1']")).to_have_count(0)
    page.wait_for_timeout(200)
    before, box = _viewport_pixels(page)
    segment.check()
    expect(overlay.locator("image[data-segment='1'][data-loaded]")).to_have_count(1)
    page.wait_for_timeout(100)  # painted
    centre = page.evaluate("""([x, y]) => {
        const viewport = crossread.app.viewports[0];
        const box = viewport.overlay.getBoundingClientRect();
        const [sx, sy] = viewport.toScreen([x, y]);
        return [box.left + sx, box.top + sy];
    }""", [lesion["centre_px"]["col"] + 0.5, lesion["centre_px"]["row"] + 0.5])
    cx, cy = round(centre[0] - box["x"]), round(centre[1] - box["y"])
    after, _ = _viewport_pixels(page)
    red_before = before[cy - 2:cy + 3, cx - 2:cx + 3].mean(axis=(0, 1))
    red_after = after[cy - 2:cy + 3, cx - 2:cx + 3].mean(axis=(0, 1))
    assert red_after[0] - red_after[1] > red_before[0] - red_before[1] + 40, (red_before, red_after)
    # away from the lesion the image is as before
    assert np.abs(after[10:30, 10:30] - before[10:30, 10:30]).max() <= 2
    screenshot(page, "seg-overlay")
    page.screenshot(path=str(DOCS / "viewer-seg-overlay.png"))
    # opacity
    slider = panel.locator(".overlay-opacity input[type=range]")
    slider.fill("100")
    expect(overlay).to_have_attribute("opacity", "1")
    # hiding segment 1 takes its overlay away
    segment.uncheck()
    expect(overlay.locator("image[data-segment='1']")).to_have_count(0)
    page.wait_for_timeout(200)
    hidden, _ = _viewport_pixels(page)
    assert np.abs(hidden[cy - 2:cy + 3, cx - 2:cx + 3] - before[cy - 2:cy + 3, cx - 2:cx + 3]).max() <= 2
    segment.check()
    expect(overlay.locator("image[data-segment='1']")).to_have_count(1)


def test_non_image_objects_are_listed_after_the_images(page, demo_site, objects):
    login(page)
    open_baseline(page, demo_site)
    page.wait_for_selector("#series-list button.series.document")
    kinds = page.evaluate("""() => {  // this study's entries (the patient's other studies follow their heading)
        const kinds = [];
        let headings = 0;
        for (const li of document.querySelectorAll("#series-list > li")) {
            if (li.classList.contains("study-heading")) { headings += 1; if (headings > 1) break; continue; }
            const button = li.querySelector("button.series");
            if (button) kinds.push(button.dataset.kind || "image");
        }
        return kinds;
    }""")
    first_document = kinds.index(next(k for k in kinds if k != "image"))
    assert all(k == "image" for k in kinds[:first_document]) and all(k != "image" for k in kinds[first_document:])
    assert {"sr", "seg"} <= set(kinds)


def test_rtstruct_of_the_corpus_is_listed_and_opens(page, demo_site, objects):
    """pydicom's rtstruct.dcm (a file without preamble, refused before), imported by import_dicom: its
    contours reference images that are not in the archive; the structure set opens with its ROIs listed."""
    login(page)
    uid = pydicom.dcmread(corpus.file("pydicom", "rtstruct.dcm"), force=True).StudyInstanceUID
    page.goto(f"/projects/demo/studies/{uid}/")
    entry = page.locator("#series-list button.series.document[data-kind='rtstruct']")
    expect(entry).to_have_count(1)  # its own study
    entry.click()
    panel = page.locator("#document-panel")
    expect(panel.locator(".overlay-list li")).to_have_count(3)
    expect(panel.locator(".overlay-list")).to_contain_text("patient")
    screenshot(page, "rtstruct-panel")


def test_rtstruct_contours_are_drawn_on_the_slices_they_name(page, demo_site, objects):
    login(page)
    viewport = open_baseline(page, demo_site)
    lesion = objects["lesions"][0]
    page.locator("#series-list button.series.document[data-kind='rtstruct']").click()
    panel = page.locator("#document-panel")
    expect(panel.locator(".overlay-list li")).to_have_count(3)
    go_to_slice(page, viewport, lesion["instance_number"])
    contour = page.locator(".viewport[data-index='0'] svg.derived .rt-contours path[data-roi='1']")
    expect(contour).to_have_count(1)
    expect(contour).to_have_attribute("stroke", "#ff0000")
    # the drawn points are the ContourData's, in the image's pixel coordinates (PS3.3 C.7.6.2.1.1)
    sop, outline = next(c for c in objects["contours"][lesion["id"]] if c[0] == lesion["sop_instance_uid"])
    image = objects["images"][sop]
    origin = np.array([float(v) for v in image.ImagePositionPatient])
    spacing = [float(v) for v in image.PixelSpacing]
    expected = [[(p[0] - origin[0]) / spacing[1] + 0.5, (p[1] - origin[1]) / spacing[0] + 0.5] for p in outline]
    drawn = [[float(v) for v in point.split(",")] for point in contour.get_attribute("d").strip("MZ").split("L")]
    assert np.allclose(drawn, expected, atol=1e-3)
    screenshot(page, "rtstruct-contours")
    page.screenshot(path=str(DOCS / "viewer-rtstruct.png"))
    # not on a slice the lesion does not reach; hidden when its ROI is unchecked
    go_to_slice(page, viewport, 1)
    expect(contour).to_have_count(0)
    go_to_slice(page, viewport, lesion["instance_number"])
    panel.locator(".overlay-list input[data-number='1']").uncheck()
    expect(contour).to_have_count(0)
