"""The viewer in a real browser on the demo data: worklist, stack scroll, presets, measurements
against the phantom's truth, persistence across a reload, upload, and access control."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login, screenshot
from tests.factories.dicom import ct_bytes
from demo.phantom import phantom_lesions, uniform_regions

pytestmark = [pytest.mark.browser, pytest.mark.live]

SLICE_LABEL = ".viewport[data-index='0'] .slice-label"


def baseline_uid(demo_site: dict[str, Any]) -> str:
    return demo_site["truth"]["studies"]["baseline"]["study_instance_uid"]


def open_baseline(page: Any, demo_site: dict[str, Any]) -> Any:
    page.goto(f"/projects/demo/studies/{baseline_uid(demo_site)}/")
    page.wait_for_selector("body[data-first-image][data-modes]")
    viewport = page.locator(".viewport[data-index='0']")
    expect(page.locator(SLICE_LABEL)).to_have_text("Im 1/120")
    return viewport


def settled(viewport: Any) -> None:
    """Wait until the viewport shows the server's render of the slice it wants."""
    expect(viewport).not_to_have_class(re.compile(r"\bloading\b"))


def canvas_digest(page: Any) -> str:
    data = page.evaluate("document.querySelector(\".viewport[data-index='0'] canvas.image\").toDataURL()")
    return hashlib.sha256(data.encode()).hexdigest()


def go_to_slice(page: Any, viewport: Any, number: int, label: Any = None) -> None:
    """Home, then PageDown (10 slices) and ArrowDown steps to the 1-based slice `number`."""
    viewport.focus()
    page.keyboard.press("Home")
    for _ in range((number - 1) // 10):
        page.keyboard.press("PageDown")
    for _ in range((number - 1) % 10):
        page.keyboard.press("ArrowDown")
    expect(label or page.locator(SLICE_LABEL)).to_have_text(f"Im {number}/120")
    settled(viewport)


def drag(page: Any, start: list[float], end: list[float]) -> None:
    """Drag between two points given in image coordinates of viewport 0."""
    x0, y0 = page.evaluate("([x, y]) => crossread.app.viewports[0].imageToClient(x, y)", start)
    x1, y1 = page.evaluate("([x, y]) => crossread.app.viewports[0].imageToClient(x, y)", end)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=6)
    page.mouse.up()


def measurement_values(page: Any, kind_label: str) -> list[str]:
    items = page.locator("#measurement-list button.measurement", has_text=kind_label)
    return [items.nth(i).locator(".measure-value").inner_text() for i in range(items.count())]


# ------------------------------------------------------------------------------------------


def count_in_database(demo_site: dict[str, Any], queryset: str) -> int:
    out = demo_site["site"].manage("shell", "-c", f"from viewer.models import *; print({queryset}.count())")
    return int(out.split()[-1])


def test_login_and_the_worklist_lists_the_demo_studies(page, demo_site):
    studies = count_in_database(demo_site, "Study.objects.filter(project__slug='demo')")
    mr = count_in_database(demo_site, "Study.objects.filter(project__slug='demo', series__modality='MR').distinct()")
    assert studies >= 10 and mr >= 1
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    login(page)
    page.click("text=Crossread demo")
    rows = page.locator("#wl-rows tr")
    expect(rows).to_have_count(studies)
    expect(page.locator("#wl-status")).to_have_text(f"{studies} studies.")
    phantom = page.locator("#wl-rows tr", has_text="PHANTOM-001")
    expect(phantom).to_have_count(2)
    expect(phantom.first).to_contain_text("2024-03-04")  # newest first
    expect(phantom.first).to_contain_text("120")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#wl-rows img.thumb')].slice(0, 3).every(i => i.complete && i.naturalWidth > 0)"
    )
    screenshot(page, "worklist")
    # Filter by modality, then search by text; sort by patient.
    page.select_option("#wl-modality", "MR")
    expect(page.locator("#wl-status")).to_have_text(f"{mr} {'study' if mr == 1 else 'studies'}.")
    page.select_option("#wl-modality", "")
    page.fill("#wl-search", "phantom")
    expect(rows).to_have_count(2)
    page.fill("#wl-search", "")
    page.fill("#wl-from", "2024-01-01")
    expect(rows).to_have_count(2)
    page.fill("#wl-from", "")
    expect(rows).to_have_count(studies)
    page.click("button.sort[data-sort='patient']")
    expect(page.locator("th:has(button[data-sort='patient'])")).to_have_attribute("aria-sort", "ascending")


