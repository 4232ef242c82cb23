// The viewer page: layout, series panel, toolbar, keyboard, annotations wiring and the events of
// the collaboration contract (docs/viewer.md). The page template hands over a "boot" object:
// project, user, role, the study outline (series and their images in order) and window presets.
import { dicomJson, dicomweb } from "./api.js";
import * as annotations from "./annotations.js";
import * as bus from "./bus.js";
import { editInline, installLabels, showSelected } from "./labels.js";
import * as loader from "./loader.js";
import { Stack } from "./stack.js";
import { TOOLS, measurementLines as measurementText } from "./tools.js";
import { Viewport } from "./viewport.js";
import * as layouts from "./layouts.js";
import * as presets from "./presets.js";
import { startViewingReport } from "./viewing_report.js";

const boot = JSON.parse(document.getElementById("boot").textContent);
const { LAYOUTS } = layouts; // name -> viewports (layouts.js); mpr: axial, sagittal, coronal (mpr.js)
const CURSOR_INTERVAL = 33; // ms: about 30 cursor events per second at most

/**
 * `send(value)` at most once per `interval` ms: the first at once, and the latest one held back at the
 * end of the interval, so where the pointer comes to rest (or a draft's last shape) always goes out.
 */
function throttle(interval, send) {
  let last = -Infinity;
  let timer = null;
  let latest = null;
  const flush = () => {
    timer = null;
    if (latest === null) return;
    const value = latest;
    latest = null;
    last = performance.now();
    send(value);
  };
  const throttled = (value) => {
    const now = performance.now();
    if (timer === null && now - last >= interval) { last = now; send(value); return; }
    latest = value;
    if (timer === null) timer = setTimeout(flush, Math.max(0, interval - (now - last)));
  };
  throttled.cancel = () => { latest = null; if (timer !== null) { clearTimeout(timer); timer = null; } };
  return throttled;
}
const sendCursor = throttle(CURSOR_INTERVAL, (position) => bus.emit("cursor", position));
const sendDraft = throttle(CURSOR_INTERVAL, (draft) => bus.emit("annotation.draft", draft));

