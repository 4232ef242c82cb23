// The viewer's event bus: the one seam between the viewer and the collaboration layer
// (static/collab/). See docs/viewer.md for the events and their payloads.
const target = new EventTarget();
const wrapped = new Map(); // handler -> Map(type -> listener)

export function on(type, handler) {
  const listener = (event) => handler(event.detail);
  if (!wrapped.has(handler)) wrapped.set(handler, new Map());
  wrapped.get(handler).set(type, listener);
  target.addEventListener(type, listener);
}

export function off(type, handler) {
  const listener = wrapped.get(handler)?.get(type);
  if (!listener) return;
  target.removeEventListener(type, listener);
  wrapped.get(handler).delete(type);
}

export function emit(type, detail) {
  target.dispatchEvent(new CustomEvent(type, { detail }));
}
