// One viewport: a canvas with the image, an SVG overlay with the annotations, reference text in
// the corners, a slice slider and cine controls. Images come rendered from the server (WADO-RS
// `rendered` for frames, Deep Zoom tiles for large images); window/level changes are previewed on
// the client with an SVG colour transfer on the last image until the server's render arrives.
//
// View geometry: `scale` is CSS pixels per image pixel and `centre` the image point at the middle
// of the viewport; zoom (reported) is device pixels per image pixel, so 1 means 1:1.
import * as annotations from "./annotations.js";
import { emit } from "./bus.js";
import * as loader from "./loader.js";
import { drawOverlay } from "./overlay.js";
import { fallbackWindow, orientationLetters } from "./stack.js";
import { TOOLS, clampPoint, translate } from "./tools.js";

const TILE_THRESHOLD = 1024; // larger images (either side) are drawn from Deep Zoom tiles
const PREFETCH_BUDGET = 240; // frames queued per viewport at most (around the current one)
const PREDECODE_AHEAD = 8;
const WINDOW_REQUEST_INTERVAL = 120; // ms between server renders while the window is dragged

let counter = 0;

function windowKey(w) { return w ? `${Math.round(w.center * 100) / 100},${Math.round(Math.max(1, w.width) * 100) / 100}` : ""; }
function fmt(n, digits = 0) { return Number.isFinite(n) ? n.toFixed(digits) : "–"; }

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
    this.fitted = true;
    this.direction = 1;
    this.playing = false;
    this.fps = 15;
    this.draft = null;
    this.editing = null; // {id, points} while a handle or shape is dragged
    this.tiles = null; // {dzi, window} for tiled images
    this.lastUrl = new Map(); // slice index -> last URL shown for it (fallback while another window loads)
    this.urls = new Map(); // "index|window" -> rendered URL of the current stack
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
    this.cineButton = root.querySelector(".cine");
    this.fpsInput = root.querySelector(".fps");
    this.slider.addEventListener("input", () => { this.takeOver(); this.setIndex(Number(this.slider.value) - 1); });
    this.cineButton.addEventListener("click", () => this.togglePlay());
    this.fpsInput.addEventListener("change", () => { this.fps = Math.min(60, Math.max(1, Number(this.fpsInput.value) || 15)); });
    new ResizeObserver(() => this.resize()).observe(root);
    this.bindPointer();
  }

  get size() { return [this.root.clientWidth, this.root.clientHeight]; }
  get item() { return this.stack ? this.stack.items[this.shown ? this.shown.index : this.target] : null; }
  get meta() { return this.item && this.item.meta; }
  get zoom() { return this.scale * (window.devicePixelRatio || 1); }

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
    this.tiles = null;
    this.lastUrl.clear();
    this.urls.clear();
    this.root.classList.toggle("has-image", !!stack);
    if (!stack) { this.draw(); return; }
    if (!keepView) { this.window = null; this.invert = false; this.fitted = true; }
    this.slider.max = String(stack.length);
    this.root.classList.toggle("single", stack.length < 2);
    const first = stack.items[0];
    this.fps = first.meta && first.meta.frameTime ? Math.round(1000 / first.meta.frameTime) : 15;
    this.fpsInput.value = String(this.fps);
    if (this.fitted) this.fit(false);
    this.setIndex(Math.min(Math.max(index, 0), stack.length - 1), { force: true });
  }

  metadataChanged() {
    if (!this.stack) return;
    const first = this.stack.items[0];
    if (first.meta && first.meta.frameTime && !this.playing) {
      this.fps = Math.round(1000 / first.meta.frameTime);
      this.fpsInput.value = String(this.fps);
    }
    if (this.shown && !this.shown.renderWindow && !this.window && this.meta) this.shown.renderWindow = this.meta.window;
    this.draw();
  }

  isTiled(index = this.target) {
    const item = this.stack && this.stack.items[index];
    return !!item && Math.max(item.rows, item.columns) > TILE_THRESHOLD;
  }

  /** The window the server renders with for `window` (null: the file's), for client previews. */
  effectiveWindow(meta = this.meta, window = this.window) {
    if (window) return window;
    if (!meta) return null;
    return meta.window || null;
  }

  frameUrl(index, window = this.window) {
    const key = `${index}|${windowKey(window)}`;
    let url = this.urls.get(key);
    if (!url) {
      url = this.buildFrameUrl(index, window);
      if (this.urls.size > 4000) this.urls.clear();
      this.urls.set(key, url);
    }
    return url;
  }

  buildFrameUrl(index, window) {
    const item = this.stack.items[index];
    const params = {};
    if (window) params.window = windowKey(window);
    params.accept = "image/jpeg";
    return this.app.web.frameRendered(this.stack.study, this.stack.series, item.sop, item.frame, params);
  }

  step(delta) {
    if (!this.stack) return;
    this.direction = delta >= 0 ? 1 : -1;
    this.setIndex(Math.min(Math.max(this.target + delta, 0), this.stack.length - 1));
  }

  setIndex(index, { force = false } = {}) {
    if (!this.stack || (!force && index === this.target && this.shown)) return;
    if (index !== this.target) this.direction = index > this.target ? 1 : -1;
    this.target = index;
    this.slider.value = String(index + 1);
    this.draft = null;
    this.editing = null;
    if (this.isTiled(index)) { this.showTiled(index); return; }
    this.request(index);
    this.schedulePrefetch();
  }

  request(index) {
    const url = this.frameUrl(index);
    const seq = (this.seq = (this.seq || 0) + 1);
    const ready = loader.bitmapNow(url);
    if (ready) { this.show(index, url, ready, this.window, seq); return; }
    const previous = this.lastUrl.get(index);
    const approximate = previous && previous !== url && loader.bitmapNow(previous);
    if (approximate && !(this.shown && this.shown.url === previous)) {
      // The same slice rendered with another window: the right pixels, the window previewed.
      this.show(index, previous, approximate, this.windowOfUrl(previous), seq - 0.5);
    }
    this.root.classList.add("loading");
    const windowAsked = this.window;
    const stack = this.stack;
    loader.bitmap(url, 0, this).then((bitmap) => {
      if (this.stack === stack && this.wanted(index, url, seq)) this.show(index, url, bitmap, windowAsked, seq);
    }).catch((error) => {
      if (!(error instanceof loader.Cancelled)) this.app.toast(`Image ${index + 1} could not be loaded: ${error.message}`);
    });
  }

  /**
   * Whether a frame that has just arrived should be drawn: the slice asked for (unless something
   * newer of it is on screen), or a slice on the way from the one shown to the one asked for
   * (scrolling faster than frames arrive shows the frames it passes; its label goes with it).
   */
  wanted(index, url, seq) {
    const shown = this.shown;
    if (index === this.target) return !(shown && shown.index === index && shown.seq > seq);
    if (!shown || url !== this.frameUrl(index)) return false;
    return (shown.index < index && index < this.target) || (this.target < index && index < shown.index);
  }

  /** The window of a rendered URL; null for the file's own. */
  windowOfUrl(url) {
    const match = /[?&]window=([^&]+)/.exec(url);
    if (!match) return null;
    const [center, width] = decodeURIComponent(match[1]).split(",").map(Number);
    return { center, width };
  }

  show(index, url, bitmap, window, seq = 0) {
    this.shown = { index, url, bitmap, seq, renderWindow: this.effectiveWindow(this.stack.items[index].meta, window), kind: "frame" };
    this.lastUrl.set(index, url);
    this.root.classList.toggle("loading", !(this.target === index && url === this.frameUrl(index)));
    this.app.framesShown += 1;
    const log = this.app.frameLog;
    if (!log.length || log[log.length - 1][1] !== index || log[log.length - 1][2] !== this.index) log.push([performance.now(), index, this.index]);
    if (log.length > 5000) log.splice(0, 1000);
    if (!this.app.firstImageAt) this.app.firstImage(this);
    this.draw();
    this.announce();
    for (let d = 1; d <= PREDECODE_AHEAD; d += 1) {
      const next = index + d * this.direction;
      if (next >= 0 && next < this.stack.length) loader.predecode(this.frameUrl(next));
    }
  }

  /** Tell the loader what this viewport wants: the current slice, then its neighbours, nearest
   * first and the direction of travel before the other, within a bounded budget. */
  schedulePrefetch() {
    if (!this.stack || this.isTiled()) { loader.plan(this, []); return; }
    const wanted = [[this.frameUrl(this.target), 0]];
    if (this.app.firstImageAt) { // the first image goes alone
      const n = this.stack.length;
      const budget = Math.min(n - 1, Math.floor(PREFETCH_BUDGET / this.app.viewports.filter((v) => v.stack).length));
      for (let d = 1; wanted.length <= budget && d < n; d += 1) {
        for (const [next, priority] of [[this.target + d * this.direction, d], [this.target - d * this.direction, d * 2 + 0.5]]) {
          if (next >= 0 && next < n && wanted.length <= budget) wanted.push([this.frameUrl(next), priority + this.index * 0.01]);
        }
      }
    }
    loader.plan(this, wanted);
  }

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
      this.request(this.target);
      this.schedulePrefetch();
    } else if (!this.windowTimer) {
      this.windowTimer = setTimeout(() => { this.windowTimer = null; this.request(this.target); }, WINDOW_REQUEST_INTERVAL);
    }
    this.announce(remote);
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
    const [w, h] = this.size;
    const [columns, rows] = this.imageSize();
    this.scale = Math.max(1e-3, Math.min(w / columns, h / rows));
    this.centre = [columns / 2, rows / 2];
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
    const next = Math.min(40, Math.max(0.02, this.scale * factor));
    const k = this.scale / next;
    this.centre = [anchor[0] + (this.centre[0] - anchor[0]) * k, anchor[1] + (this.centre[1] - anchor[1]) * k];
    this.scale = next;
    this.fitted = false;
    this.draw();
    this.announce();
  }

  panBy(dx, dy) {
    this.centre = [this.centre[0] - dx / this.scale, this.centre[1] - dy / this.scale];
    this.fitted = false;
    this.draw();
    this.announce();
  }

  /** Image coordinates -> overlay (CSS pixel) coordinates. */
  toScreen(p) {
    const [w, h] = this.size;
    return [w / 2 + (p[0] - this.centre[0]) * this.scale, h / 2 + (p[1] - this.centre[1]) * this.scale];
  }

  /** Client (page) coordinates -> image coordinates. */
  toImage(clientX, clientY) {
    const box = this.root.getBoundingClientRect();
    const [w, h] = this.size;
    return [this.centre[0] + (clientX - box.left - w / 2) / this.scale, this.centre[1] + (clientY - box.top - h / 2) / this.scale];
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
      const [w, h] = this.size;
      ctx.setTransform(dpr * this.scale, 0, 0, dpr * this.scale, dpr * (w / 2 - this.centre[0] * this.scale), dpr * (h / 2 - this.centre[1] * this.scale));
      ctx.imageSmoothingEnabled = this.zoom < 4;
      if (this.shown.kind === "tiles") this.drawTiles(ctx);
      else {
        const [columns, rows] = this.imageSize();
        ctx.drawImage(this.shown.bitmap, 0, 0, columns, rows);
      }
    }
    this.updateFilter();
    this.writeText();
    this.drawOverlay();
  }

  updateFilter() {
    const shown = this.shown;
    const meta = this.meta;
    let slope = 1;
    let intercept = 0;
    if (shown && meta && !meta.color) {
      const from = shown.renderWindow;
      const to = this.effectiveWindow();
      if (from && to && windowKey(from) !== windowKey(to)) {
        // Display value y in 0..1 rendered with window `from`; the same pixel under `to`:
        slope = from.width / to.width;
        intercept = (from.center - from.width / 2 - to.center + to.width / 2) / to.width;
        if (meta.monochrome1) intercept = 1 - slope - intercept;
      }
    }
    if (this.invert) { slope = -slope; intercept = 1 - intercept; }
    const identity = slope === 1 && intercept === 0;
    for (const func of this.filter.querySelectorAll("feFuncR, feFuncG, feFuncB")) {
      func.setAttribute("slope", String(slope));
      func.setAttribute("intercept", String(intercept));
    }
    this.canvas.style.filter = identity ? "" : `url(#wl-${this.id})`;
  }

  writeText() {
    const set = (node, lines) => { node.replaceChildren(...lines.filter(Boolean).map((line) => Object.assign(document.createElement("div"), { textContent: line }))); };
    if (!this.stack) { for (const node of [...Object.values(this.corners), ...Object.values(this.orient)]) node.replaceChildren(); return; }
    const meta = this.meta;
    const shownIndex = this.shown ? this.shown.index : null;
    const outline = this.stack.studyInfo;
    set(this.corners.tl, [outline.patientName.replace(/\^+/g, " "), outline.patientId, formatDate(outline.studyDate), outline.studyDescription]);
    const sliceText = shownIndex === null ? `Im –/${this.stack.length}` : `Im ${shownIndex + 1}/${this.stack.length}`;
    set(this.corners.tr, [
      `Se ${this.stack.number ?? ""}${this.stack.description ? `: ${this.stack.description}` : ""}`,
      this.stack.modality,
      sliceText,
      meta && Number.isFinite(meta.location) ? `Loc ${fmt(meta.location, 1)} mm` : "",
      meta && meta.thickness ? `Thk ${fmt(meta.thickness, 1)} mm` : "",
    ]);
    this.corners.tr.children[2]?.classList.add("slice-label");
    const win = this.effectiveWindow() || (meta && !meta.color ? fallbackWindow(meta) : null);
    set(this.corners.bl, [
      win && !(meta && meta.color) ? `W ${fmt(win.width)} L ${fmt(win.center)}${this.window ? "" : " (file)"}` : "",
      `Zoom ${this.zoom.toFixed(2)}×`,
      this.invert ? "Inverted" : "",
    ]);
    const item = this.item;
    set(this.corners.br, [
      item ? `${item.columns} × ${item.rows}${this.shown && this.shown.kind === "tiles" ? " (tiles)" : ""}` : "",
      meta ? (meta.spacing ? `${spacingText(meta.spacing)}${meta.calibration === "PixelSpacing" ? "" : " (detector)"}` : "No pixel spacing: lengths in px") : "",
    ]);
    const letters = meta && orientationLetters(meta.orientation);
    for (const side of ["top", "bottom", "left", "right"]) this.orient[side].textContent = letters ? letters[side] : "";
    this.root.dataset.shownIndex = shownIndex === null ? "" : String(shownIndex);
    this.root.dataset.targetIndex = String(this.target);
  }

  drawOverlay() {
    const item = this.shown && this.stack.items[this.shown.index];
    const [w] = this.size;
    let list = item ? annotations.forImage(item.sop, item.frame) : [];
    if (this.editing) list = list.map((a) => (a.id === this.editing.id ? { ...a, points: this.editing.points, measurements: null } : a));
    const remote = this.app.remote;
    const matches = (x) => item && x.instance === item.sop && (x.frame || 1) === item.frame;
    drawOverlay(this.overlay, {
      annotations: list,
      selected: this.app.selected,
      draft: this.draft,
      remoteDrafts: [...remote.drafts.values()].filter(matches),
      cursors: remote.cursors.filter(matches),
      toScreen: (p) => this.toScreen(p),
      meta: this.meta,
      width: w,
      editable: this.app.canWrite,
    });
    if (this.app.activeViewport === this) this.app.listMeasurements(list, this.meta);
  }

  // ------------------------------------------------------------------ Deep Zoom tiles

  async showTiled(index) {
    const item = this.stack.items[index];
    this.root.classList.add("loading");
    if (!this.tiles || this.tiles.sop !== item.sop || this.tiles.frame !== item.frame) {
      let dzi;
      try {
        dzi = await loadDzi(this.app.web.dzi(item.sop, item.frame));
      } catch (error) {
        this.app.toast(`Image ${index + 1} could not be loaded: ${error.message}`);
        return;
      }
      if (this.target !== index) return;
      this.tiles = { sop: item.sop, frame: item.frame, dzi, window: this.window };
    }
    this.shown = { index, kind: "tiles", renderWindow: this.effectiveWindow(item.meta, this.tiles.window) };
    this.lastUrl.set(index, "");
    if (!this.app.firstImageAt) this.app.firstImageWhenTiles = this;
    this.draw();
    this.announce();
  }

  tileUrl(level, col, row, window) {
    const params = window ? { window: windowKey(window) } : null;
    return this.app.web.tile(this.tiles.sop, this.tiles.frame, level, col, row, params);
  }

  drawTiles(ctx) {
    const { dzi } = this.tiles;
    const maxLevel = Math.ceil(Math.log2(Math.max(dzi.width, dzi.height)));
    const wanted = Math.min(maxLevel, Math.max(0, maxLevel + Math.ceil(Math.log2(Math.max(this.zoom, 1e-6)))));
    let base = maxLevel;
    while (base > 0 && Math.ceil(Math.max(dzi.width, dzi.height) / 2 ** (maxLevel - base)) > dzi.tileSize) base -= 1;
    const [w, h] = this.size;
    const topLeft = [this.centre[0] - w / 2 / this.scale, this.centre[1] - h / 2 / this.scale];
    const bottomRight = [this.centre[0] + w / 2 / this.scale, this.centre[1] + h / 2 / this.scale];
    // Tiles of the window being asked for; until all visible ones are here, the previous window's.
    const asked = this.window;
    const levels = wanted > base ? [base, wanted] : [base];
    let complete = true;
    const plan = (window) => levels.map((level) => ({ level, tiles: this.visibleTiles(level, maxLevel, topLeft, bottomRight, window) }));
    const askedPlan = plan(asked);
    for (const { tiles } of askedPlan) for (const tile of tiles) {
      if (!loader.bitmapNow(tile.url)) {
        complete = false;
        loader.bitmap(tile.url).then(() => this.scheduleDraw()).catch(() => {});
      }
    }
    if (complete && windowKey(this.tiles.window) !== windowKey(asked)) {
      this.tiles.window = asked;
      this.shown.renderWindow = this.effectiveWindow(this.meta, asked);
    }
    if (complete) this.root.classList.remove("loading");
    const drawPlan = windowKey(this.tiles.window) === windowKey(asked) ? askedPlan : plan(this.tiles.window);
    for (const { tiles } of drawPlan) for (const tile of tiles) {
      const bitmap = loader.bitmapNow(tile.url);
      // Tiles without overlap get a hair more than their size, or smoothing leaves seams.
      const pad = this.tiles.dzi.overlap ? 0 : 0.6 / this.scale;
      if (bitmap) ctx.drawImage(bitmap, tile.x, tile.y, tile.width + pad, tile.height + pad);
      else if (drawPlan !== askedPlan) loader.bitmap(tile.url).then(() => this.scheduleDraw()).catch(() => {});
    }
    if (!this.app.firstImageAt && complete && this.app.firstImageWhenTiles === this) this.app.firstImage(this);
  }

  visibleTiles(level, maxLevel, topLeft, bottomRight, window) {
    const { dzi } = this.tiles;
    const factor = 2 ** (maxLevel - level);
    const levelWidth = Math.ceil(dzi.width / factor);
    const levelHeight = Math.ceil(dzi.height / factor);
    const size = dzi.tileSize;
    const overlap = dzi.overlap;
    const first = (v) => Math.max(0, Math.floor(v / factor / size));
    const lastCol = Math.min(Math.ceil(levelWidth / size) - 1, Math.floor(Math.min(bottomRight[0], dzi.width - 1) / factor / size));
    const lastRow = Math.min(Math.ceil(levelHeight / size) - 1, Math.floor(Math.min(bottomRight[1], dzi.height - 1) / factor / size));
    const tiles = [];
    for (let row = first(topLeft[1]); row <= lastRow; row += 1) {
      for (let col = first(topLeft[0]); col <= lastCol; col += 1) {
        const x = col * size - (col ? overlap : 0);
        const y = row * size - (row ? overlap : 0);
        const width = Math.min(size + (col ? overlap : 0) + overlap, levelWidth - x);
        const height = Math.min(size + (row ? overlap : 0) + overlap, levelHeight - y);
        tiles.push({
          url: this.tileUrl(level, col, row, window),
          x: x * factor, y: y * factor,
          width: Math.min((x + width) * factor, dzi.width) - x * factor,
          height: Math.min((y + height) * factor, dzi.height) - y * factor,
        });
      }
    }
    return tiles;
  }

  scheduleDraw() {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => { this.drawPending = false; this.draw(); });
  }

  // ------------------------------------------------------------------ cine

  togglePlay() { if (this.playing) this.stopPlay(); else this.play(); }

  play() {
    if (!this.stack || this.stack.length < 2) return;
    this.playing = true;
    this.cineButton.textContent = "❚❚";
    this.cineButton.setAttribute("aria-label", "Pause cine");
    let last = performance.now();
    const tick = (now) => {
      if (!this.playing) return;
      const next = (this.target + 1) % this.stack.length;
      const ready = this.shown && this.shown.index === this.target; // never skip past a frame not yet shown
      if (ready && now - last >= 1000 / this.fps) {
        last = now;
        this.direction = 1;
        this.setIndex(next);
      }
      this.cineFrame = requestAnimationFrame(tick);
    };
    this.cineFrame = requestAnimationFrame(tick);
  }

  stopPlay() {
    this.playing = false;
    cancelAnimationFrame(this.cineFrame);
    this.cineButton.textContent = "▶";
    this.cineButton.setAttribute("aria-label", "Play cine");
  }

  // ------------------------------------------------------------------ events out

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
    };
  }

  /** Local input ends following a presenter: from then on changes are this reader's own. */
  takeOver() { this.following = false; }

  announce(remote = false) {
    remote = remote || this.following;
    if (this.announceTimer) { this.announceRemote = this.announceRemote && remote; return; }
    this.announceRemote = remote;
    this.announceTimer = setTimeout(() => {
      this.announceTimer = null;
      emit("viewport", { ...this.state(), remote: this.announceRemote });
    }, 50);
  }

  /** Follow a presenter: {series, instance, frame, window, zoom, pan, invert}. */
  apply(state) {
    this.following = true;
    if (state.series && (!this.stack || this.stack.series !== state.series)) {
      const stack = this.app.stackFor(state.series);
      if (stack) this.setStack(stack, { keepView: true });
    }
    if (!this.stack) return;
    if (state.window !== undefined) this.window = state.window ? { ...state.window } : null;
    if (state.invert !== undefined) this.invert = !!state.invert;
    if (state.zoom) { this.scale = state.zoom / (window.devicePixelRatio || 1); this.fitted = false; }
    if (state.pan) this.centre = [...state.pan];
    const index = state.instance ? this.stack.indexOf(state.instance, state.frame || 1) : -1;
    if (index >= 0) this.setIndex(index, { force: true });
    else this.setIndex(this.target, { force: true });
    this.announce(true);
  }

  // ------------------------------------------------------------------ pointer

  bindPointer() {
    const svg = this.overlay;
    svg.addEventListener("contextmenu", (event) => event.preventDefault());
    svg.addEventListener("pointerdown", (event) => this.pointerDown(event));
    svg.addEventListener("pointermove", (event) => this.hover(event));
    svg.addEventListener("pointerleave", () => this.app.cursor(this, null));
    svg.addEventListener("dblclick", (event) => {
      const group = event.target.closest("[data-id]");
      if (group) this.app.editLabel(annotations.get(idOf(group.dataset.id)), event.clientX, event.clientY);
    });
    svg.addEventListener("wheel", (event) => this.wheel(event), { passive: false });
    this.root.addEventListener("pointerdown", () => this.app.activate(this), true);
    this.root.addEventListener("dragover", (event) => { if (event.dataTransfer.types.includes("text/x-series")) event.preventDefault(); });
    this.root.addEventListener("drop", (event) => {
      const uid = event.dataTransfer.getData("text/x-series");
      if (uid) { event.preventDefault(); this.app.activate(this); this.app.loadSeries(uid, this); }
    });
  }

  wheel(event) {
    event.preventDefault();
    this.takeOver();
    if (!this.stack) return;
    if (event.ctrlKey || event.metaKey) { this.zoomAt(Math.exp(-event.deltaY / 300), event.clientX, event.clientY); return; }
    const delta = event.deltaMode === 1 ? event.deltaY * 33 : event.deltaY;
    if (Math.abs(delta) >= 50) { this.wheelRest = 0; this.step(Math.sign(delta)); return; }
    this.wheelRest = (this.wheelRest || 0) + delta;
    if (Math.abs(this.wheelRest) >= 50) { this.step(Math.sign(this.wheelRest)); this.wheelRest = 0; }
  }

  hover(event) {
    if (!this.stack || event.buttons) return;
    const item = this.item;
    const [x, y] = this.toImage(event.clientX, event.clientY);
    const inside = item && x >= 0 && y >= 0 && x <= item.columns && y <= item.rows;
    this.app.cursor(this, inside ? { instance: item.sop, frame: item.frame, x, y } : null);
  }

  pointerDown(event) {
    this.takeOver();
    if (!this.stack || !this.shown) return;
    const svg = this.overlay;
    const start = [event.clientX, event.clientY];
    let last = start;
    let onMove = null;
    let onUp = null;
    const tool = this.app.tool;
    const item = this.item;
    const [columns, rows] = [item.columns, item.rows];
    const here = (e) => clampPoint(this.toImage(e.clientX, e.clientY), columns, rows);
    if (event.button === 2 || (event.button === 0 && tool === "wl")) {
      if (this.meta && this.meta.color) return;
      const begin = this.effectiveWindow() || fallbackWindow(this.meta);
      onMove = (e) => {
        const k = Math.max(begin.width, 20) / 300;
        this.setWindow({ center: begin.center + (e.clientY - start[1]) * k, width: Math.max(1, begin.width + (e.clientX - start[0]) * k) }, { final: false });
      };
      onUp = (e) => { if (e.clientX !== start[0] || e.clientY !== start[1]) onMove(e); if (this.window) this.setWindow(this.window, { final: true }); };
    } else if (event.button === 1 || (event.button === 0 && tool === "pan")) {
      onMove = (e) => { this.panBy(e.clientX - last[0], e.clientY - last[1]); last = [e.clientX, e.clientY]; };
    } else if (event.button === 0 && tool === "zoom") {
      const factor0 = this.scale;
      onMove = (e) => { this.zoomAt(factor0 * Math.exp(-(e.clientY - start[1]) / 150) / this.scale, start[0], start[1]); };
    } else if (event.button === 0 && TOOLS[tool]) {
      if (!this.app.canWrite) { this.app.toast("Your role in this project can view but not annotate."); return; }
      if (this.stack.modality === "SM") { this.app.toast("Measurements on whole-slide images are not supported yet."); return; }
      const adapter = TOOLS[tool];
      const p = here(event);
      const instance = item.sop;
      const frame = item.frame;
      this.draft = { kind: adapter.kind, points: adapter.begin(p), instance, frame };
      this.app.draft(this.draft);
      const minimum = 3 / this.scale;
      onMove = (e) => {
        this.draft.points = adapter.move(this.draft.points, here(e), minimum);
        this.app.draft(this.draft);
        this.drawOverlay();
      };
      onUp = () => {
        const draft = this.draft;
        this.draft = null;
        this.app.draft(null);
        if (draft && adapter.valid(draft.points, minimum)) {
          const points = adapter.finish ? adapter.finish(draft.points) : draft.points;
          this.app.createAnnotation({ instance, frame, kind: adapter.kind, points, label: "" }, adapter.asksLabel);
        }
        this.drawOverlay();
      };
      this.drawOverlay();
    } else if (event.button === 0) {
      // Pointer tool: handles, then shapes, then pan.
      const handle = event.target.closest(".handle");
      const group = event.target.closest("[data-id]");
      const annotation = group && annotations.get(idOf(group.dataset.id));
      if (annotation && !annotation.pending) {
        this.app.select(annotation.id);
        const editable = this.app.mayEdit(annotation);
        const adapter = TOOLS[annotation.kind];
        const origin = this.toImage(event.clientX, event.clientY);
        if (editable) {
          onMove = (e) => {
            const points = handle && adapter.moveHandle
              ? adapter.moveHandle(annotation.points, Number(handle.dataset.handle), here(e))
              : translate(annotation.points, [this.toImage(e.clientX, e.clientY)[0] - origin[0], this.toImage(e.clientX, e.clientY)[1] - origin[1]], columns, rows);
            this.editing = { id: annotation.id, points: points.map((q) => clampPoint(q, columns, rows)) };
            this.drawOverlay();
          };
          onUp = () => {
            const editing = this.editing;
            this.editing = null;
            if (editing && JSON.stringify(editing.points) !== JSON.stringify(annotation.points)) {
              this.app.updateAnnotation(annotation, { points: editing.points });
            }
            this.drawOverlay();
          };
        }
      } else {
        this.app.select(null);
        onMove = (e) => { this.panBy(e.clientX - last[0], e.clientY - last[1]); last = [e.clientX, e.clientY]; };
      }
    }
    if (!onMove && !onUp) return;
    event.preventDefault();
    svg.setPointerCapture(event.pointerId);
    const move = (e) => onMove && onMove(e);
    const up = (e) => {
      svg.removeEventListener("pointermove", move);
      svg.removeEventListener("pointerup", up);
      svg.removeEventListener("pointercancel", up);
      if (onUp) onUp(e);
    };
    svg.addEventListener("pointermove", move);
    svg.addEventListener("pointerup", up);
    svg.addEventListener("pointercancel", up);
  }
}

/** Pixel spacing (row, column) as "columns × rows" in mm, or in µm for microscopy. */
function spacingText([row, column]) {
  return column < 0.01 ? `${fmt(column * 1000, 2)} × ${fmt(row * 1000, 2)} µm` : `${fmt(column, 3)} × ${fmt(row, 3)} mm`;
}

function idOf(text) { return /^\d+$/.test(text) ? Number(text) : text; }

function formatDate(da) {
  return da && /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : da || "";
}

const dziCache = new Map();
function loadDzi(url) {
  if (!dziCache.has(url)) {
    dziCache.set(url, fetch(url, { credentials: "same-origin" }).then(async (response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const xml = new DOMParser().parseFromString(await response.text(), "application/xml");
      const image = xml.documentElement;
      const size = image.getElementsByTagName("Size")[0];
      return {
        tileSize: Number(image.getAttribute("TileSize")), overlap: Number(image.getAttribute("Overlap")),
        width: Number(size.getAttribute("Width")), height: Number(size.getAttribute("Height")),
      };
    }));
  }
  return dziCache.get(url);
}

