// The pointer over the image, buttons up: its image position goes out as the `cursor` event
// (null when it leaves the image). On whatever the tool.
import { listeners } from "./gesture.js";

export function hoverMode(vp) {
  const on = listeners();
  const move = (event) => {
    if (!vp.stack || event.buttons) return;
    const item = vp.item;
    const [x, y] = vp.toImage(event.clientX, event.clientY);
    const inside = item && item.sop && x >= 0 && y >= 0 && x <= item.columns && y <= item.rows;
    vp.app.cursor(vp, inside ? { instance: item.sop, frame: item.frame, x, y } : null);
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
