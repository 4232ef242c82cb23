// One viewport: a canvas with the image, an SVG overlay with the annotations, reference text in
// the corners, a slice slider and cine controls. Images come rendered from the server (WADO-RS
// `rendered` for frames, Deep Zoom tiles for large images); window/level changes are previewed on
// the client with an SVG colour transfer on the last image until the server's render arrives.
//
// The Viewport owns the state and composes the parts in viewport/: the view transform (view.js),
// frame requests and prefetch (frames.js), Deep Zoom tiles (tiles.js), corner text (text.js), cine
// (cine.js), window helpers (windowing.js) and the interaction modes (modes/), each with enter()
// and exit(). Wheel, hover, double-click, right-drag (window/level) and middle-drag (pan) are
// always on; the primary button belongs to the mode of the current tool, switched exit -> enter.
//
// View geometry: `scale` is CSS pixels per image pixel and `centre` the image point at the middle
// of the viewport; zoom (reported) is device pixels per image pixel, so 1 means 1:1.
import * as annotations from "./annotations.js";
import { emit } from "./bus.js";
import * as loader from "./loader.js";
import { drawOverlay } from "./overlay.js";
import { Cine } from "./viewport/cine.js";
import { Frames } from "./viewport/frames.js";
import { writeText } from "./viewport/text.js";
import { Tiles, isLarge } from "./viewport/tiles.js";
import { canvasTransform, fitView, flipView, panView, rotateView, toImage, toScreen, zoomView } from "./viewport/view.js";
import { effectiveWindow, previewTransfer } from "./viewport/windowing.js";

const WINDOW_REQUEST_INTERVAL = 120; // ms between server renders while the window is dragged

/** The interaction modes (modes/index.js), imported once for every viewport, after the page's first
 * import graph: they are not needed to show the first image. */
let modesLoading = null;
const loadModes = () => (modesLoading ||= import("./viewport/modes/index.js"));

let counter = 0;

export class Viewport {
  constructor(app, index) {
    this.app = app;
    this.index = index;
    this.id = ++counter;
    this.stack = null;
    this.target = 0; // the slice asked for
    this.shown = null; // {index, url, bitmap, renderWindow, kind}
    this.window = null; // null: as acquired (the file's VOI), else {center, width}
    this.invert = false;
    this.scale = 1;
    this.centre = [0, 0];
    this.rotation = 0; // degrees clockwise as seen; then flipH/flipV mirror as seen (view.js)
    this.flipH = false;
    this.flipV = false;
    this.fitted = true;
    this.direction = 1;
    this.draft = null;
    this.editing = null; // {id, points} while a handle or shape is dragged
    this.outOfRange = false; // linked to a position this stack does not reach: no slice shown there
    this.driven = false; // the slice was set by linked scrolling or the crosshairs, not by input here
    this.markFilter = null; // null: every mark of the image; else (annotation) => shown here
    this.frames = new Frames(this);
    this.tiles = new Tiles(this);
    this.tool = null;
    this.mode = null; // the mode of the primary button
    this.build();
  }

  // ------------------------------------------------------------------ DOM