const app = {
  project: boot.project,
  user: boot.user,
  role: boot.role,
  canWrite: boot.canWrite,
  outline: boot.outline,
  outlines: [boot.outline, ...(boot.related || [])], // this study, then the patient's others
  get allSeries() { return this.outlines.flatMap((o) => o.series.map((series) => ({ outline: o, series }))); },
  presets: boot.presets,
  presetOrders: boot.presetOrders || {},
  userPresets: boot.userPresets || [],
  web: dicomweb(boot.project),
  viewports: [],
  activeViewport: null,
  layout: "1x1",
  tool: "pointer",
  selected: null,
  remote: { cursors: [], drafts: new Map() },
  stacks: new Map(),
  linking: null, // linking.js: linked scrolling, reference lines, crosshairs (imported after the page's first graph)
  mpr: null, // mpr.js: the MPR layout (imported after the first image, or when asked for)
  metadataRequests: new Map(),
  undoStack: [],
  redoStack: [], // undone actions, redone by Ctrl+Shift+Z / Ctrl+Y; a new action empties it
  replacedIds: new Map(), // id of a deleted mark -> id of its re-creation by undo
  framesShown: 0,
  firstImageAt: 0,
  frameLog: [], // [time, slice] of the frames drawn, for the benchmark

  // ---------------------------------------------------------------- series and viewports

  stackFor(uid) {
    if (!this.stacks.has(uid)) {
      const found = this.allSeries.find((entry) => entry.series.uid === uid);
      if (!found) return null;
      this.stacks.set(uid, new Stack(found.outline, found.series));
    }
    return this.stacks.get(uid);
  },

  loadMetadata(stack) {
    if (this.metadataRequests.has(stack.series)) return this.metadataRequests.get(stack.series);
    const promise = dicomJson(this.web.seriesMetadata(stack.study, stack.series))
      .then(({ data }) => {
        stack.setMetadata(data);
        for (const viewport of this.viewports) if (viewport.stack === stack) viewport.metadataChanged();
        if (this.linking) { this.linking.hang(); this.redrawOverlays(); }
        if (this.activeViewport && this.activeViewport.stack === stack) this.fillPresets();
      })
      .catch((error) => this.toast(`The series metadata could not be loaded: ${error.message}`));
    this.metadataRequests.set(stack.series, promise);
    return promise;
  },

  loadSeries(uid, viewport = this.activeViewport, options = {}) {
    if (this.mpr && this.mpr.active) { this.mpr.enter(uid); return; } // in MPR: reformat that series
    const stack = this.stackFor(uid);
    if (!stack || !viewport) return;
    viewport.setStack(stack, options);
    this.loadMetadata(stack);
    if (this.linking) this.linking.hang();
    this.markSeries();
    if (viewport === this.activeViewport) this.fillPresets();
  },

  activate(viewport) {
    if (this.activeViewport === viewport) return;
    this.activeViewport = viewport;
    for (const v of this.viewports) v.root.classList.toggle("active", v === viewport);
    this.markSeries();
    this.fillPresets();
    viewport.drawOverlay();
    viewport.referenceChanged(true); // the reference lines are now this viewport's slice
  },

  setLayout(name, { fill = true } = {}) {
    const count = LAYOUTS[name];
    if (!count) return;
    if (this.mpr && this.mpr.active && name !== "mpr") { this.mpr.leave(name); return; } // restores the series, then this layout
    this.layout = name;
    const container = document.getElementById("viewports");
    container.className = `viewports layout-${name}`;
    while (this.viewports.length < count) {
      const viewport = new Viewport(this, this.viewports.length);
      this.viewports.push(viewport);
      container.append(viewport.root);
      viewport.root.addEventListener("focus", () => this.activate(viewport));
    }
    this.viewports.forEach((viewport, i) => {
      viewport.root.hidden = i >= count;
      if (i >= count) viewport.stopPlay();
    });
    // Fill new viewports with the next series not on screen.
    const shown = new Set(this.viewports.slice(0, count).filter((v) => v.stack).map((v) => v.stack.series));
    for (const viewport of this.viewports.slice(0, count)) {
      if (viewport.stack || !fill) continue;
      // the next series of this study, else of the patient's other studies (a prior beside the current)
      const next = this.allSeries.find((entry) => !shown.has(entry.series.uid)) || this.allSeries[0];
      if (next) { shown.add(next.series.uid); this.loadSeries(next.series.uid, viewport); }
    }
    if (!this.activeViewport || this.activeViewport.root.hidden) this.activate(this.viewports[0]);
    if (this.linking) { this.linking.hang(); this.redrawOverlays(); }
    for (const button of document.querySelectorAll("[data-layout]")) button.setAttribute("aria-pressed", String(button.dataset.layout === name));
    for (const viewport of this.viewports) viewport.resize();
  },

  /** Linked scrolling, reference lines and crosshairs (linking.js), imported after the first image. */
  loadLinking() {
    if (this.linkingLoad) return;
    this.linkingLoad = import("./linking.js").then(({ Linking }) => {
      this.linking = new Linking(this);
      this.linking.hang();
      this.redrawOverlays();
      document.body.dataset.linking = "ready"; // (the browser tests wait for it, as for data-modes)
    });
  },

  /** The MPR layout (mpr.js), imported after the first image or when asked for. */
  loadMpr() {
    this.mprLoad ||= import("./mpr.js").then(({ Mpr }) => (this.mpr = new Mpr(this)));
    return this.mprLoad;
  },

  markSeries() {
    const uid = this.activeViewport && this.activeViewport.stack && this.activeViewport.stack.series;
    for (const item of document.querySelectorAll("#series-list button")) item.setAttribute("aria-current", String(item.dataset.series === uid));
  },

  firstImage(viewport) {
    this.firstImageAt = performance.now();
    document.body.dataset.firstImage = String(Math.round(this.firstImageAt));
    for (const v of this.viewports) v.schedulePrefetch();
    buildSeriesPanel(); // thumbnails after the first image: they would compete with it
    this.loadLinking();
    this.loadMpr();
    loadToolbox();
    void viewport;
  },

  // ---------------------------------------------------------------- tools and annotations

  setTool(tool) {
    if (!["pointer", "wl", "pan", "zoom", "crosshair", "loupe", ...Object.keys(TOOLS)].includes(tool)) return;
    if (TOOLS[tool] && !this.canWrite) { this.toast("Your role in this project can view but not annotate."); return; }
    this.tool = tool;
    for (const viewport of this.viewports) viewport.setTool(tool); // the old tool's mode exits, the new one's enters
    for (const button of document.querySelectorAll("[data-tool]")) button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
    document.getElementById("viewports").dataset.tool = tool;
  },

  select(id) {
    this.selected = id;
    for (const viewport of this.viewports) viewport.drawOverlay();
    showSelected(this, id);
    if (this.toolbox) this.toolbox.selected(id); // the measurement table marks its row
  },

  mayEdit(annotation) {
    return this.canWrite && (annotation.author === this.user || this.role === "organizer");
  },

  // Undo entries are pushed when the action starts (not when the server answers), so Ctrl+Z right
  // after an action undoes that action; an entry waits for its action to finish.
  currentId(id) {
    let current = id;
    while (this.replacedIds.has(current)) current = this.replacedIds.get(current);
    return current;
  },

  pushUndo(pending, undo, redo) {
    const entry = { undo: async () => undo(await pending), redo: async () => redo(await pending) };
    this.undoStack.push(entry);
    this.redoStack = [];
    pending.catch(() => { this.undoStack = this.undoStack.filter((e) => e !== entry); });
  },

  /** Remove mark `id` (its latest id) and return a function that creates it again as it was. */
  removeForUndo(id) {
    const current = this.currentId(id);
    const before = annotations.get(current);
    return annotations.remove(current).then(() => before);
  },

  /** Create again a mark removed by an undo or a delete; older entries naming its old id find the new one. */
  async recreate(annotation) {
    const { kind, points, label } = annotation;
    const again = await annotations.create({ ...annotations.imageFields(annotation), kind, points, label }, { author: this.user });
    this.replacedIds.set(annotation.id, again.id);
    return again;
  },

  async createAnnotation(fields, asksLabel = false) {
    const pending = annotations.create(fields, { author: this.user });
    let removed = null; // the mark as it was when its creation was undone
    this.pushUndo(pending, async (saved) => { removed = await this.removeForUndo(saved.id); },
      async (saved) => this.recreate(removed || saved));
    try {
      const saved = await pending;
      this.select(saved.id);
      if (asksLabel) {
        const viewport = this.activeViewport;
        const [x, y] = viewport.imageToClient(...saved.points[saved.points.length - 1]);
        this.editLabel(annotations.get(saved.id), x, y);
      }
    } catch (error) {
      this.toast(`Not saved: ${error.message}`);
    }
  },

  /** Change a mark's points and/or label. `version`: the version the change is based on (default:
   * the one known now). Returns null when saved, else the error; `quiet`: the caller tells the user. */
  async updateAnnotation(annotation, fields, { version, quiet = false } = {}) {
    const before = Object.fromEntries(Object.keys(fields).map((key) => [key, annotation[key]]));
    const pending = annotations.update(annotation.id, fields, { version });
    const after = { ...fields };
    const change = (values) => (saved) => {
      const id = this.currentId(saved.id);
      return annotations.get(id) ? annotations.update(id, values) : null;
    };
    this.pushUndo(pending, change(before), change(after));
    try {
      await pending;
      return null;
    } catch (error) {
      if (quiet) return error;
      if (error.status === 409) this.toast("Someone changed this annotation meanwhile; their version is shown.");
      else this.toast(`Not saved: ${error.message}`);
      return error;
    }
  },

  async deleteSelected() {
    const annotation = this.selected !== null && annotations.get(this.selected);
    if (!annotation) return;
    if (!this.mayEdit(annotation)) { this.toast("Only the author or an organizer can delete this."); return; }
    this.select(null);
    const pending = annotations.remove(annotation.id);
    let removed = annotation; // as it was when deleted (a redo deletes it again, an undo re-creates it)
    this.pushUndo(pending, async () => { await this.recreate(removed); },
      async () => { removed = await this.removeForUndo(annotation.id); });
    try {
      await pending;
    } catch (error) {
      this.toast(`Not deleted: ${error.message}`);
    }
  },

  /** Undo the last action; undos and redos run one after the other (each may wait for the server). */
  undo() { return this.replay(this.undoStack, this.redoStack, "undo", "Undo"); },

  /** Redo the last undone action (Ctrl+Shift+Z, Ctrl+Y). */
  redo() { return this.replay(this.redoStack, this.undoStack, "redo", "Redo"); },

  replay(from, to, step, name) {
    const action = from.pop();
    if (!action) { this.toast(`Nothing to ${step}.`); return this.undoing; }
    to.push(action); // at once: a redo pressed while its undo still waits for the server follows it
    this.undoing = (this.undoing || Promise.resolve())
      .then(() => action[step]())
      .catch((error) => {
        const at = to.indexOf(action);
        if (at >= 0) to.splice(at, 1);
        this.toast(`${name} failed: ${error.message}`);
      });
    return this.undoing;
  },

  /** The inline label editor over the mark's text (labels.js); `viewport`: where the mark is shown. */
  editLabel(annotation, clientX, clientY, viewport = this.activeViewport) {
    editInline(this, annotation, clientX, clientY, viewport);
  },

  listMeasurements(list, meta) {
    const ol = document.getElementById("measurement-list");
    ol.replaceChildren(...list.map((annotation) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "measurement";
      button.dataset.id = String(annotation.id);
      button.setAttribute("aria-pressed", String(annotation.id === this.selected));
      const lines = measurementText(annotation, meta);
      button.innerHTML = "";
      const title = document.createElement("strong");
      title.textContent = `${TOOLS[annotation.kind] ? TOOLS[annotation.kind].label.split(" (")[0] : annotation.kind}`;
      const body = document.createElement("span");
      body.className = "measure-value";
      body.textContent = lines.join(" · ");
      const who = document.createElement("span");
      who.className = "muted small";
      who.textContent = annotation.pending ? "saving…" : annotation.author;
      button.append(title, body, who);
      button.addEventListener("click", () => this.select(annotation.id));
      li.append(button);
      return li;
    }));
    if (!list.length) ol.innerHTML = '<li class="muted small">No marks on this image.</li>';
  },

  // ---------------------------------------------------------------- collaboration events

  cursor(viewport, position) {
    void viewport;
    if (!position) { sendCursor.cancel(); bus.emit("cursor", { instance: null, frame: null, x: null, y: null }); return; }
    sendCursor(position);
  },

  draft(draft) {
    if (!draft) { sendDraft.cancel(); bus.emit("annotation.draft", { instance: null, frame: null, kind: null, points: [], label: "" }); return; }
    if (!draft.instance && !draft.plane) return;
    // on a reformatted plane (MPR) the draft names its plane ({series, plane, index}) instead of an instance
    const at = draft.plane ? annotations.imageFields(draft) : { instance: draft.instance, frame: draft.frame };
    sendDraft({ ...at, kind: draft.kind, points: [...draft.points], label: "" });
  },

  redrawOverlays() { for (const viewport of this.viewports) viewport.drawOverlay(); },

  toast(message) {
    const box = document.getElementById("toasts");
    const item = document.createElement("p");
    item.textContent = message;
    box.append(item);
    setTimeout(() => item.remove(), 5000);
  },

  fillPresets() { presets.fill(this); },

  /** The presets of `modality` for the active series (its body region), in number-key order (presets.js). */
  presetsFor(modality) { return presets.presetsFor(this, modality); },

  applyPreset(id) { presets.apply(this, id); },
};

