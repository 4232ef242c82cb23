// The pointer tool (V, Esc): click a mark to select it; drag one of its handles to reshape it, or
// the mark itself to move it (when one may edit it); drag empty image to pan; click it to deselect.
import * as annotations from "../../annotations.js";
import { TOOLS, clampPoint, translate } from "../../tools.js";
import { dragMode } from "./gesture.js";
import { panFollowing } from "./pan.js";

/** An annotation id from a data-id attribute (numbers for stored marks, text for pending ones). */
export function idOf(text) { return /^\d+$/.test(text) ? Number(text) : text; }

/**
 * Drag a mark under the pointer: one of its handles reshapes it, the mark itself moves (when one may
 * edit it). Selects it. Returns the gesture's {move, up}, null when the mark may not be changed, or
 * undefined when the event is on no mark. Shared by the pointer tool and the drawing tools (which drag
 * a handle of the selected mark rather than start a new one on it).
 */
export function editGesture(vp, event) {
  const { app } = vp;
  const handle = event.target.closest(".handle");
  const group = event.target.closest("[data-id]");
  const annotation = group && annotations.get(idOf(group.dataset.id));
  if (!annotation || annotation.pending) return undefined;
  app.select(annotation.id);
  if (!app.mayEdit(annotation) || event.target.closest(".mark-label")) return null; // a label selects, it does not move the mark
  const item = vp.item;
  const [columns, rows] = [item.columns, item.rows];
  const adapter = TOOLS[annotation.kind];
  const origin = vp.toImage(event.clientX, event.clientY);
  const move = (e) => {
    const points = handle && adapter.moveHandle
      ? adapter.moveHandle(annotation.points, Number(handle.dataset.handle), clampPoint(vp.toImage(e.clientX, e.clientY), columns, rows))
      : translate(annotation.points, [vp.toImage(e.clientX, e.clientY)[0] - origin[0], vp.toImage(e.clientX, e.clientY)[1] - origin[1]], columns, rows);
    vp.editing = { id: annotation.id, points: points.map((q) => clampPoint(q, columns, rows)) };
    vp.drawOverlay();
  };
  const up = () => {
    const editing = vp.editing;
    vp.editing = null;
    if (editing && JSON.stringify(editing.points) !== JSON.stringify(annotation.points)) {
      app.updateAnnotation(annotation, { points: editing.points });
    }
    vp.drawOverlay();
  };
  return { move, up };
}

export function selectMode(vp, { button = 0 } = {}) {
  return dragMode(vp, {
    name: "pointer",
    button,
    begin(event) {
      const gesture = editGesture(vp, event);
      if (gesture !== undefined) return gesture;
      vp.app.select(null);
      return { move: panFollowing(vp, event) };
    },
    cancel() {
      // The tool changed while a mark was dragged: it stays where it was.
      if (!vp.editing) return;
      vp.editing = null;
      vp.drawOverlay();
    },
  });
}
