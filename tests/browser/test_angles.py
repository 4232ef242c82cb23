"""Angles and calibrated lengths in a real browser on the demo data: an angle and a Cobb angle drawn on
the demo radiograph show their value (the one the server measured from the stored points, checked
here by hand) with an arc at the vertex; a length on the ultrasound is in the region's mm and one
across regions is refused; a length on the whole-slide image is in micrometres."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.live]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def study_of(demo_site: dict[str, Any], condition: str) -> tuple[str, str]:
    """(study UID, SOP Instance UID) of the first demo instance matching ``condition`` (a filter)."""
    out = demo_site["site"].manage(
        "shell", "-c",
        f"from viewer.models import Instance; i = Instance.objects.filter({condition}).order_by('pk').first(); "
        "print(i.series.study.study_instance_uid, i.sop_instance_uid)",
    )
    study, sop = out.split()[-2:]
    return study, sop


def open_study(page: Any, study: str) -> Any:
    page.goto(f"/projects/demo/studies/{study}/")
    page.wait_for_selector("body[data-first-image][data-modes]")
    viewport = page.locator(".viewport[data-index='0']")
    expect(viewport).not_to_have_class(re.compile(r"\bloading\b"))
    return viewport


def client(page: Any, point: list[float]) -> list[float]:
    return page.evaluate("([x, y]) => crossread.app.viewports[0].imageToClient(x, y)", point)


def press_drag(page: Any, start: list[float], end: list[float]) -> None:
    x0, y0 = client(page, start)
    x1, y1 = client(page, end)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=6)
    page.mouse.up()


def marks(page: Any, kind: str) -> list[dict[str, Any]]:
    """The saved marks of ``kind`` (waits until there is one)."""
    page.wait_for_function(
        "(kind) => crossread.annotations.all().some((a) => a.kind === kind && !a.pending && a.measurements)", arg=kind)
    return page.evaluate("(kind) => crossread.annotations.all().filter((a) => a.kind === kind && !a.pending)", kind)


def value_of(page: Any, title: str) -> str:
    item = page.locator("#measurement-list button.measurement").filter(
        has=page.locator("strong", has_text=re.compile(f"^{title}$")))
    expect(item).to_have_count(1)
    expect(item).not_to_contain_text("saving")
    return item.locator(".measure-value").inner_text()


def physical(points: list[list[float]], spacing: float) -> list[list[float]]:
    return [[x * spacing, y * spacing] for x, y in points]


def angle_at(a: list[float], vertex: list[float], b: list[float]) -> float:
    u = (a[0] - vertex[0], a[1] - vertex[1])
    v = (b[0] - vertex[0], b[1] - vertex[1])
    return math.degrees(math.atan2(abs(u[0] * v[1] - u[1] * v[0]), u[0] * v[0] + u[1] * v[1]))


def test_an_angle_and_a_cobb_angle_drawn_on_a_radiograph_show_their_values(page, demo_site):
    study, _ = study_of(demo_site, "series__modality='DX'")
    login(page, "reader1")
    viewport = open_study(page, study)

    # Angle: drag the first arm from its end to the vertex, then click the end of the second arm.
    page.keyboard.press("n")
    press_drag(page, [2300, 900], [1200, 1500])
    x, y = client(page, [2100, 2300])
    page.mouse.move(x, y, steps=4)
    expect(viewport.locator("svg.overlay g.annotation.draft path.arc")).to_have_count(1)  # the arc, while drawing
    page.mouse.down()
    page.mouse.up()
    expect(viewport.locator("svg.overlay g.annotation.angle path.arc")).to_have_count(1)
    [angle] = marks(page, "angle")
    a, vertex, b = angle["points"]
    expected = angle_at(a, vertex, b)  # square pixels (0.14 mm): the angle on pixels is the patient's
    assert abs(expected - angle_at([2300, 900], [1200, 1500], [2100, 2300])) < 1.0
    assert angle["measurements"]["angle"] == round(expected, 1)
    assert value_of(page, "Angle") == f"{expected:.1f}°"
    expect(viewport.locator("svg.overlay g.annotation.angle .measure-text")).to_have_text(f"{expected:.1f}°")

    # Cobb angle: two drags, the lines tilted about +10 and -15 degrees, far apart.
    page.keyboard.press("j")
    press_drag(page, [400, 500], [1600, 500 + 1200 * math.tan(math.radians(10))])
    expect(viewport.locator("svg.overlay g.annotation.draft path.shape")).to_have_count(1)  # the first line waits
    press_drag(page, [500, 2200], [1700, 2200 - 1200 * math.tan(math.radians(15))])
    [cobb] = marks(page, "cobb")
    p = cobb["points"]
    first = math.atan2(p[1][1] - p[0][1], p[1][0] - p[0][0])
    second = math.atan2(p[3][1] - p[2][1], p[3][0] - p[2][0])
    between = abs(math.degrees(first - second)) % 180
    expected_cobb = min(between, 180 - between)
    assert abs(expected_cobb - 25) < 1.0
    assert cobb["measurements"]["angle"] == round(expected_cobb, 1)
    assert value_of(page, "Cobb angle") == f"Cobb {expected_cobb:.1f}°"

    # A length on the same radiograph says which spacing it used: the detector's (PixelSpacing equals
    # ImagerPixelSpacing, no magnification factor).
    page.keyboard.press("l")
    press_drag(page, [300, 2500], [1300, 2500])
    expect(page.locator("#measurement-list .measurement", has_text="Length")).to_contain_text("mm (detector)")
    assert abs(float(value_of(page, "Length").split()[0]) - 1000 * 0.14) < 1.5
    page.keyboard.press("Escape")
    path = screenshot(page, "viewer-angles")
    DOCS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, DOCS / "viewer-angles.png")

    # After a reload they are drawn again with the server's values.
    page.reload()
    page.wait_for_selector("body[data-first-image][data-modes]")
    expect(viewport.locator("svg.overlay g.annotation.angle .measure-text")).to_have_text(f"{expected:.1f}°")
    expect(viewport.locator("svg.overlay g.annotation.cobb .measure-text")).to_have_text(f"Cobb {expected_cobb:.1f}°")


def test_ultrasound_lengths_in_the_region_and_slide_lengths_in_micrometres(page, demo_site):
    # examples_palette (800 x 350): a B-mode region from column 120 (its spectrum region lies below the rows kept)
    study, _ = study_of(demo_site, "series__modality='US', rows=350")
    login(page, "reader2")
    open_study(page, study)
    page.keyboard.press("l")
    press_drag(page, [300, 100], [300, 300])  # inside the B-mode region (columns 120..800, rows 60..518)
    expect(page.locator("#measurement-list .measurement", has_text="Length")).to_contain_text("mm (US region)")
    length = float(value_of(page, "Length").split()[0])
    assert abs(length - 200 * 0.2622878766196998) < 0.6  # 200 rows x 0.0262 cm
    press_drag(page, [300, 200], [60, 200])  # out of the region, into the margin on its left: refused
    expect(page.locator("#toasts")).to_contain_text("outside every calibrated ultrasound region")
    expect(page.locator("#measurement-list .measurement", has_text="Length")).to_have_count(1)
    shutil.copy(screenshot(page, "viewer-ultrasound-length"), DOCS / "viewer-ultrasound-length.png")

    slide, _ = study_of(demo_site, "series__modality='SM'")
    open_study(page, slide)
    page.keyboard.press("l")
    press_drag(page, [200, 200], [1000, 800])  # 1000 px of the base level x 0.25 um
    expect(page.locator("#measurement-list .measurement", has_text="Length")).to_contain_text("µm (slide)")
    assert abs(float(value_of(page, "Length").split()[0]) - 250.0) < 2.0
    screenshot(page, "viewer-slide-length")