// ------------------------------------------------------------------ series panel

function buildSeriesPanel() {
  const list = document.getElementById("series-list");
  if (list.childElementCount) return;
  app.outlines.forEach((outline, index) => {
    if (app.outlines.length > 1) {
      const heading = document.createElement("li");
      heading.className = "study-heading";
      // a trial read's studies are its time points (label and day, no date: blinded)
      heading.textContent = outline.label ? `${outline.label} · day ${outline.day}` : `${index === 0 ? "This study" : "Other study"} · ${formatDate(outline.studyDate)}`;
      heading.title = outline.studyDescription || "";
      list.append(heading);
    }
    for (const series of outline.series) list.append(seriesItem(outline, series));
  });
  app.markSeries();
}

function seriesItem(outline, series) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "series";
  button.dataset.series = series.uid;
  button.dataset.study = outline.study;
  button.draggable = true;
  const frames = series.instances.reduce((sum, i) => sum + i[1], 0);
  button.setAttribute("aria-label", `Series ${series.number ?? ""} ${series.description || ""}, ${series.modality}, ${frames} images, ${outline.label ? outline.label : `study of ${formatDate(outline.studyDate)}`}`);
  const img = document.createElement("img");
  img.alt = "";
  img.width = img.height = 96;
  img.loading = "lazy";
  img.src = app.web.seriesThumbnail(outline.study, series.uid);
  const text = document.createElement("span");
  const title = document.createElement("strong");
  title.textContent = `${series.modality} · Se ${series.number ?? "–"}`;
  const description = document.createElement("span");
  description.textContent = series.description || "";
  const count = document.createElement("span");
  count.className = "muted small";
  count.textContent = `${frames} image${frames === 1 ? "" : "s"}`;
  text.append(title, description, count);
  button.append(img, text);
  button.addEventListener("click", () => app.loadSeries(series.uid));
  button.addEventListener("dragstart", (event) => event.dataTransfer.setData("text/x-series", series.uid));
  li.append(button);
  return li;
}

