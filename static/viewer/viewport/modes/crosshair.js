// The crosshairs tool (C): press or drag on the image to set one point in patient coordinates; every
// viewport of the same frame of reference (or one linked to it) goes to the slice through it and
// marks it (linking.js). The point stays when the tool changes; Esc clears it.
import { clampPoint } from "../../tools.js";
import { dragMode } from "./gesture.js";

export function crosshairMode(vp, { button = 0 } = {}) {
  const place = (event) => {
    const item = vp.item;
    const linking = vp.app.linking;
    if (!item || !linking) return;
    linking.setCrosshair(vp, clampPoint(vp.toImage(event.clientX, event.clientY), item.columns, item.rows));
  };
  return dragMode(vp, {
    name: "crosshair",
    button,
    cursor: "crosshair",
    begin(event) {
      place(event);
      return { move: place };
    },
  });
}
