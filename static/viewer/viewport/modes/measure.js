// Drawing a mark with a measurement tool (L, B, E, G, T, M): one mode per tool, made from its
// adapter in tools.js (begin, move, valid, finish). The draft is drawn on the overlay and sent as
// `annotation.draft`; a valid one is created when the pointer is released. A press on a handle of
// the selected mark drags the handle instead (e.g. the short axis of a node, right after drawing it).
import { imageFields } from "../../annotations.js";
import { clampPoint } from "../../tools.js";
import { dragMode } from "./gesture.js";
import { editGesture } from "./select.js";

const PLANE_KINDS = ["length", "ellipse"]; // what a reformatted plane takes (annotations.services.PLANE_KINDS)

export function measureMode(vp, adapter, { button = 0 } = {}) {
  return dragMode(vp, {
    name: adapter.kind,
    button,
    cursor: "crosshair",
    begin(event) {
      const { app } = vp;
      if (!app.canWrite) { app.toast("Your role in this project can view but not annotate."); return null; }
      if (event.target.closest(".mark-label")) return null; // a mark's text: a double-click there edits it
      if (event.target.closest(".handle")) {
        const gesture = editGesture(vp, event);
        if (gesture !== undefined) return gesture;
      }
      const item = vp.item;
      if (item.plane && !PLANE_KINDS.includes(adapter.kind)) { app.toast("On a reformatted plane only length and ellipse can be drawn."); return null; }
      const [columns, rows] = [item.columns, item.rows];
      const here = (e) => clampPoint(vp.toImage(e.clientX, e.clientY), columns, rows);
      const instance = item.sop;
      const frame = item.frame;
      vp.draft = { kind: adapter.kind, points: adapter.begin(here(event)), instance, frame, plane: item.plane || null };
      app.draft(vp.draft);
      const minimum = 3 / vp.scale;
      const move = (e) => {
        vp.draft.points = adapter.move(vp.draft.points, here(e), minimum);
        app.draft(vp.draft);
        vp.drawOverlay();
      };
      const up = () => {
        const draft = vp.draft;
        vp.draft = null;
        app.draft(null);
        if (draft && adapter.valid(draft.points, minimum)) {
          const points = adapter.finish ? adapter.finish(draft.points) : draft.points;
          app.createAnnotation({ ...imageFields(item), kind: adapter.kind, points, label: "" }, adapter.asksLabel);
        }
        vp.drawOverlay();
      };
      vp.drawOverlay();
      return { move, up };
    },
    cancel() {
      // The tool changed while drawing: the draft is dropped.
      if (!vp.draft) return;
      vp.draft = null;
      vp.app.draft(null);
      vp.drawOverlay();
    },
  });
}