function formatDate(da) {
  return da && /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : da || "";
}

// ------------------------------------------------------------------ toolbar and keyboard

for (const button of document.querySelectorAll("[data-layout]")) button.addEventListener("click", () => layouts.choose(app, button.dataset.layout));
layouts.install(app); // the layout menu
for (const button of document.querySelectorAll("[data-tool]")) button.addEventListener("click", () => app.setTool(button.dataset.tool));
document.getElementById("preset").addEventListener("change", (event) => app.applyPreset(event.target.value));

const actions = {
  invert: () => app.activeViewport.setInvert(!app.activeViewport.invert),
  fit: () => app.activeViewport.fit(),
  actual: () => app.activeViewport.actualSize(),
  reset: () => { const v = app.activeViewport; v.invert = false; v.rotation = 0; v.flipH = v.flipV = false; v.setWindow(null); v.fit(); document.getElementById("preset").value = ""; },
  rotate: () => app.activeViewport.rotate(1),
  rotateLeft: () => app.activeViewport.rotate(-1),
  flipH: () => app.activeViewport.flip("h"),
  flipV: () => app.activeViewport.flip("v"),
  redo: () => app.redo(),
  presets: () => presets.openManager(app),
  cine: () => app.activeViewport.togglePlay(),
  undo: () => app.undo(),
  delete: () => app.deleteSelected(),
  help: () => document.getElementById("shortcuts").showModal(),
  linked: () => { if (app.linking) app.linking.setOn(!app.linking.on); },
  mpr: () => app.loadMpr().then((mpr) => mpr.toggle()),
  link: () => {
    if (!app.linking) return;
    const count = app.linking.linkOnScreen();
    app.toast(count ? "Linked: the slices on screen now match, and scroll together." : "Nothing to link: show a parallel series of another study or frame of reference beside this one.");
  },
};
for (const button of document.querySelectorAll("[data-action]")) {
  button.addEventListener("click", () => { app.activeViewport.takeOver(); actions[button.dataset.action](); });
}

