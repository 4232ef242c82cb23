// Pan drag: the picture follows the pointer. Bound to the middle button always, and to the
// primary button with the P tool.
import { dragMode } from "./gesture.js";

/** The move handler of a pan that starts at `event` (also used by the pointer tool on empty image). */
export function panFollowing(vp, event) {
  let last = [event.clientX, event.clientY];
  return (e) => { vp.panBy(e.clientX - last[0], e.clientY - last[1]); last = [e.clientX, e.clientY]; };
}

export function panMode(vp, { button = 0 } = {}) {
  return dragMode(vp, {
    name: "pan",
    button,
    cursor: button === 0 ? "grab" : "",
    begin: (event) => ({ move: panFollowing(vp, event) }),
  });
}
