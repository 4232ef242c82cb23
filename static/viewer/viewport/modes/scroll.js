// Wheel over the image: stack scroll (one slice per notch, trackpads accumulate 50 pixels a
// slice); with Ctrl (or Cmd), zoom about the pointer. On whatever the tool.
import { listeners } from "./gesture.js";

export function scrollMode(vp) {
  const on = listeners();
  let rest = 0;
  const wheel = (event) => {
    event.preventDefault();
    vp.takeOver();
    if (!vp.stack) return;
    if (event.ctrlKey || event.metaKey) { vp.zoomAt(Math.exp(-event.deltaY / 300), event.clientX, event.clientY); return; }
    const delta = event.deltaMode === 1 ? event.deltaY * 33 : event.deltaY;
    if (Math.abs(delta) >= 50) { rest = 0; vp.step(Math.sign(delta)); return; }
    rest += delta;
    if (Math.abs(rest) >= 50) { vp.step(Math.sign(rest)); rest = 0; }
  };
  return {
    name: "scroll",
    enter() { on.add(vp.overlay, "wheel", wheel, { passive: false }); },
    exit() { on.removeAll(); rest = 0; },
  };
}