def test_wheel_and_arrow_keys_change_the_slice_and_its_pixels_together(page, demo_site):
    login(page)
    viewport = open_baseline(page, demo_site)
    settled(viewport)
    screenshot(page, "viewer-first-slice")
    first = canvas_digest(page)
    box = viewport.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 100)
    expect(page.locator(SLICE_LABEL)).to_have_text("Im 2/120")
    settled(viewport)
    second = canvas_digest(page)
    page.keyboard.press("ArrowDown")
    expect(page.locator(SLICE_LABEL)).to_have_text("Im 3/120")
    settled(viewport)
    third = canvas_digest(page)
    page.mouse.wheel(0, -100)
    expect(page.locator(SLICE_LABEL)).to_have_text("Im 2/120")
    settled(viewport)
    assert len({first, second, third}) == 3
    assert canvas_digest(page) == second  # the label and the pixels belong together
    page.keyboard.press("ArrowUp")
    expect(page.locator(SLICE_LABEL)).to_have_text("Im 1/120")
    settled(viewport)
    assert canvas_digest(page) == first
    expect(viewport.locator(".corner.tr")).to_contain_text("Loc 0.0 mm")
    expect(viewport.locator(".orient.left")).to_have_text("R")
    expect(viewport.locator(".orient.top")).to_have_text("A")


def test_a_lung_preset_changes_the_pixels(page, demo_site):
    login(page)
    viewport = open_baseline(page, demo_site)
    go_to_slice(page, viewport, 41)  # T2, the right lung nodule
    before = canvas_digest(page)
    expect(viewport.locator(".corner.bl")).to_contain_text("W 400 L 40")
    lung = page.evaluate("crossread.app.presetsFor('CT').findIndex(p => p.id === 'ct-lung') + 1")
    page.keyboard.press(str(lung))
    expect(viewport.locator(".corner.bl")).to_contain_text("W 1500 L -600")
    expect(page.locator("#preset")).to_have_value("ct-lung")
    settled(viewport)
    assert canvas_digest(page) != before
    screenshot(page, "viewer-lung-window")
    page.keyboard.press("Shift+0")  # as acquired (0 is the tenth preset)
    expect(viewport.locator(".corner.bl")).to_contain_text("W 400 L 40 (file)")
    settled(viewport)
    assert canvas_digest(page) == before
    # Right-drag: the picture changes at once on the client, the server's render follows.
    box = viewport.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x + 150, y + 60, steps=3)
    preview = page.evaluate("document.querySelector(\".viewport[data-index='0'] canvas.image\").style.filter")
    assert preview.startswith("url(")
    page.mouse.up(button="right")
    expect(viewport.locator(".corner.bl")).not_to_contain_text("(file)")
    settled(viewport)
    expect(viewport.locator("canvas.image")).to_have_attribute("style", re.compile(r"^(?!.*url\()"))
    assert canvas_digest(page) not in (before,)


