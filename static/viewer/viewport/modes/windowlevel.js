// Window/level drag: right and left moves the width, up and down the centre, previewed on the
// client at once (final: false) and asked of the server at the end. Bound to the right button
// always, and to the primary button with the W tool.
import { fallbackWindow } from "../../stack.js";
import { dragMode } from "./gesture.js";

export function windowLevelMode(vp, { button = 0 } = {}) {
  const finish = () => { if (vp.window) vp.setWindow(vp.window, { final: true }); };
  return dragMode(vp, {
    name: "wl",
    button,
    cursor: button === 0 ? "ns-resize" : "",
    begin(event) {
      if (vp.meta && vp.meta.color) return null;
      const start = [event.clientX, event.clientY];
      const begin = vp.effectiveWindow() || fallbackWindow(vp.meta);
      const move = (e) => {
        const k = Math.max(begin.width, 20) / 300;
        vp.setWindow({ center: begin.center + (e.clientY - start[1]) * k, width: Math.max(1, begin.width + (e.clientX - start[0]) * k) }, { final: false });
      };
      const up = (e) => { if (e.clientX !== start[0] || e.clientY !== start[1]) move(e); finish(); };
      return { move, up };
    },
    cancel: finish,
  });
}
