// Double-click a mark, its handles or its text to edit its label (labels.js), whatever the tool.
//
// The browser's own dblclick never reached a mark: every press redraws the overlay (the pointer
// tool selects, a measurement tool starts a draft), so the element pressed is gone by the release
// and chromium sends no click, hence no dblclick; the tool modes also capture the pointer on the
// overlay, and the marks' text let the pointer through. So the double-click is recognised here, at
// the press, before any tool mode sees it (a capturing listener): the mark under the pointer is
// found by position (labels.markAt) at each press; a second press on the same mark soon after and
// near the first opens the editor and is kept from the tool (no second draft, no drag).
import * as annotations from "../../annotations.js";
import { markAt } from "../../labels.js";
import { listeners } from "./gesture.js";

const DOUBLE_MS = 500;
const DOUBLE_PX = 6;

export function labelMode(vp) {
  const on = listeners();
  let last = null; // {time, x, y, id} of the last primary press
  const pointerdown = (event) => {
    if (event.button !== 0 || !vp.stack) { last = null; return; }
    const id = markAt(vp.overlay, event.clientX, event.clientY);
    const again = last && id !== null && last.id === id && event.timeStamp - last.time <= DOUBLE_MS
      && Math.hypot(event.clientX - last.x, event.clientY - last.y) <= DOUBLE_PX;
    last = again ? null : { time: event.timeStamp, x: event.clientX, y: event.clientY, id };
    if (!again) return;
    event.preventDefault();
    event.stopImmediatePropagation(); // the tool's mode does not see the second press
    if (vp.app.selected !== id) vp.app.select(id);
    vp.app.editLabel(annotations.get(id), event.clientX, event.clientY, vp);
  };
  return {
    name: "label",
    enter() { on.add(vp.overlay, "pointerdown", pointerdown, { capture: true }); },
    exit() { on.removeAll(); last = null; },
  };
}
