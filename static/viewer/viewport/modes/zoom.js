// Zoom drag (the Z tool): up zooms in, down out, about the point where the drag started.
import { dragMode } from "./gesture.js";

export function zoomMode(vp, { button = 0 } = {}) {
  return dragMode(vp, {
    name: "zoom",
    button,
    cursor: "zoom-in",
    begin(event) {
      const start = [event.clientX, event.clientY];
      const scale0 = vp.scale;
      return { move: (e) => { vp.zoomAt(scale0 * Math.exp(-(e.clientY - start[1]) / 150) / vp.scale, start[0], start[1]); } };
    },
  });
}
