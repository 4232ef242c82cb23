// The pointer over the image, buttons up: its image position goes out as the `cursor` event
// (null when it leaves the image). On whatever the tool.
import { listeners } from "./gesture.js";

export function hoverMode(vp) {
  const on = listeners();
  const move = (event) => {
    if (!vp.stack || event.buttons) return;
    const item = vp.item;
    const [x, y] = vp.toImage(event.clientX, event.clientY);
    const inside = item && (item.sop || item.plane) && x >= 0 && y >= 0 && x <= item.columns && y <= item.rows;
    // on a reformatted plane (MPR) the position names the plane ({series, plane, index}), not an instance
    const at = item && item.plane ? { instance: null, frame: null, plane: item.plane } : { instance: item && item.sop, frame: item && item.frame };
    vp.app.cursor(vp, inside ? { ...at, x, y } : null);
  };
  const leave = () => vp.app.cursor(vp, null);
  return {
    name: "hover",
    enter() {
      on.add(vp.overlay, "pointermove", move);
      on.add(vp.overlay, "pointerleave", leave);
    },
    exit() { on.removeAll(); },
  };
}
