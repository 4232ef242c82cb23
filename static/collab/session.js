// Reading-session mode of the viewer (loaded when the page has ?session=<id>): connects the session
// websocket, renders the panel into #collab-panel, bridges the viewer's bus to the protocol and back,
// and installs a websocket transport for annotations. Contract: docs/viewer.md, docs/protocol.md.
import * as bus from "../viewer/bus.js";
import * as annotations from "../viewer/annotations.js";
import { Connection, newRef } from "./connection.js";
import { dispatch } from "./events.js";
import { mountPanel } from "./panel.js";
import { MeshSignalling } from "./signalling.js";
import { Call } from "./call.js";
import { mountCallPanel } from "./call_panel.js";
import { mountChat } from "./chat.js";
import { state, changed, presenter, subscribe } from "./state.js";

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
  call(peers) { if (call) call.setRoster(peers); },
  signal(frame) { if (signalling) signalling.receive(frame); },
  chat(message) { if (chat) chat.add(message); },
  chatSnapshot(list) { if (chat) chat.snapshot(list); },
};
let signalling = null;
let call = null;
let chat = null;

const connection = new Connection(boot.session, {
  onFrame: (frame) => dispatch(frame, hooks),
  onStatus: (status, code) => {
    state.status = status === "refused" ? `refused (${code})` : status;
    if (status !== "online" && call && call.active) call.leave({ tell: false }); // a new connection is not in the call
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

// The panel: the session (panel.js), the call (call.js, call_panel.js) and the chat (chat.js).
const aside = document.getElementById("collab-panel");
const [sessionPart, callPart, chatPart] = ["div", "section", "section"].map((tag) => document.createElement(tag));
aside.append(sessionPart, callPart, chatPart);
mountPanel(sessionPart, { currentStudy });

signalling = new MeshSignalling(connection);
call = new Call(signalling, { me: boot.user || "" });
const callPanel = mountCallPanel(callPart, call);
subscribe((what) => { if (what === "state" || what === "session" || what === "presence") callPanel.draw(); });
if (state.you) call.me = state.you.user;
subscribe((what) => { if (what === "state" && state.you) call.me = state.you.user; });

// "Look here": the view of the active viewport (and the pointer's last place on it) goes with a
// message; clicking one opens it: in this case at once, in another case of the session after loading.
let lastPoint = null;
bus.on("cursor", (c) => { if (c && c.x != null && !c.plane) lastPoint = { instance: c.instance, frame: c.frame || 1, point: [c.x, c.y] }; });
function currentView() {
  const app = window.crossread && window.crossread.app;
  const vp = app && (app.activeViewport || app.viewports[0]);
  if (!vp || !vp.stack) return null;
  const s = vp.state();
  const view = { study: s.study || currentStudy, series: s.series, instance: s.instance, frame: s.frame || 1 };
  if (s.window) view.window = { center: s.window.center, width: s.window.width };
  if (s.zoom) view.zoom = s.zoom;
  if (lastPoint && lastPoint.instance === s.instance && lastPoint.frame === view.frame) view.point = lastPoint.point;
  for (const key of Object.keys(view)) if (view[key] == null) delete view[key];
  return view;
}
const LOOK = "collab-look";
function openView(view) {
  if (view.study === currentStudy) {
    const { series, instance, frame, window: win, zoom } = view;
    bus.emit("apply-viewport", { series, instance, frame, window: win, zoom });
    return;
  }
  const target = state.session && state.session.cases.find((c) => c.study === view.study);
  if (!target) return; // not a case of this session as this reader is told them
  sessionStorage.setItem(LOOK, JSON.stringify(view));
  location.assign(target.viewer);
}
const pending = JSON.parse(sessionStorage.getItem(LOOK) || "null");
if (pending && pending.study === currentStudy) {
  sessionStorage.removeItem(LOOK);
  const ready = () => document.body.hasAttribute("data-first-image");
  const apply = () => openView(pending);
  if (ready()) apply();
  else new MutationObserver((_, observer) => { if (ready()) { observer.disconnect(); apply(); } })
    .observe(document.body, { attributes: true, attributeFilter: ["data-first-image"] });
}
chat = mountChat(chatPart, { connection, currentView, openView });

window.crossreadSession = { connection, state, call, chat };