const TOOL_KEYS = { v: "pointer", w: "wl", p: "pan", z: "zoom", c: "crosshair", u: "loupe", ...Object.fromEntries(Object.entries(TOOLS).map(([name, tool]) => [tool.key, name])) };

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target.closest && target.closest("input, select, textarea, dialog[open]")) return;
  const viewport = app.activeViewport;
  if (!viewport) return;
  viewport.takeOver();
  const key = event.key;
  if ((event.ctrlKey || event.metaKey) && (key.toLowerCase() === "y" || (key.toLowerCase() === "z" && event.shiftKey))) { event.preventDefault(); app.redo(); return; }
  if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "z") { event.preventDefault(); app.undo(); return; }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.shiftKey && /^Digit[123]$/.test(event.code)) { layouts.choose(app, ["1x1", "1x2", "2x2"][Number(event.code.slice(5)) - 1]); return; }
  if (event.shiftKey && event.code === "Digit4") { actions.mpr(); event.preventDefault(); return; }
  if (event.shiftKey && event.code === "Digit0") { app.applyPreset(""); event.preventDefault(); return; } // as acquired
  const handled = () => event.preventDefault();
  switch (key) {
    case "ArrowDown": case "ArrowRight": viewport.step(1); return handled();
    case "ArrowUp": case "ArrowLeft": viewport.step(-1); return handled();
    case "PageDown": viewport.step(10); return handled();
    case "PageUp": viewport.step(-10); return handled();
    case "Home": if (viewport.stack) viewport.setIndex(0); return handled();
    case "End": if (viewport.stack) viewport.setIndex(viewport.stack.length - 1); return handled();
    case " ": viewport.togglePlay(); return handled();
    case "Delete": case "Backspace": app.deleteSelected(); return handled();
    case "Escape":
      if (viewport.draft) { viewport.draft = null; app.draft(null); viewport.drawOverlay(); }
      if (app.linking && app.linking.crosshair) { app.linking.placeCrosshair(null); viewport.announce(); }
      app.select(null);
      app.setTool("pointer");
      return handled();
    case "?": actions.help(); return handled();
    case "+": case "=": viewport.zoomAt(1.25); return handled();
    case "-": viewport.zoomAt(0.8); return handled();
    case "[": case "]": {
      const list = app.allSeries;
      const at = list.findIndex((entry) => viewport.stack && entry.series.uid === viewport.stack.series);
      const next = list[(at + (key === "]" ? 1 : list.length - 1)) % list.length];
      if (next) app.loadSeries(next.series.uid);
      return handled();
    }
    default: break;
  }
  if (/^[0-9]$/.test(key) && !event.shiftKey) { presets.applyKey(app, key); return handled(); } // 1-9, 0: the first ten presets
  if (app.toolbox && app.toolbox.key(event)) return handled(); // Shift+M, Shift+D, Shift+S (toolbox.js)
  if (key === "K" && event.shiftKey) { actions.link(); return handled(); }
  const lower = key.toLowerCase();
  if (lower === "k") { actions.linked(); return handled(); }
  if (lower === "i") { actions.invert(); return handled(); }
  if (lower === "f") { actions.fit(); return handled(); }
  if (lower === "a") { actions.actual(); return handled(); }
  if (lower === "r") { actions.reset(); return handled(); }
  if (lower === "o") { (event.shiftKey ? actions.rotateLeft : actions.rotate)(); return handled(); } // rotate 90 degrees
  if (lower === "h") { (event.shiftKey ? actions.flipV : actions.flipH)(); return handled(); } // flip
  if (TOOL_KEYS[lower]) { app.setTool(TOOL_KEYS[lower]); return handled(); }
  return undefined;
});