def test_measurements_match_the_phantom_and_survive_a_reload(page, demo_site):
    truth = demo_site["truth"]
    spacing = max(truth["geometry"]["pixel_spacing_mm"])  # "within one pixel's size"
    lesion = next(item for item in phantom_lesions("baseline") if item["id"] == "T1")
    liver = next(item for item in uniform_regions() if item["name"] == "liver")
    number = lesion["instance_number"]
    assert liver["first_slice"] <= number - 1 <= liver["last_slice"]
    login(page, "reader2")
    viewport = open_baseline(page, demo_site)
    go_to_slice(page, viewport, number)

    # Length across the lesion (pixel indices -> image coordinates: centres at +0.5).
    (a, b) = lesion["long_axis_endpoints_px"]
    page.keyboard.press("l")
    drag(page, [a[0] + 0.5, a[1] + 0.5], [b[0] + 0.5, b[1] + 0.5])
    expect(page.locator("#measurement-list .measurement", has_text="Length")).to_contain_text("mm")
    expect(page.locator("#measurement-list .measurement", has_text="Length")).not_to_contain_text("saving")
    length = float(re.search(r"([\d.]+) mm", measurement_values(page, "Length")[0]).group(1))
    assert abs(length - lesion["long_axis_mm"]) <= spacing, length

    # An ellipse inside the liver disc of known HU.
    centre = liver["centre_px"]
    r = liver["radius_px"] * 0.7
    page.keyboard.press("e")
    drag(page, [centre["col"] + 0.5 - r, centre["row"] + 0.5 - r], [centre["col"] + 0.5 + r, centre["row"] + 0.5 + r])
    roi = page.locator("#measurement-list .measurement", has_text="Ellipse")
    expect(roi).to_contain_text("Mean")
    mean = float(re.search(r"Mean (-?[\d.]+) HU", measurement_values(page, "Ellipse")[0]).group(1))
    assert abs(mean - liver["expected_hu"]) <= 1.0, mean
    expect(viewport.locator("svg.overlay g.annotation.length")).to_have_count(1)
    page.keyboard.press("Escape")
    screenshot(page, "viewer-measurements")

    # The marks stay on the anatomy when zooming and panning.
    line = viewport.locator("svg.overlay g.annotation.length path.shape")
    before = line.bounding_box()
    page.keyboard.press("+")
    after = line.bounding_box()
    assert after["width"] == pytest.approx(before["width"] * 1.25, rel=0.02)

    page.reload()
    page.wait_for_selector("body[data-first-image][data-modes]")
    viewport = page.locator(".viewport[data-index='0']")
    go_to_slice(page, viewport, number)
    expect(page.locator("#measurement-list .measurement", has_text="Length")).to_have_count(1)
    expect(page.locator("#measurement-list .measurement", has_text="Ellipse")).to_contain_text(f"Mean {mean:.1f} HU")
    assert measurement_values(page, "Length")[0].startswith(f"{length:.1f} mm")
    expect(viewport.locator("svg.overlay g.annotation")).to_have_count(2)
    # On another slice, none of them.
    page.keyboard.press("ArrowDown")
    expect(viewport.locator("svg.overlay g.annotation")).to_have_count(0)


def test_upload_through_the_page_then_find_the_study_in_the_worklist(page, demo_site, tmp_path):
    good = tmp_path / "upload-test.dcm"
    good.write_bytes(ct_bytes(PatientName="Uploaded^Browser", PatientID="UP-1", StudyDescription="Uploaded in the browser"))
    junk = tmp_path / "notes.txt"
    junk.write_text("not DICOM")
    login(page)
    page.goto("/projects/demo/upload/")
    page.set_input_files("#pick-files", [str(good), str(junk)])
    summary = page.locator("#summary-counts")
    expect(summary).to_have_text("1 instances stored, 0 already stored, 1 refused.")
    expect(page.locator("#summary-refused")).to_contain_text("notes.txt:")
    expect(page.locator("#upload-rows tr.ok")).to_contain_text("1 stored")
    assert page.evaluate("document.getElementById('overall-progress').value") == 1
    screenshot(page, "upload")
    page.click("text=Back to the worklist")
    page.fill("#wl-search", "Uploaded")
    row = page.locator("#wl-rows tr", has_text="Uploaded, Browser")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Uploaded in the browser")


