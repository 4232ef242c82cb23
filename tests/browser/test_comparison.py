"""Comparison reading in a real browser: the geometry module (static/viewer/geometry.js) against
hand-computed cases, linked scrolling of the phantom baseline beside its follow-up, reference lines
and crosshairs."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from demo.phantom import phantom_lesions
from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.live]

# The phantom's geometry (docs/phantom.md): axial 512 x 512 at 0.7 mm, slice i at z = -2.5 i.
GEOMETRY_CASES = """async () => {
  const g = await import("/static/viewer/geometry.js");
  const plane = (position, orientation, spacing, rows, columns) => g.planeOf({ position, orientation, spacing, rows, columns });
  const axial = (z, rows = 512, columns = 512, x = -179.2, y = -179.2) => plane([x, y, z], [1, 0, 0, 0, 1, 0], [0.7, 0.7], rows, columns);
  // A sagittal reformat through x = 0 (columns run posterior, rows inferior) and a coronal one
  // through y = 10 (columns run to the patient's left, rows inferior), 120 rows 2.5 mm apart from z = 0.
  const sagittal = plane([0, -179.2, 0], [0, 1, 0, 0, 0, -1], [2.5, 0.7], 120, 512);
  const coronal = plane([-179.2, 10, 0], [1, 0, 0, 0, 0, -1], [2.5, 0.7], 120, 512);
  const round = (line) => line && line.map((p) => p.map((v) => Math.round(v * 1e4) / 1e4)).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const stackA = Array.from({ length: 120 }, (_, i) => axial(-2.5 * i));
  // Another series: 5 mm apart, its origin shifted (x, y by 29.2 mm, z starting at +10), 60 slices.
  const stackB = Array.from({ length: 60 }, (_, i) => axial(10 - 5 * i, 512, 512, -150, -150));
  // A prior of another frame of reference: z = 100 - 5 i.
  const prior = Array.from({ length: 60 }, (_, i) => axial(100 - 5 * i));
  const link = g.alignment(stackA[10], prior[3]);
  const through = (stack, from) => g.nearestSlice(stack, g.centreOf(from));
  return {
    axialOnSagittal: round(g.referenceLine(axial(-50), sagittal)),
    axialOnCoronal: round(g.referenceLine(axial(-50), coronal)),
    sagittalOnAxial: round(g.referenceLine(sagittal, axial(-50))),
    coronalOnAxial: round(g.referenceLine(coronal, axial(-50))),
    sagittalOnCoronal: round(g.referenceLine(sagittal, coronal)),
    coronalOnSagittal: round(g.referenceLine(coronal, sagittal)),
    belowTheSagittal: g.referenceLine(axial(-400), sagittal),
    parallel: g.referenceLine(axial(-50), axial(-52.5)),
    smallAxialOnCoronal: round(g.referenceLine(axial(-50, 100, 100, -20, -20), coronal)),
    smallAxialMissesSagittal: g.referenceLine(axial(-50, 100, 100, 20, -20), sagittal),
    normal: stackA[0].normal,
    positionOf30: g.positionAlong(stackA[30]),
    spacingA: g.sliceSpacing(stackA, [0, 0, 1]),
    spacingB: g.sliceSpacing(stackB, [0, 0, 1]),
    aToB: [0, 30, 32, 119].map((i) => through(stackB, stackA[i])),
    bToA: [0, 1, 59].map((i) => through(stackA, stackB[i])),
    linkOffset: link,
    aToPrior: [10, 30, 0, 119].map((i) => g.nearestSlice(prior, g.add(g.centreOf(stackA[i]), link))),
    pixel: g.patientToPixel(stackA[30], [0, 10, -75]),
    patient: g.pixelToPatient(stackA[30], [256.5, 270.5]),
    sagittalPixel: g.patientToPixel(sagittal, [0, 0, -75]),
    emptyStack: g.nearestSlice([null, null], [0, 0, 0]),
    noGeometry: g.planeOf({ position: [], orientation: null, spacing: [0.7, 0.7], rows: 512, columns: 512 }),
  };
}"""


def close(actual: Any, expected: Any, tolerance: float = 1e-3) -> bool:
    if isinstance(expected, (list, tuple)):
        return isinstance(actual, list) and len(actual) == len(expected) and all(close(a, e, tolerance) for a, e in zip(actual, expected))
    if expected is None:
        return actual is None
    return abs(actual - expected) <= tolerance


def test_the_geometry_module_against_hand_computed_cases(page, demo_site):
    page.goto("/accounts/login/")
    r = page.evaluate(GEOMETRY_CASES)
    # An axial slice at z = -50 crosses the sagittal and coronal reformats at row 20.5 (z = -(y - 0.5) * 2.5),
    # across their whole width.
    assert close(r["axialOnSagittal"], [[0, 20.5], [512, 20.5]])
    assert close(r["axialOnCoronal"], [[0, 20.5], [512, 20.5]])
    # x = 0 is column (0 + 179.2) / 0.7 + 0.5 = 256.5 of the axial image; y = 10 is its row 270.7857.
    assert close(r["sagittalOnAxial"], [[256.5, 0], [256.5, 512]])
    assert close(r["coronalOnAxial"], [[0, 270.7857], [512, 270.7857]])
    # The sagittal and coronal planes meet along the vertical x = 0, y = 10: column 256.5 of the
    # coronal (all its rows) and column (10 + 179.2) / 0.7 + 0.5 = 270.7857 of the sagittal.
    assert close(r["sagittalOnCoronal"], [[256.5, 0], [256.5, 120]])
    assert close(r["coronalOnSagittal"], [[270.7857, 0], [270.7857, 120]])
    # Out of the sagittal's range (its rows reach z = -298.75), parallel planes: no line.
    assert r["belowTheSagittal"] is None and r["parallel"] is None
    # Clipped to the source image too: a 100 x 100 axial image from x = -20.35 to 49.65 mm draws
    # columns 227.43 to 327.43 of the coronal; one that stays left of x = 0 misses the sagittal.
    assert close(r["smallAxialOnCoronal"], [[227.4286, 20.5], [327.4286, 20.5]])
    assert r["smallAxialMissesSagittal"] is None
    assert close(r["normal"], [0, 0, 1]) and close(r["positionOf30"], -75)
    assert close(r["spacingA"], 2.5) and close(r["spacingB"], 5)
    # Linked scrolling, 2.5 mm slices against 5 mm slices from z = +10: z = 0 -> B 2, z = -75 -> B 17,
    # z = -80 -> B 18; z = -297.5 is 12.5 mm past B's last slice (-285): none.
    assert r["aToB"] == [2, 17, 18, None]
    # Back: z = +10 is 10 mm above A's first slice (more than half of 2.5 mm): none; z = 5 too; -285 -> A 114.
    assert r["bToA"] == [None, None, 114]
    # The link action on A's slice 10 (z = -25) and the prior's slice 3 (z = 85) keeps 110 mm along the
    # normal: A's slice 30 (z = -75) is the prior's z = 35, slice 13; A's slice 0 (z = 0) is z = 110,
    # above the prior's first slice (100): none; A 119 is z = -187.5 -> prior 57.5 -> 57.
    assert close(r["linkOffset"], [0, 0, 110])
    assert r["aToPrior"] == [3, 13, None, 57]
    # Patient point <-> pixel: (0, 10, -75) is pixel (256.5, 270.79) of slice 30, on its plane.
    assert close(r["pixel"], [256.5, 270.7857, 0])
    assert close(r["patient"], [0, 9.8, -75])
    assert close(r["sagittalPixel"], [256.5, 30.5, 0])
    assert r["emptyStack"] is None and r["noGeometry"] is None


# ------------------------------------------------------------------------------------------ the viewer


def label(page: Any, index: int) -> Any:
    return page.locator(f".viewport[data-index='{index}'] .slice-label")


def open_comparison(page: Any, demo_site: dict[str, Any]) -> tuple[Any, Any]:
    """The phantom baseline in 1x2: the follow-up (another study, another frame of reference) hangs beside it."""
    login(page)
    uid = demo_site["truth"]["studies"]["baseline"]["study_instance_uid"]
    page.goto(f"/projects/demo/studies/{uid}/")
    page.wait_for_selector("body[data-first-image][data-modes][data-linking]")
    page.keyboard.press("Shift+Digit2")
    left = page.locator(".viewport[data-index='0']")
    right = page.locator(".viewport[data-index='1']")
    expect(right.locator(".corner.tl")).to_contain_text("2024-03-04")  # the follow-up
    expect(label(page, 1)).to_have_text("Im 1/120")
    # Linked by default for this hanging, once both series' metadata are here.
    expect(page.locator("body")).to_have_attribute("data-linked", "on")
    expect(page.locator("button[data-action='linked']")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function("() => crossread.app.viewports.slice(0, 2).every((v) => v.stack.items.every((i) => i.meta))")
    return left, right


def settled(viewport: Any) -> None:
    expect(viewport).not_to_have_class(re.compile(r"\bloading\b"))


def test_the_follow_up_follows_the_baseline_by_patient_position(page, demo_site):
    left, right = open_comparison(page, demo_site)
    left.focus()
    for _ in range(3):
        page.keyboard.press("PageDown")
    expect(label(page, 0)).to_have_text("Im 31/120")
    expect(label(page, 1)).to_have_text("Im 31/120")
    expect(right.locator(".corner.tr")).to_contain_text("Loc -75.0 mm")
    expect(left.locator(".corner.tr")).to_contain_text("Loc -75.0 mm")
    # And back the other way: scrolling the follow-up moves the baseline.
    right.focus()
    for _ in range(5):
        page.keyboard.press("ArrowDown")
    expect(label(page, 1)).to_have_text("Im 36/120")
    expect(label(page, 0)).to_have_text("Im 36/120")
    settled(left)
    settled(right)
    # The follow-up is active: its slice is no reference line on the parallel baseline.
    expect(left.locator("svg.overlay .reference-line")).to_have_count(0)
    screenshot(page, "comparison-linked")
    page.screenshot(path="/tmp/comparison-linked.png")
    # K turns linking off: the baseline stays where it is.
    page.keyboard.press("k")
    expect(page.locator("body")).to_have_attribute("data-linked", "off")
    page.keyboard.press("ArrowDown")
    expect(label(page, 1)).to_have_text("Im 37/120")
    expect(label(page, 0)).to_have_text("Im 36/120")
    # The link action keeps the offset of the slices on screen (one slice, 2.5 mm), then they scroll together.
    page.keyboard.press("Shift+K")
    expect(page.locator("body")).to_have_attribute("data-linked", "on")
    for _ in range(10):
        page.keyboard.press("ArrowDown")
    expect(label(page, 1)).to_have_text("Im 47/120")
    expect(label(page, 0)).to_have_text("Im 46/120")
    # The baseline keeps its one-slice offset to the end; the follow-up's first slice is 2.5 mm
    # above the baseline's first: there the baseline shows no slice.
    page.keyboard.press("End")
    expect(label(page, 1)).to_have_text("Im 120/120")
    expect(label(page, 0)).to_have_text("Im 119/120")
    page.keyboard.press("Home")
    expect(label(page, 1)).to_have_text("Im 1/120")
    expect(left).to_have_class(re.compile(r"\bout-of-range\b"))
    expect(left.locator(".out-of-range-note")).to_be_visible()
    page.screenshot(path="/tmp/comparison-out-of-range.png")
    page.keyboard.press("ArrowDown")
    expect(label(page, 0)).to_have_text("Im 1/120")
    expect(left).not_to_have_class(re.compile(r"\bout-of-range\b"))


def test_crosshairs_move_the_other_viewport_to_the_point(page, demo_site):
    left, right = open_comparison(page, demo_site)
    lesion = next(item for item in phantom_lesions("followup") if item["id"] == "T1")
    number = lesion["instance_number"]
    # Linking off: the crosshairs alone move the baseline.
    right.focus()
    page.keyboard.press("k")
    page.keyboard.press("End")
    expect(label(page, 1)).to_have_text("Im 120/120")
    for _ in range(120 - number):
        page.keyboard.press("ArrowUp")
    expect(label(page, 1)).to_have_text(f"Im {number}/120")
    expect(label(page, 0)).to_have_text("Im 1/120")
    page.keyboard.press("c")
    expect(page.locator("button[data-tool='crosshair']")).to_have_attribute("aria-pressed", "true")
    col, row = lesion["centre_px"]["col"] + 0.5, lesion["centre_px"]["row"] + 0.5
    x, y = page.evaluate("([x, y]) => crossread.app.viewports[1].imageToClient(x, y)", [col, row])
    page.mouse.click(x, y)
    expect(label(page, 0)).to_have_text(f"Im {number}/120")
    expect(label(page, 1)).to_have_text(f"Im {number}/120")
    point = page.evaluate("crossread.app.linking.crosshair.point")
    assert all(abs(a - b) <= 0.36 for a, b in zip(point, lesion["centre_mm"])), point
    for index in (0, 1):
        mark = page.locator(f".viewport[data-index='{index}'] svg.overlay .crosshair")
        expect(mark).to_have_count(1)
        assert abs(float(mark.get_attribute("data-x")) - col) < 0.01 and abs(float(mark.get_attribute("data-y")) - row) < 0.01
    settled(left)
    settled(right)
    page.screenshot(path="/tmp/comparison-crosshair.png")
    # Esc clears it.
    page.keyboard.press("Escape")
    expect(page.locator("svg.overlay .crosshair")).to_have_count(0)


def write_planes_study(folder: Any) -> None:
    """A synthetic study in one frame of reference: axial, sagittal and coronal series of one volume
    (a body ellipse and a sphere of radius 60 mm at (0, 0, -100)), and a coronal CT localizer."""
    import numpy as np
    from pydicom.uid import generate_uid

    from tests.factories.dicom import ct_dataset, to_bytes

    study, frame = generate_uid(), generate_uid()

    def volume(points: Any) -> Any:
        x, y, z = points
        body = (x / 120) ** 2 + (y / 90) ** 2 <= 1
        sphere = x**2 + y**2 + (z + 100) ** 2 <= 60**2
        stripe = (np.abs(np.round(z / 20) * 20 - z) < 2) & body  # a bright line every 20 mm along z
        return np.where(sphere, 900, np.where(stripe, 400, np.where(body, 40, -1000))).astype("<i2")

    def image(series: str, number: int, index: int, position: list[float], orientation: list[float], rows: int, description: str, **extra: Any) -> None:
        row, column = np.array(orientation[:3]), np.array(orientation[3:])
        r, c = np.mgrid[0:rows, 0:64]
        points = np.array(position)[:, None, None] + row[:, None, None] * c * 4.0 + column[:, None, None] * r * 4.0
        ds = ct_dataset(
            StudyInstanceUID=study, SeriesInstanceUID=series, FrameOfReferenceUID=frame, PatientName="Planes^Synthetic",
            PatientID="PLANES-1", StudyDate="20010101", StudyDescription="SYNTHETIC planes", SeriesNumber=number,
            SeriesDescription=description, InstanceNumber=index + 1, Rows=rows, Columns=64, PixelSpacing=[4, 4],
            ImagePositionPatient=[float(v) for v in position], ImageOrientationPatient=[float(v) for v in orientation],
            WindowCenter=100, WindowWidth=1400, PixelData=volume(points).tobytes(), **extra,
        )
        (folder / f"{number}-{index:03d}.dcm").write_bytes(to_bytes(ds))

    folder.mkdir(parents=True, exist_ok=True)
    axial, sagittal, coronal, localizer = (generate_uid() for _ in range(4))
    for i in range(20):  # z = 0 ... -190, 10 mm apart
        image(axial, 1, i, [-126, -126, -10 * i], [1, 0, 0, 0, 1, 0], 64, "axial")
    for i, x in enumerate(range(-80, 81, 20)):  # 9 slices, rows run down from z = 0
        image(sagittal, 2, i, [x, -126, 0], [0, 1, 0, 0, 0, -1], 48, "sagittal")
    for i, y in enumerate(range(-60, 61, 20)):  # 7 slices
        image(coronal, 3, i, [-126, y, 0], [1, 0, 0, 0, 0, -1], 48, "coronal")
    image(localizer, 4, 0, [-126, 0, 20], [1, 0, 0, 0, 0, -1], 60, "localizer", ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])


def reference(page: Any, index: int, kind: str = "current") -> list[float]:
    line = page.locator(f".viewport[data-index='{index}'] svg.overlay line.reference-line.{kind}")
    expect(line).to_have_count(1)
    ends = [[float(line.get_attribute(f"{axis}{n}")) for axis in "xy"] for n in (1, 2)]
    # Back to image coordinates.
    return page.evaluate(
        "([i, ends]) => { const v = crossread.app.viewports[i]; const box = v.root.getBoundingClientRect();"
        " return ends.map(([x, y]) => v.toImage(box.left + x, box.top + y)); }",
        [index, ends],
    )


def test_reference_lines_and_crosshairs_between_axial_sagittal_coronal_and_a_localizer(page, demo_site, tmp_path):
    folder = tmp_path / "planes"
    write_planes_study(folder)
    demo_site["site"].manage("import_dicom", str(folder), "--project", "demo", "--quiet")
    login(page)
    page.goto("/projects/demo/")
    page.fill("#wl-search", "PLANES-1")
    page.locator("#wl-rows tr", has_text="PLANES-1").first.locator("a").first.click()
    page.wait_for_selector("body[data-first-image][data-modes][data-linking]")
    page.keyboard.press("Shift+Digit3")
    for index, name in enumerate(["axial", "sagittal", "coronal", "localizer"]):
        expect(page.locator(f".viewport[data-index='{index}'] .corner.tr")).to_contain_text(name)
    page.wait_for_function("() => crossread.app.viewports.every((v) => v.stack && v.stack.items.every((i) => i.meta))")
    expect(page.locator("body")).not_to_have_attribute("data-linked", "on")  # one study: not linked by default
    axial = page.locator(".viewport[data-index='0']")
    axial.focus()
    for _ in range(5):
        page.keyboard.press("ArrowDown")
    expect(label(page, 0)).to_have_text("Im 6/20")  # z = -50
    # z = -50 is row 50 / 4 + 0.5 = 13 of the sagittal and coronal images (z = 0 at row 0.5), row
    # (20 + 50) / 4 + 0.5 = 18 of the localizer; across their whole width (64 columns).
    for index, row in ((1, 13), (2, 13), (3, 18)):
        a, b = sorted(reference(page, index))
        assert abs(a[0]) < 0.05 and abs(b[0] - 64) < 0.05 and abs(a[1] - row) < 0.05 and abs(b[1] - row) < 0.05, (index, a, b)
    # The axial series' first and last slices (z = 0, -190): rows 0.5 and 48 of the sagittal.
    assert abs(reference(page, 1, "first")[0][1] - 0.5) < 0.05
    assert abs(reference(page, 1, "last")[0][1] - 48) < 0.05
    for index in range(4):
        settled(page.locator(f".viewport[data-index='{index}']"))
    page.screenshot(path="/tmp/reference-lines-axial.png")
    # The sagittal through x = 0 (slice 5) active: a vertical line at column (0 + 126) / 4 + 0.5 = 32
    # of the axial, coronal and localizer images; on the localizer (z = 20 at row 0.5) only over the
    # sagittal's extent, z = 2 to -190: rows 5 to 53.
    sagittal = page.locator(".viewport[data-index='1']")
    sagittal.click()
    sagittal.focus()
    for _ in range(4):
        page.keyboard.press("ArrowDown")
    expect(label(page, 1)).to_have_text("Im 5/9")
    for index, top, bottom in ((0, 0, 64), (2, 0, 48), (3, 5, 53)):
        a, b = sorted(reference(page, index), key=lambda p: p[1])
        assert abs(a[0] - 32) < 0.05 and abs(b[0] - 32) < 0.05 and abs(a[1] - top) < 0.05 and abs(b[1] - bottom) < 0.05, (index, a, b)
    # Crosshairs on the axial slice through the sphere's centre (0, 0, -100): slice 11, pixel (32, 32).
    axial.click()
    axial.focus()
    for _ in range(5):
        page.keyboard.press("ArrowDown")
    expect(label(page, 0)).to_have_text("Im 11/20")
    page.keyboard.press("c")
    x, y = page.evaluate("crossread.app.viewports[0].imageToClient(32, 32)")
    page.mouse.click(x, y)
    expect(label(page, 1)).to_have_text("Im 5/9")  # x = 0
    expect(label(page, 2)).to_have_text("Im 4/7")  # y = 0
    # The mark: at (32, 32) of the axial, at column 32, row 100 / 4 + 0.5 = 25.5 of the sagittal and
    # coronal, at row (20 + 100) / 4 + 0.5 = 30.5 of the localizer (its plane is y = 0).
    for index, (mx, my) in ((0, (32, 32)), (1, (32, 25.5)), (2, (32, 25.5)), (3, (32, 30.5))):
        mark = page.locator(f".viewport[data-index='{index}'] svg.overlay .crosshair")
        expect(mark).to_have_count(1)
        assert abs(float(mark.get_attribute("data-x")) - mx) < 0.01 and abs(float(mark.get_attribute("data-y")) - my) < 0.01, index
    for index in range(4):
        settled(page.locator(f".viewport[data-index='{index}']"))
    page.screenshot(path="/tmp/reference-lines-crosshair.png")


def test_viewport_events_carry_linking_and_the_crosshair_and_apply_them(page, demo_site):
    """The collaboration contract (docs/viewer.md): `viewport` events carry linked, registrations and
    the crosshair point, moves made by linking are marked `driven` (not sent), `apply-viewport` applies them."""
    left, right = open_comparison(page, demo_site)
    page.evaluate("window.seen = []; crossread.bus.on('viewport', (v) => window.seen.push(v))")
    left.focus()
    page.keyboard.press("PageDown")
    expect(label(page, 1)).to_have_text("Im 11/120")
    # Both events arrive, in either order: the driven move of the right viewport and the left one's own
    # (the left one's may follow once its image is shown).
    page.wait_for_function("""() => seen.some((v) => v.viewport === 1 && v.instance && v.driven)
        && seen.some((v) => v.viewport === 0 && !v.driven)""")
    own = page.evaluate("seen.filter((v) => v.viewport === 0 && !v.driven).pop()")
    assert own["linked"] is True and own["crosshair"] is None
    assert len(own["registrations"]) == 1 and own["registrations"][0]["offset"] == [0, 0, 0]
    frames = {demo_site["truth"]["studies"][s]["frame_of_reference_uid"] for s in ("baseline", "followup")}
    assert {own["registrations"][0]["from"], own["registrations"][0]["to"]} == frames
    # A presenter's state: linking off, a crosshair point on the baseline's slice 31 (z = -75).
    page.evaluate("""crossread.bus.emit('apply-viewport', {
        linked: false, registrations: [], crosshair: {frameOfReference: crossread.app.linking.state().registrations[0].from, point: [0, 4.9, -75]},
    })""")
    expect(page.locator("body")).to_have_attribute("data-linked", "off")
    expect(label(page, 0)).to_have_text("Im 31/120")
    expect(label(page, 1)).to_have_text("Im 31/120")
    expect(page.locator("svg.overlay .crosshair")).to_have_count(2)
    page.evaluate("crossread.bus.emit('apply-viewport', {crosshair: null})")
    expect(page.locator("svg.overlay .crosshair")).to_have_count(0)