// ------------------------------------------------------------------ collaboration contract

startViewingReport(boot); // the audit trail: which series and slices this reader looked at
bus.on("apply-viewport", (state) => {
  // A presenter in MPR (or leaving it): mpr.js shows the same series and planes.
  if (state.mpr || (state.mpr === null && app.mpr && app.mpr.active)) { app.loadMpr().then((mpr) => mpr.apply(state)); return; }
  (app.activeViewport || app.viewports[0]).apply(state);
});
bus.on("remote-cursors", ({ cursors }) => { app.remote.cursors = cursors || []; app.redrawOverlays(); });
bus.on("remote-draft", (draft) => { app.remote.drafts.set(draft.user, draft); app.redrawOverlays(); });
bus.on("remote-draft-clear", ({ user }) => { app.remote.drafts.delete(user); app.redrawOverlays(); });
annotations.subscribe(() => app.redrawOverlays());

// ------------------------------------------------------------------ start

if (!annotations.getTransport()) annotations.setTransport(annotations.restTransport(app.project));
installLabels(app);
if (!app.canWrite) {
  for (const button of document.querySelectorAll("[data-tool]")) {
    if (TOOLS[button.dataset.tool]) { button.disabled = true; button.title = "Your role in this project can view but not annotate"; }
  }
  for (const action of ["undo", "redo", "delete"]) document.querySelector(`[data-action='${action}']`).disabled = true;
}
app.setTool("pointer");
app.setLayout(layouts.initial(app)); // loads the first series: its first frame is requested now
if (!app.outline.series.length) app.toast("This study has no images to show.");
for (const outline of app.outlines) {
  annotations.load({ study: outline.study }).catch((error) => app.toast(`Annotations could not be loaded: ${error.message}`));
}
app.fillPresets();
setTimeout(buildSeriesPanel, 1500); // in case the first image never comes
window.crossread = { app, bus, annotations, loader };
setTimeout(loadToolbox, 1500); // in case the first image never comes

/** The reading tools (toolbox.js: measurement table, tags, loupe, capture), after the first image. */
function loadToolbox() {
  app.toolboxLoad ||= import("./toolbox.js").then(({ install }) => { app.toolbox = install(app); });
}