def test_pages_need_a_login_and_membership(page, demo_site):
    site = demo_site["site"]
    site.manage(
        "shell", "-c",
        "from django.contrib.auth import get_user_model as g; "
        "u, _ = g().objects.get_or_create(username='stranger'); u.set_password('stranger-pass-1'); u.save()",
    )
    study = baseline_uid(demo_site)
    response = page.goto(f"/projects/demo/studies/{study}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.fill("#id_username", "stranger")
    page.fill("#id_password", "stranger-pass-1")
    page.click("button[type=submit]")
    response = page.goto(f"/projects/demo/studies/{study}/")
    assert response.status == 404
    assert page.goto("/projects/demo/").status == 404
    assert page.goto("/projects/demo/upload/").status == 404


def test_bidirectional_edit_delete_and_undo(page, demo_site):
    lesion = next(item for item in phantom_lesions("baseline") if item["id"] == "T3")  # the node: 30 x 20 mm
    (a, b) = lesion["long_axis_endpoints_px"]
    (s0, s1) = lesion["short_axis_endpoints_px"]
    login(page, "organizer")
    viewport = open_baseline(page, demo_site)
    go_to_slice(page, viewport, lesion["instance_number"])
    page.keyboard.press("b")
    drag(page, [a[0] + 0.5, a[1] + 0.5], [b[0] + 0.5, b[1] + 0.5])
    item = page.locator("#measurement-list .measurement", has_text="Bidirectional")
    expect(item).to_contain_text("L 30.0 × S 15.0 mm")  # the short axis starts at half the long one
    # Stretch the short axis to the node's short diameter by its two handles.
    page.keyboard.press("v")
    for index, end in ((3, s1), (2, s0)):
        handle = viewport.locator(f"g.annotation.selected circle.handle[data-handle='{index}']")
        box = handle.bounding_box()
        x, y = page.evaluate("([x, y]) => crossread.app.viewports[0].imageToClient(x, y)", [end[0] + 0.5, end[1] + 0.5])
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(x, y, steps=4)
        page.mouse.up()
        expect(item).not_to_contain_text("saving")
    text = item.locator(".measure-value").inner_text()
    long_axis, short_axis = (float(v) for v in re.search(r"L ([\d.]+) × S ([\d.]+) mm", text).groups())
    assert abs(long_axis - lesion["long_axis_mm"]) <= 0.7 and abs(short_axis - lesion["short_axis_mm"]) <= 0.7, text
    screenshot(page, "viewer-bidirectional")
    page.keyboard.press("Delete")
    expect(item).to_have_count(0)
    expect(viewport.locator("svg.overlay g.annotation")).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(text)
    page.keyboard.press("Control+z")  # the second handle move, undone on the re-created mark
    expect(item).to_contain_text(f"L {long_axis:.1f} × S")
    expect(item).not_to_contain_text(text)


def test_the_events_of_the_collaboration_contract(page, demo_site):
    login(page)
    viewport = open_baseline(page, demo_site)
    settled(viewport)
    page.evaluate("""() => {
        window.__events = {viewport: [], cursor: [], draft: []};
        crossread.bus.on('viewport', d => __events.viewport.push(d));
        crossread.bus.on('cursor', d => __events.cursor.push(d));
        crossread.bus.on('annotation.draft', d => __events.draft.push(d));
    }""")
    sop = page.evaluate("i => crossread.app.viewports[0].stack.items[i].sop", 49)
    # Follow a presenter.
    page.evaluate("""sop => crossread.bus.emit('apply-viewport',
        {instance: sop, frame: 1, window: {center: -600, width: 1500}, zoom: 2, pan: [256, 256], invert: false})""", sop)
    expect(page.locator(SLICE_LABEL)).to_have_text("Im 50/120")
    expect(viewport.locator(".corner.bl")).to_contain_text("W 1500 L -600")
    expect(viewport.locator(".corner.bl")).to_contain_text("Zoom 2.00×")
    # (an event of the slice shown before may still arrive first: wait for the one of the new slice)
    page.wait_for_function("sop => __events.viewport.length && __events.viewport.at(-1).instance === sop", arg=sop)
    state = page.evaluate("__events.viewport.at(-1)")
    assert state["remote"] is True and state["window"] == {"center": -600, "width": 1500} and state["frame"] == 1
    # Cursor events in image coordinates.
    x, y = page.evaluate("() => crossread.app.viewports[0].imageToClient(100.5, 200.5)")
    page.mouse.move(x, y)
    cursor = page.wait_for_function("() => __events.cursor.length && __events.cursor.at(-1)").json_value()
    assert cursor["instance"] == sop and abs(cursor["x"] - 100.5) < 0.6 and abs(cursor["y"] - 200.5) < 0.6
    # Remote cursors and drafts drawn on the matching image only.
    page.evaluate("""sop => {
        crossread.bus.emit('remote-cursors', {cursors: [{user: 'reader2', colour: '#f5a623', instance: sop, frame: 1, x: 300, y: 300},
                                                        {user: 'elsewhere', colour: '#0f0', instance: 'other', frame: 1, x: 1, y: 1}]});
        crossread.bus.emit('remote-draft', {user: 'reader2', colour: '#f5a623', instance: sop, frame: 1, kind: 'length', points: [[10, 10], [200, 200]]});
    }""", sop)
    expect(viewport.locator("g.remote-cursor")).to_have_count(1)
    expect(viewport.locator("g.remote-cursor text")).to_have_text("reader2")
    expect(viewport.locator("g.remote-draft")).to_have_count(1)
    page.evaluate("crossread.bus.emit('remote-draft-clear', {user: 'reader2'})")
    expect(viewport.locator("g.remote-draft")).to_have_count(0)
    # Others' annotations pushed in, and a pluggable transport for one's own.
    page.evaluate("""sop => crossread.annotations.applyRemote({type: 'created', annotation: {
        id: 987654, version: 1, author: 'reader2', instance: sop, frame: 1, kind: 'point', points: [[256, 256]],
        label: 'from the session', measurements: {kind: 'point', value: 40}}})""", sop)
    expect(page.locator("#measurement-list .measurement", has_text="from the session")).to_have_count(1)
    page.evaluate("""sop => crossread.annotations.applyRemote({type: 'deleted', annotation: {id: 987654, version: 2}})""", sop)
    expect(page.locator("#measurement-list .measurement", has_text="from the session")).to_have_count(0)
    page.evaluate("""() => {
        window.__created = [];
        const rest = crossread.annotations.getTransport();
        crossread.annotations.setTransport({...rest, create: async (fields) => {
            __created.push(fields);
            return {...fields, id: 555, version: 1, author: 'reader1', measurements: {kind: 'length', unit: 'mm', calibration: 'PixelSpacing', length: 12.3}};
        }});
    }""")
    page.keyboard.press("l")
    drag(page, [100, 100], [150, 100])
    expect(page.locator("#measurement-list .measurement", has_text="Length")).to_contain_text("12.3 mm")
    created = page.evaluate("__created")
    assert len(created) == 1 and created[0]["kind"] == "length" and created[0]["instance"] == sop
    assert created[0]["client_ref"] and created[0]["points"][0] == [100, 100]
    drafts = page.evaluate("__events.draft")
    assert drafts[0]["kind"] == "length" and drafts[-1]["points"] == []


@pytest.mark.parametrize("size, layout", [((1280, 720), "1x2"), ((2560, 1440), "2x2")], ids=["laptop", "monitor"])
def test_the_layout_fits_a_laptop_and_a_reading_room_monitor(page, demo_site, size, layout):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    login(page)
    open_baseline(page, demo_site)
    page.click(f"[data-layout='{layout}']")
    count = {"1x2": 2, "2x2": 4}[layout]
    visible = page.locator(".viewport:not([hidden])")
    expect(visible).to_have_count(count)
    for i in range(count):
        expect(visible.nth(i).locator(".slice-label")).to_have_text(re.compile(r"Im \d+/"))
        settled(visible.nth(i))
        box = visible.nth(i).bounding_box()
        assert box["width"] > 300 and box["height"] > 250
        assert box["x"] + box["width"] <= size[0] + 1 and box["y"] + box["height"] <= size[1] + 1
    # The patient's other study is offered beside this one: baseline and follow-up side by side.
    expect(page.locator("#series-list li.study-heading")).to_have_count(2)
    expect(visible.nth(0).locator(".corner.tl")).to_contain_text("2024-01-08")
    expect(visible.nth(1).locator(".corner.tl")).to_contain_text("2024-03-04")
    # Nothing overflows the window; the toolbar stays on one or two rows.
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth && document.documentElement.scrollHeight <= innerHeight")
    assert page.locator("header.topbar").bounding_box()["height"] < 100
    # Every control has an accessible name.
    unnamed = page.evaluate("""() => [...document.querySelectorAll('button, input, select')].filter(el => {
        if (el.closest('[hidden]') || el.type === 'hidden') return false;
        const label = el.getAttribute('aria-label') || el.labels?.[0]?.textContent || el.textContent || el.title;
        return !label || !label.trim();
    }).map(el => el.outerHTML.slice(0, 80))""")
    assert unnamed == []
    if layout == "2x2":  # a reading of several windows at once, for the docs
        presets = page.evaluate("crossread.app.presetsFor('CT').map(p => p.id)")
        for i, (number, preset) in enumerate([(91, None), (41, "ct-lung"), (31, "ct-mediastinum"), (91, "ct-liver")]):
            visible.nth(i).click(position={"x": 20, "y": 200})
            go_to_slice(page, visible.nth(i), number, label=visible.nth(i).locator(".slice-label"))
            if preset:
                page.keyboard.press(str(presets.index(preset) + 1))
                settled(visible.nth(i))
    name = "laptop" if size[0] < 2000 else "monitor"
    screenshot(page, f"viewer-{layout}-{name}")
    page.keyboard.press("?")
    expect(page.locator("dialog#shortcuts")).to_be_visible()
    expect(page.locator("#preset-keys")).to_contain_text("Lung")
    screenshot(page, f"shortcuts-{name}")
    page.keyboard.press("Escape")
    expect(page.locator("dialog#shortcuts")).to_be_hidden()


def test_a_viewer_role_reads_but_does_not_annotate(page, demo_site):
    demo_site["site"].manage(
        "shell", "-c",
        "from django.contrib.auth import get_user_model as g; from viewer.models import *; "
        "u, _ = g().objects.get_or_create(username='watcher'); u.set_password('watcher-pass-1'); u.save(); "
        "Membership.objects.get_or_create(project=Project.objects.get(slug='demo'), user=u, defaults={'role': 'viewer'})",
    )
    page.goto("/accounts/login/")
    page.fill("#id_username", "watcher")
    page.fill("#id_password", "watcher-pass-1")
    page.click("button[type=submit]")
    page.goto("/projects/demo/")
    expect(page.locator("#wl-rows tr").first).to_be_visible()
    expect(page.locator("text=Upload studies")).to_have_count(0)
    assert page.goto("/projects/demo/upload/").status == 403  # a member: the project exists to them
    viewport = open_baseline(page, demo_site)
    expect(page.locator("[data-tool='length']")).to_be_disabled()
    expect(page.locator("[data-tool='pan']")).to_be_enabled()
    page.keyboard.press("l")
    expect(page.locator("#toasts")).to_contain_text("can view but not annotate")
    viewport.focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator(SLICE_LABEL)).to_have_text("Im 2/120")