  build() {
    const root = document.createElement("section");
    root.className = "viewport";
    root.dataset.index = String(this.index);
    root.tabIndex = 0;
    root.setAttribute("aria-label", `Viewport ${this.index + 1}`);
    root.innerHTML = `
      <canvas class="image" aria-hidden="true"></canvas>
      <svg class="filters" aria-hidden="true" width="0" height="0"><filter id="wl-${this.id}" color-interpolation-filters="sRGB">
        <feComponentTransfer><feFuncR type="linear"/><feFuncG type="linear"/><feFuncB type="linear"/></feComponentTransfer></filter></svg>
      <svg class="overlay" role="img" aria-label="Image annotations"></svg>
      <div class="corner tl"></div><div class="corner tr"></div><div class="corner bl"></div><div class="corner br"></div>
      <div class="orient top"></div><div class="orient bottom"></div><div class="orient left"></div><div class="orient right"></div>
      <div class="waiting" aria-hidden="true"></div>
      <p class="out-of-range-note" role="status">No slice at the linked position</p>
      <p class="empty-hint">Choose a series on the left, or drop one here.</p>
      <div class="vp-controls">
        <button type="button" class="cine" aria-label="Play cine" title="Play/pause cine (Space)">▶</button>
        <label class="visually-hidden" for="fps-${this.id}">Frames per second</label>
        <input id="fps-${this.id}" class="fps" type="number" min="1" max="60" value="15" title="Cine frames per second">
        <label class="visually-hidden" for="slider-${this.id}">Slice</label>
        <input id="slider-${this.id}" class="slider" type="range" min="1" max="1" value="1">
      </div>`;
    this.root = root;
    this.canvas = root.querySelector("canvas.image");
    this.context = this.canvas.getContext("2d");
    this.overlay = root.querySelector("svg.overlay");
    this.filter = root.querySelector("filter");
    this.corners = Object.fromEntries(["tl", "tr", "bl", "br"].map((c) => [c, root.querySelector(`.corner.${c}`)]));
    this.orient = Object.fromEntries(["top", "bottom", "left", "right"].map((c) => [c, root.querySelector(`.orient.${c}`)]));
    this.slider = root.querySelector(".slider");
    this.cine = new Cine(this, root.querySelector(".cine"), root.querySelector(".fps"));
    this.slider.addEventListener("input", () => { this.takeOver(); this.setIndex(Number(this.slider.value) - 1); });
    new ResizeObserver(() => this.resize()).observe(root);
    this.overlay.addEventListener("contextmenu", (event) => event.preventDefault());
    this.overlay.addEventListener("pointerdown", () => this.takeOver()); // before any mode's
    root.addEventListener("pointerdown", () => this.app.activate(this), true);
    root.addEventListener("dragover", (event) => { if (event.dataTransfer.types.includes("text/x-series")) event.preventDefault(); });
    root.addEventListener("drop", (event) => {
      const uid = event.dataTransfer.getData("text/x-series");
      if (uid) { event.preventDefault(); this.app.activate(this); this.app.loadSeries(uid, this); }
    });
    // Always on, whatever the tool: the right button sets the window, the middle one pans.
    this.modes = [];
    this.tool = this.app.tool;
    loadModes().then((modes) => {
      this.modeSet = modes;
      this.modes = modes.alwaysOn(this);
      for (const mode of this.modes) mode.enter();
      this.setTool(this.tool);
      document.body.dataset.modes = "ready"; // (the browser tests wait for input to be handled)
    });
  }

  /** Give the primary button to the mode of `tool` (the toolbar's: pointer, wl, pan, zoom, or a measurement tool).
   * Before the modes have loaded, the tool is remembered and its mode entered once they are. */
  setTool(tool) {
    if (tool === this.tool && this.mode) return;
    this.tool = tool;
    if (!this.modeSet) return;
    if (this.mode) this.mode.exit();
    this.mode = this.modeSet.toolMode(this, tool);
    this.mode.enter();
  }

