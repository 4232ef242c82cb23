"""Marks' labels in the viewer: a double-click on a drawn mark edits its label (whatever the tool), the
selected mark's panel edits it too, a stale edit is refused with a message and nothing lost, others'
marks are read-only; the labels of marks drawn close together do not overlap, with leader lines."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login, screenshot
from tests.browser.test_viewer import drag, go_to_slice, open_baseline

pytestmark = [pytest.mark.browser, pytest.mark.live]

OVERLAY = ".viewport[data-index='0'] svg.overlay"


def client(page: Any, point: list[float]) -> list[float]:
    return page.evaluate("([x, y]) => crossread.app.viewports[0].imageToClient(x, y)", point)


def draw_length(page: Any, start: list[float], end: list[float]) -> int:
    """Draw a length with the L tool; returns its id once the server has it."""
    before = set(page.evaluate("crossread.annotations.all().map(a => a.id)"))
    page.keyboard.press("l")
    drag(page, start, end)
    page.wait_for_function("(before) => crossread.annotations.all().some(a => !a.pending && !before.includes(a.id))",
                           arg=list(before))
    return next(i for i in page.evaluate("crossread.annotations.all().map(a => a.id)") if i not in before)


def stored(page: Any, annotation_id: int) -> dict[str, Any]:
    """The annotation as the server has it, once the page's write (if any) has been answered."""
    page.wait_for_function("(id) => crossread.annotations.get(id) && !crossread.annotations.get(id).pending", arg=annotation_id)
    response = page.request.get(f"/api/projects/demo/annotations/{annotation_id}/")
    assert response.ok, response.text()
    return response.json()


def label_box(page: Any, annotation_id: int) -> dict[str, float]:
    return page.locator(f"{OVERLAY} g.annotation[data-id='{annotation_id}'] .label-hit").bounding_box()


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def test_a_double_click_on_a_drawn_mark_edits_its_label(page, demo_site):
    login(page, "reader1")
    viewport = open_baseline(page, demo_site)
    go_to_slice(page, viewport, 70)
    mark = draw_length(page, [150, 300], [210, 300])
    editor = page.locator("#label-editor")

    # With the length tool still on: a double-click on the line opens the editor over the label.
    count = page.evaluate("crossread.annotations.all().length")
    x, y = client(page, [180, 300])
    page.mouse.dblclick(x, y)
    expect(editor).to_be_visible()
    box, text = editor.bounding_box(), label_box(page, mark)
    assert abs(box["x"] - text["x"]) < 12 and abs(box["y"] - text["y"]) < 12, (box, text)
    expect(page.locator(f"{OVERLAY} g.annotation.draft")).to_have_count(0)  # the presses drew nothing
    assert page.evaluate("crossread.annotations.all().length") == count
    page.keyboard.type("T1 liver")
    page.keyboard.press("Enter")
    expect(editor).to_be_hidden()
    expect(page.locator(f"{OVERLAY} g.annotation[data-id='{mark}'] text")).to_contain_text("T1 liver")
    assert stored(page, mark)["label"] == "T1 liver"

    # With the pointer tool: a double-click on the text; Esc cancels.
    page.keyboard.press("v")
    box = label_box(page, mark)
    page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(editor).to_be_visible()
    expect(page.locator("#label-input")).to_have_value("T1 liver")
    page.keyboard.type("something else")
    page.keyboard.press("Escape")
    expect(editor).to_be_hidden()
    assert stored(page, mark)["label"] == "T1 liver"

    # The selected mark's panel edits it as well; the label's bound is the server's.
    field = page.locator("#inspector-label")
    expect(field).to_have_value("T1 liver")
    assert field.get_attribute("maxlength") == "200"
    field.fill("T1 liver segment 7")
    field.press("Enter")
    expect(page.locator("#inspector-note")).to_have_text("Saved.")
    assert stored(page, mark)["label"] == "T1 liver segment 7"
    screenshot(page, "viewer-label-edited")

    # Someone changes the label meanwhile: the edit is refused with a message, theirs stays, the text is kept.
    box = label_box(page, mark)
    page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(editor).to_be_visible()
    current = stored(page, mark)
    token = page.evaluate("document.cookie.match(/csrftoken=([^;]+)/)[1]")
    changed = page.request.patch(f"/api/projects/demo/annotations/{mark}/", headers={"X-CSRFToken": token},
                                 data={"version": current["version"], "label": "changed elsewhere"})
    assert changed.ok, changed.text()
    page.fill("#label-input", "mine")
    page.keyboard.press("Enter")
    expect(page.locator("#label-note")).to_contain_text("changed meanwhile")
    expect(page.locator("#label-note")).to_contain_text("changed elsewhere")
    expect(page.locator("#label-input")).to_have_value("mine")
    assert stored(page, mark)["label"] == "changed elsewhere"
    page.keyboard.press("Enter")  # saved deliberately over the version now shown
    expect(editor).to_be_hidden()
    expect(page.locator(f"{OVERLAY} g.annotation[data-id='{mark}'] text")).to_contain_text("mine")
    assert stored(page, mark)["label"] == "mine"

    # Another reader's mark: no editor, a reason; the panel's field is read-only.
    page.context.clear_cookies()
    login(page, "reader2")
    viewport = open_baseline(page, demo_site)
    go_to_slice(page, viewport, 70)
    box = label_box(page, mark)
    page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#toasts")).to_contain_text("Only reader1 or an organizer can change this label")
    expect(editor).to_be_hidden()
    expect(page.locator("#inspector-label")).to_have_attribute("readonly", "")
    assert stored(page, mark)["label"] == "mine"


