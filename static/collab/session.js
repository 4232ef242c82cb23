// Reading-session mode of the viewer (loaded when the page has ?session=<id>): connects the session
// websocket, renders the panel into #collab-panel, bridges the viewer's bus to the protocol and back,
// and installs a websocket transport for annotations. Contract: docs/viewer.md, docs/protocol.md.
import * as bus from "../viewer/bus.js";
import * as annotations from "../viewer/annotations.js";
import { Connection, newRef } from "./connection.js";
import { dispatch } from "./events.js";
import { mountPanel } from "./panel.js";
import { state, changed, presenter } from "./state.js";

document.head.append(Object.assign(document.createElement("link"), { rel: "stylesheet", href: new URL("./collab.css", import.meta.url).href }));
const boot = JSON.parse(document.getElementById("boot").textContent);
const currentStudy = boot.outline && boot.outline.study;
let known = new Set(); // ids of the session's annotations this reader may see

function reconcile() {
  for (const annotation of annotations.all()) {
    if (!annotation.pending && !known.has(annotation.id)) annotations.applyRemote({ type: "deleted", annotation: { id: annotation.id } });
  }
}

const hooks = {
  snapshot(list) {
    known = new Set(list.map((a) => a.id));
    reconcile(); // what the snapshot lacks (deleted meanwhile, or not ours to see) goes
    for (const annotation of list) annotations.applyRemote({ type: "created", annotation });
  },
  cursors() { bus.emit("remote-cursors", { cursors: [...state.cursors.values()] }); },
  viewport(viewport) {
    const lead = presenter();
    if (!state.following || !lead || viewport.user !== lead.user) return;
    if (viewport.study && viewport.study !== currentStudy) {
      const target = state.session.cases.find((c) => c.study === viewport.study);
      if (target) location.assign(target.viewer);
      return;
    }
    const { series, instance, frame, window, zoom, pan, invert, linked, registrations, crosshair, mpr } = viewport;
    bus.emit("apply-viewport", { series, instance, frame, window, zoom, pan, invert, linked, registrations, crosshair, mpr });
  },
  draft(draft) {
    if (!draft.points || !draft.points.length) bus.emit("remote-draft-clear", { user: draft.user });
    else bus.emit("remote-draft", draft);
  },
  annotation(frame) {
    if (frame.type === "annotation.deleted") {
      known.delete(frame.id);
      annotations.applyRemote({ type: "deleted", annotation: { id: frame.id } });
      return;
    }
    known.add(frame.annotation.id);
    annotations.applyRemote({ type: frame.type === "annotation.created" ? "created" : "updated", annotation: frame.annotation });
    if (frame.type === "annotation.created") bus.emit("remote-draft-clear", { user: frame.annotation.author });
  },
  error(frame) { console.warn("collab:", frame.code, frame.message); },
};

const connection = new Connection(boot.session, {
  onFrame: (frame) => dispatch(frame, hooks),
  onStatus: (status, code) => {
    state.status = status === "refused" ? `refused (${code})` : status;
    for (const user of state.cursors.keys()) state.cursors.delete(user);
    hooks.cursors();
    changed("status");
  },
});

function asHttpError(frame) {
  const status = { conflict: 409, not_found: 404, forbidden: 403, rate_limited: 429 }[frame.code] || 400;
  return Object.assign(new Error(frame.message), { status, body: { code: frame.code, detail: frame.message, annotation: frame.annotation } });
}

annotations.setTransport({
  create: (fields) => connection.request({
    type: "annotation.create", ref: fields.client_ref || newRef(),
    annotation: { ...annotations.imageFields(fields), kind: fields.kind, points: fields.points, label: fields.label || "" },
  }).then((reply) => {
    if (reply.type === "annotation.deleted") throw Object.assign(new Error("Deleted meanwhile."), { status: 404 });
    known.add(reply.annotation.id);
    return reply.annotation;
  }, (frame) => { throw asHttpError(frame); }),
  update: (id, version, fields) => connection.request({ type: "annotation.update", ref: newRef(), id, version, annotation: fields })
    .then((reply) => reply.annotation, (frame) => { throw asHttpError(frame); }),
  remove: (id) => connection.request({ type: "annotation.delete", ref: newRef(), id })
    .then(() => undefined, (frame) => { throw asHttpError(frame); }),
  list: async () => annotations.all().filter((a) => known.has(a.id)),
});
annotations.subscribe((reason) => { if (reason === "load") reconcile(); }); // the viewer's first load

// The viewer's events to the others (the server coalesces; viewports are also thinned here).
// On a reformatted plane (MPR) cursors and drafts name the plane ({series, plane, index}), not an instance.
bus.on("cursor", (c) => {
  if (!c || c.x == null) return;
  const at = c.plane ? { plane: c.plane } : { instance: c.instance, frame: c.frame || 1 };
  connection.send({ type: "cursor", ...at, x: c.x, y: c.y });
});
bus.on("annotation.draft", (d) => connection.send({ type: "annotation.draft", ...d, points: d.points || [] }));
let viewportTimer = null;
let lastViewport = null;
bus.on("viewport", (v) => {
  if (v.remote) return; // following the presenter: that view is theirs, not ours to re-send
  if (v.driven) return; // moved by linked scrolling or the crosshairs: the viewport that moved it was sent
  const { remote: _remote, driven: _driven, ...view } = v;
  lastViewport = { type: "viewport", study: currentStudy, ...view };
  if (!viewportTimer) viewportTimer = setTimeout(() => { viewportTimer = null; connection.send(lastViewport); }, 66);
});

mountPanel(document.getElementById("collab-panel"), { currentStudy });
window.crossreadSession = { connection, state };