  get size() { return [this.root.clientWidth, this.root.clientHeight]; }
  get item() { return this.stack ? this.stack.items[this.shown ? this.shown.index : this.target] : null; }
  get meta() { return this.item && this.item.meta; }
  get zoom() { return this.scale * (window.devicePixelRatio || 1); }
  get view() { return { scale: this.scale, centre: this.centre, rotation: this.rotation, flipH: this.flipH, flipV: this.flipV }; }
  set view({ scale, centre, rotation, flipH, flipV }) {
    this.scale = scale;
    this.centre = centre;
    if (rotation !== undefined) { this.rotation = rotation; this.flipH = !!flipH; this.flipV = !!flipV; }
  }
  get playing() { return this.cine.playing; }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const [w, h] = this.size;
    this.canvas.width = Math.max(1, Math.round(w * dpr));
    this.canvas.height = Math.max(1, Math.round(h * dpr));
    this.overlay.setAttribute("viewBox", `0 0 ${w} ${h}`);
    if (this.fitted) this.fit(false);
    this.draw();
  }

  // ------------------------------------------------------------------ state

  setStack(stack, { index = 0, keepView = false } = {}) {
    loader.plan(this, []);
    this.stopPlay();
    this.stack = stack;
    this.shown = null;
    this.tiles.clear();
    this.frames.clear();
    this.root.classList.toggle("has-image", !!stack);
    if (!stack) { this.draw(); return; }
    if (!keepView) { this.window = null; this.invert = false; this.fitted = true; this.rotation = 0; this.flipH = this.flipV = false; }
    this.slider.max = String(stack.length);
    this.root.classList.toggle("single", stack.length < 2);
    this.cine.setRate(stack.items[0].meta, { force: true });
    this.setOutOfRange(false);
    if (this.fitted) this.fit(false);
    this.setIndex(Math.min(Math.max(index, 0), stack.length - 1), { force: true, follow: false });
  }

  metadataChanged() {
    if (!this.stack) return;
    this.cine.setRate(this.stack.items[0].meta);
    if (this.shown && !this.shown.renderWindow && !this.window && this.meta) this.shown.renderWindow = this.meta.window;
    this.draw();
  }

  isTiled(index = this.target) {
    return isLarge(this.stack && this.stack.items[index]);
  }

  /** The window the server renders with for `window` (null: the file's), for client previews. */
  effectiveWindow(meta = this.meta, window = this.window) {
    return effectiveWindow(meta, window, this.autoWindow());
  }

  /** The window the server chose for the image shown (no window asked for, none in the file), or null. */
  autoWindow() { return this.shown && this.shown.url ? loader.autoWindow(this.shown.url) : null; }

  step(delta) {
    if (!this.stack) return;
    this.direction = delta >= 0 ? 1 : -1;
    this.setIndex(Math.min(Math.max(this.target + delta, 0), this.stack.length - 1));
  }

  /** Show slice `index`. `linked`: set by linked scrolling or the crosshairs (it moves no other
   * viewport); otherwise, with `follow`, the linked viewports follow this one. */
  setIndex(index, { force = false, linked = false, follow = true } = {}) {
    if (!this.stack || (!force && index === this.target && this.shown)) return;
    if (index !== this.target) this.direction = index > this.target ? 1 : -1;
    this.target = index;
    this.driven = linked;
    if (!linked && follow && this.app.linking) this.app.linking.follow(this);
    this.slider.value = String(index + 1);
    this.draft = null;
    this.editing = null;
    if (this.isTiled(index)) { this.tiles.show(index); return; }
    this.frames.request(index);
    this.schedulePrefetch();
  }

  schedulePrefetch() { this.frames.plan(); }

  setWindow(window, { final = true, remote = false } = {}) {
    if (this.meta && this.meta.color) return;
    this.window = window ? { center: window.center, width: Math.max(1, window.width) } : null;
    this.updateFilter();
    this.writeText();
    if (this.isTiled()) {
      if (final) this.draw();
    } else if (final) {
      clearTimeout(this.windowTimer);
      this.windowTimer = null;
      this.frames.request(this.target);
      this.schedulePrefetch();
    } else if (!this.windowTimer) {
      this.windowTimer = setTimeout(() => { this.windowTimer = null; this.frames.request(this.target); }, WINDOW_REQUEST_INTERVAL);
    }
    if (this.app.mpr) this.app.mpr.windowChanged(this, { final }); // the MPR planes share one window
    this.announce(remote);
  }

  /** Linked to a position out of this stack's range: the image is dimmed and says so. */
  setOutOfRange(flag) {
    if (this.outOfRange === flag) return;
    this.outOfRange = flag;
    this.root.classList.toggle("out-of-range", flag);
  }

  setInvert(invert, { remote = false } = {}) {
    this.invert = invert;
    this.updateFilter();
    this.writeText();
    this.announce(remote);
  }

  // ------------------------------------------------------------------ view geometry

  imageSize() {
    const item = this.item;
    return item ? [item.columns, item.rows] : [1, 1];
  }

  fit(redraw = true) {
    this.view = fitView(this.size, this.imageSize(), this.view);
    this.fitted = true;
    if (redraw) { this.draw(); this.announce(); }
  }

  actualSize() {
    this.scale = 1 / (window.devicePixelRatio || 1);
    this.fitted = false;
    this.draw();
    this.announce();
  }

  zoomAt(factor, clientX, clientY) {
    const anchor = clientX === undefined ? this.centre : this.toImage(clientX, clientY);
    this.view = zoomView(this.view, factor, anchor);
    this.fitted = false;
    this.draw();
    this.announce();
  }

  /** Turn the view 90 degrees clockwise (turns = 1) or counter-clockwise (-1), as seen. */
  rotate(turns = 1) { this.setOrientation(rotateView(this.view, turns)); }

  /** Mirror the view as seen: "h" left-right, "v" top-bottom. */
  flip(axis) { this.setOrientation(flipView(this.view, axis)); }

  /** Set {rotation, flipH, flipV} (the marks stay on the anatomy: they are in image coordinates). */
  setOrientation({ rotation = 0, flipH = false, flipV = false } = {}, { remote = false } = {}) {
    this.rotation = rotation;
    this.flipH = !!flipH;
    this.flipV = !!flipV;
    if (this.fitted) this.fit(false);
    this.draw();
    this.announce(remote);
  }

  panBy(dx, dy) {
    this.view = panView(this.view, dx, dy);
    this.fitted = false;
    this.draw();
    this.announce();
  }

  /** Image coordinates -> overlay (CSS pixel) coordinates. */
  toScreen(p) { return toScreen(this.view, this.size, p); }

  /** Client (page) coordinates -> image coordinates. */
  toImage(clientX, clientY) {
    const box = this.root.getBoundingClientRect();
    return toImage(this.view, this.size, [clientX - box.left, clientY - box.top]);
  }

  /** Image coordinates -> client coordinates (used by tests and the label editor). */
  imageToClient(x, y) {
    const box = this.root.getBoundingClientRect();
    const [sx, sy] = this.toScreen([x, y]);
    return [box.left + sx, box.top + sy];
  }

  // ------------------------------------------------------------------ drawing

  draw() {
    const ctx = this.context;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (this.stack && this.shown) {
      ctx.setTransform(...canvasTransform(this.view, this.size, dpr));
      ctx.imageSmoothingEnabled = this.zoom < 4;
      if (this.shown.kind === "tiles") this.tiles.draw(ctx);
      else {
        const [columns, rows] = this.imageSize();
        ctx.drawImage(this.shown.bitmap, 0, 0, columns, rows);
      }
    }
    this.updateFilter();
    this.writeText();
    this.drawOverlay();
    this.referenceChanged();
  }

  /** The active viewport's slice on screen changed: the others redraw its reference line. */
  referenceChanged(force = false) {
    if (this.app.activeViewport !== this || !this.app.linking) return;
    const now = this.stack && this.shown ? `${this.stack.series}|${this.shown.index}` : "";
    if (!force && now === this.referenced) return;
    this.referenced = now;
    for (const v of this.app.viewports) if (v !== this && !v.root.hidden) v.drawOverlay();
  }

  scheduleDraw() {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => { this.drawPending = false; this.draw(); });
  }

  /** The window preview: the shown image's render window mapped to the one asked for, and invert. */
  updateFilter() {
    const { slope, intercept } = previewTransfer(this.shown && this.shown.renderWindow, this.effectiveWindow(), this.shown && this.meta, this.invert);
    const identity = slope === 1 && intercept === 0;
    for (const func of this.filter.querySelectorAll("feFuncR, feFuncG, feFuncB")) {
      func.setAttribute("slope", String(slope));
      func.setAttribute("intercept", String(intercept));
    }
    this.canvas.style.filter = identity ? "" : `url(#wl-${this.id})`;
  }

  writeText() { writeText(this); }

  drawOverlay() {
    const item = this.shown && this.stack.items[this.shown.index];
    const [w, h] = this.size;
    let list = item ? annotations.forItem(item) : [];
    if (this.editing) list = list.map((a) => (a.id === this.editing.id ? { ...a, points: this.editing.points, measurements: null } : a));
    if (this.markFilter) list = list.filter(this.markFilter); // a page's choice of this viewport's marks (trials' adjudication: one read's)
    const remote = this.app.remote;
    // others' drafts and cursors: on this frame of this instance, or on this reformatted plane
    const matches = (x) => !!item && (x.plane
      ? !!item.plane && x.plane.series === item.plane.series && x.plane.plane === item.plane.plane && x.plane.index === item.plane.index
      : !item.plane && x.instance === item.sop && (x.frame || 1) === item.frame);
    const linked = item && this.app.linking ? this.app.linking.overlayFor(this) : { references: [], crosshair: null };
    drawOverlay(this.overlay, {
      references: linked.references,
      crosshair: linked.crosshair,
      annotations: list,
      selected: this.app.selected,
      draft: this.draft,
      remoteDrafts: [...remote.drafts.values()].filter(matches),
      cursors: remote.cursors.filter(matches),
      toScreen: (p) => this.toScreen(p),
      meta: this.meta,
      width: w,
      height: h,
      editable: this.app.canWrite,
    });
    if (this.app.activeViewport === this) this.app.listMeasurements(list, this.meta);
  }

  // ------------------------------------------------------------------ cine

  togglePlay() { this.cine.toggle(); }
  play() { this.cine.play(); }
  stopPlay() { this.cine.stop(); }

  // ------------------------------------------------------------------ events out and in

  state() {
    const item = this.item;
    return {
      viewport: this.index,
      study: this.stack ? this.stack.study : null,
      series: this.stack ? this.stack.series : null,
      instance: item ? item.sop : null,
      frame: item ? item.frame : null,
      window: this.effectiveWindow(),
      zoom: this.zoom,
      pan: [...this.centre],
      invert: this.invert,
      rotation: this.rotation,
      flipH: this.flipH,
      flipV: this.flipV,
      ...(this.app.linking ? this.app.linking.state() : {}),
      ...(this.app.mpr ? this.app.mpr.stateOf(this) : {}),
    };
  }

  /** Local input ends following a presenter: from then on changes are this reader's own. */
  takeOver() { this.following = false; this.driven = false; }

  announce(remote = false) {
    remote = remote || this.following;
    if (this.announceTimer) { this.announceRemote = this.announceRemote && remote; return; }
    this.announceRemote = remote;
    this.announceTimer = setTimeout(() => {
      this.announceTimer = null;
      emit("viewport", { ...this.state(), remote: this.announceRemote, driven: this.driven });
    }, 50);
  }

  /** Follow a presenter: {series, instance, frame, window, zoom, pan, invert, linked, registrations, crosshair}. */
  apply(state) {
    this.following = true;
    const linking = this.app.linking;
    if (linking) linking.applyRegistrations(state);
    if (state.series && (!this.stack || this.stack.series !== state.series)) {
      const stack = this.app.stackFor(state.series);
      if (stack) this.setStack(stack, { keepView: true });
    }
    if (!this.stack) return;
    if (state.window !== undefined) this.window = state.window ? { ...state.window } : null;
    if (state.invert !== undefined) this.invert = !!state.invert;
    if (state.rotation !== undefined) this.rotation = state.rotation;
    if (state.flipH !== undefined) this.flipH = !!state.flipH;
    if (state.flipV !== undefined) this.flipV = !!state.flipV;
    if (state.zoom) { this.scale = state.zoom / (window.devicePixelRatio || 1); this.fitted = false; }
    if (state.pan) this.centre = [...state.pan];
    const index = state.instance ? this.stack.indexOf(state.instance, state.frame || 1) : -1;
    if (index >= 0) this.setIndex(index, { force: true });
    else this.setIndex(this.target, { force: true });
    if (linking) linking.applyCrosshair(state);
    this.announce(true);
  }
}