def test_labels_of_marks_drawn_close_together_do_not_overlap(page, demo_site):
    login(page, "reader1")
    viewport = open_baseline(page, demo_site)
    go_to_slice(page, viewport, 80)
    first = draw_length(page, [300, 120], [340, 120])
    # (Deselected first: with a drawing tool, a press on the selected mark's handle reshapes it.)
    page.evaluate("crossread.app.select(null)")
    second = draw_length(page, [300, 123], [340, 123])  # three pixels below: the same place on screen
    a, b = label_box(page, first), label_box(page, second)
    assert not overlap(a, b), (a, b)

    # A crowd: eight more lengths two pixels apart (made as the tool would); every label stays clear of the others.
    page.evaluate("""() => {
        const item = crossread.app.viewports[0].item;
        return Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => crossread.annotations.create(
            {instance: item.sop, frame: item.frame, kind: 'length', points: [[300, 126 + 2 * i], [340, 126 + 2 * i]], label: `L${i + 1}`},
            {author: 'reader1'})));
    }""")
    expect(page.locator(f"{OVERLAY} g.annotation.pending")).to_have_count(0)

    def boxes() -> list[dict[str, float]]:
        hits = page.locator(f"{OVERLAY} g.annotation[data-id] .label-hit")
        return [hits.nth(i).bounding_box() for i in range(hits.count())]

    found = boxes()
    assert len(found) >= 10
    clashes = [(i, j) for i in range(len(found)) for j in range(i) if overlap(found[i], found[j])]
    assert not clashes, clashes
    leaders = page.locator(f"{OVERLAY} line.leader")
    assert leaders.count() >= 1
    screenshot(page, "viewer-labels-placed")
    # Recomputed with the view: zoomed out, the same marks crowd more, and still no two labels overlap.
    page.keyboard.press("-")
    page.keyboard.press("-")
    found = boxes()
    assert not [(i, j) for i in range(len(found)) for j in range(i) if overlap(found[i], found[j])]
    # The leader goes from the label to its mark.
    line = leaders.first
    x2, y2 = (float(line.get_attribute(n)) for n in ("x2", "y2"))
    group = line.locator("xpath=ancestor::*[@data-id][1]")
    path = group.locator("path.shape").first.get_attribute("d")
    assert f"{x2:.1f}" in path and f"{y2:.1f}" in path, (x2, y2, path)
