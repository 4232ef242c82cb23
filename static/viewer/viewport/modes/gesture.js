// One pointer gesture on a viewport's overlay: from a pointerdown, with the pointer captured, until
// pointerup or pointercancel. Not a mode: the drag modes start their gestures with it.

/**
 * Follow the gesture started by `event` on `svg`: move(e) on every pointermove, up(e) at the end.
 * Returns cancel(), which removes the listeners without calling `up` (a mode's exit).
 */
export function startGesture(svg, event, { move = null, up = null }) {
  event.preventDefault();
  svg.setPointerCapture(event.pointerId);
  const onMove = (e) => move && move(e);
  const remove = () => {
    svg.removeEventListener("pointermove", onMove);
    svg.removeEventListener("pointerup", onUp);
    svg.removeEventListener("pointercancel", onUp);
  };
  function onUp(e) {
    remove();
    if (up) up(e);
  }
  svg.addEventListener("pointermove", onMove);
  svg.addEventListener("pointerup", onUp);
  svg.addEventListener("pointercancel", onUp);
  return () => {
    remove();
    if (svg.hasPointerCapture(event.pointerId)) svg.releasePointerCapture(event.pointerId);
  };
}

/** A listener set that a mode installs in enter() and removes in exit(). */
export function listeners() {
  const installed = [];
  return {
    add(target, type, listener, options) {
      target.addEventListener(type, listener, options);
      installed.push([target, type, listener, options]);
    },
    removeAll() {
      for (const [target, type, listener, options] of installed.splice(0)) target.removeEventListener(type, listener, options);
    },
  };
}

/**
 * A mode driven by drags of one pointer button on the viewport's overlay. begin(event) is called
 * on a pointerdown of that button while an image is shown; it returns {move, up} to follow the
 * gesture, or null to leave the event alone. exit() removes the listener and ends a gesture in
 * progress without its `up`, calling cancel() instead. `cursor` is shown while the mode is on.
 */
export function dragMode(vp, { name, button, cursor = "", begin, cancel = null }) {
  const on = listeners();
  let stop = null;
  const pointerDown = (event) => {
    if (event.button !== button || !vp.stack || !vp.shown) return;
    const handlers = begin(event);
    if (!handlers || (!handlers.move && !handlers.up)) return;
    const { move, up } = handlers;
    stop = startGesture(vp.overlay, event, { move, up: (e) => { stop = null; if (up) up(e); } });
  };
  return {
    name,
    enter() {
      on.add(vp.overlay, "pointerdown", pointerDown);
      if (cursor) vp.overlay.style.cursor = cursor;
    },
    exit() {
      on.removeAll();
      if (cursor) vp.overlay.style.cursor = "";
      if (stop) {
        stop();
        stop = null;
        if (cancel) cancel();
      }
    },
  };
}
