// Drawing an angle (N) or a Cobb angle (O) in two steps, from their adapters in tools.js.
// Angle: drag from the end of the first arm to the vertex; the second arm then follows the pointer and
// a click (or a drag) places its end. Cobb: drag the first line, then drag the second. The draft is
// drawn on the overlay and sent as `annotation.draft` at every step (2 points, then 3 or 4), so the
// others in a session see it as it is drawn; a valid one is created at the last release. Esc, another
// tool, or a first step too short to be an arm drops it. A press on a handle of the selected mark drags
// the handle, as with the other tools.
import { imageFields } from "../../annotations.js";
import { clampPoint } from "../../tools.js";
import { listeners, startGesture } from "./gesture.js";
import { editGesture } from "./select.js";

export function angleMode(vp, adapter, { button = 0 } = {}) {
  const on = listeners();
  let stop = null;
  let item = null;
  const here = (e) => clampPoint(vp.toImage(e.clientX, e.clientY), item.columns, item.rows);
  const minimum = () => 3 / vp.scale;
  const show = () => { vp.app.draft(vp.draft); vp.drawOverlay(); };
  const drop = () => {
    if (!vp.draft) return;
    vp.draft = null;
    vp.app.draft(null);
    vp.drawOverlay();
  };
  const second = () => vp.draft && vp.draft.kind === adapter.kind && vp.draft.step === 2 && vp.item === item;

  function firstStep(event) {
    const { app } = vp;
    if (!app.canWrite) { app.toast("Your role in this project can view but not annotate."); return null; }
    if (event.target.closest(".mark-label")) return null;
    if (event.target.closest(".handle")) {
      const gesture = editGesture(vp, event);
      if (gesture !== undefined) return gesture;
    }
    item = vp.item;
    if (item.plane) { app.toast("On a reformatted plane only length and ellipse can be drawn."); return null; }
    const p = here(event);
    vp.draft = { kind: adapter.kind, points: [p, p], instance: item.sop, frame: item.frame, plane: null, step: 1 };
    show();
    return {
      move: (e) => { vp.draft.points = [vp.draft.points[0], here(e)]; show(); },
      up: () => {
        const [a, b] = vp.draft.points;
        if (Math.hypot(a[0] - b[0], a[1] - b[1]) < minimum()) { drop(); return; }
        vp.draft.step = 2;
        if (adapter.kind === "angle") vp.draft.points = [a, b, b];
        show();
      },
    };
  }

  function secondStep(event) {
    const p = here(event);
    const draft = vp.draft;
    const place = (q) => {
      draft.points = adapter.kind === "angle" ? [draft.points[0], draft.points[1], q] : [draft.points[0], draft.points[1], draft.points[2] || p, q];
      show();
    };
    if (adapter.kind === "cobb") draft.points = [draft.points[0], draft.points[1], p, p];
    place(p);
    return {
      move: (e) => place(here(e)),
      up: () => {
        vp.draft = null;
        vp.app.draft(null);
        if (adapter.valid(draft.points, minimum())) {
          vp.app.createAnnotation({ ...imageFields(item), kind: adapter.kind, points: draft.points, label: "" }, false);
        }
        vp.drawOverlay();
      },
    };
  }

  const pointerDown = (event) => {
    if (event.button !== button || !vp.stack || !vp.shown || stop) return;
    const handlers = second() ? secondStep(event) : firstStep(event);
    if (!handlers) return;
    stop = startGesture(vp.overlay, event, { move: handlers.move, up: (e) => { stop = null; if (handlers.up) handlers.up(e); } });
  };
  const hover = (event) => {
    // Between the steps of an angle, the second arm follows the pointer.
    if (stop || !second() || adapter.kind !== "angle") return;
    const [a, b] = vp.draft.points;
    vp.draft.points = [a, b, here(event)];
    show();
  };
  return {
    name: adapter.kind,
    enter() {
      on.add(vp.overlay, "pointerdown", pointerDown);
      on.add(vp.overlay, "pointermove", hover);
      vp.overlay.style.cursor = "crosshair";
    },
    exit() {
      on.removeAll();
      vp.overlay.style.cursor = "";
      if (stop) { stop(); stop = null; }
      if (vp.draft && vp.draft.kind === adapter.kind) drop();
    },
  };
}