def test_the_viewer_page_loads_the_session_script_only_in_a_session(demo_site):
    import requests

    http = requests.Session()
    url = demo_site["url"]
    http.get(f"{url}/accounts/login/")
    http.post(f"{url}/accounts/login/", data={"username": "reader1", "password": "demo-reader1-pass",
              "csrfmiddlewaretoken": http.cookies["csrftoken"]}, headers={"Referer": f"{url}/accounts/login/"})
    page_url = f"{url}/projects/demo/studies/{baseline_uid(demo_site)}/"
    plain = http.get(page_url)
    assert plain.status_code == 200 and 'id="collab-panel"' in plain.text
    assert "collab/session.js" not in plain.text
    in_session = http.get(page_url, params={"session": "12"})
    assert '<script type="module" src="/static/collab/session.js"></script>' in in_session.text
    assert '"session": "12"' in in_session.text  # in the boot JSON


def test_a_large_radiograph_is_drawn_from_the_deep_zoom_tiles_in_view(page, demo_site):
    out = demo_site["site"].manage(
        "shell", "-c",
        "from viewer.models import Instance; i = Instance.objects.filter(columns__gt=1024, series__modality='CR').first(); "
        "print(i.series.study.study_instance_uid, i.columns, i.rows)",
    )
    study, columns, rows = out.split()[-3:]
    login(page)
    tiles: list[str] = []
    page.on("request", lambda request: tiles.append(request.url) if "_files/" in request.url else None)
    page.goto(f"/projects/demo/studies/{study}/")
    page.wait_for_selector("body[data-first-image][data-modes]")
    viewport = page.locator(".viewport[data-index='0']")
    settled(viewport)
    expect(viewport.locator(".corner.br")).to_contain_text(f"{columns} × {rows} (tiles)")
    assert tiles and not any("/rendered" in url for url in tiles)
    max_level = max(int(c).bit_length() for c in (int(columns) - 1, int(rows) - 1))
    viewport.focus()
    for _ in range(8):  # zoom in about 6x around the centre
        page.keyboard.press("+")
    settled(viewport)
    page.wait_for_timeout(300)
    settled(viewport)
    finest = {url.split("_files/")[1].split("?")[0] for url in tiles if f"_files/{max_level}/" in url}
    grid = -(-int(columns) // 254) * -(-int(rows) // 254)
    assert finest, tiles
    # Not the whole level: only tiles in view (the intermediate zoom steps, drawn or not depending on
    # timing, also fetch the tiles of their wider views, so a tighter bound would be flaky).
    assert len(finest) < grid, (len(finest), grid)
    assert canvas_digest(page)
    screenshot(page, "viewer-tiles-zoomed")
