// The MPR layout (docs/viewer.md, "MPR"): the active series as three viewports, axial, sagittal and
// coronal, each a stack of planes reformatted on the server (GET /projects/<slug>/series/<uid>/mpr/
// <plane>/<index>, with the window and accept parameters of rendered frames; docs/rendering.md).
// Imported after the first image (like linking.js) or when MPR is asked for.
//
// A PlaneStack stands where a series' Stack stands in a Viewport: one item per plane, each with the
// geometry of its plane (from the JSON description of the plane's stack) as the description of a frame,
// so scrolling, the corner text, orientation letters, reference lines and crosshairs (linking.js) and
// measurements in mm work on it as on acquired slices. Items name their plane ({series, plane, index})
// instead of an instance: marks drawn on them are stored with the plane (annotations.js `imageFields`).
import { ApiError, requestJson } from "./api.js";

export const PLANES = ["axial", "sagittal", "coronal"];
const NAMES = { axial: "Axial", sagittal: "Sagittal", coronal: "Coronal" };

/** URLs of a series' reformatted planes. */
export function mprUrls(project, series) {
  const base = `/projects/${encodeURIComponent(project)}/series/${encodeURIComponent(series)}/mpr`;
  return {
    description: (plane) => `${base}/${plane}`,
    image: (plane, index, params) => `${base}/${plane}/${index}?${new URLSearchParams(params)}`,
  };
}

const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/** The centre of the top left pixel of plane `index` of a described stack (pure). */
export function planePosition(description, index) {
  return description.first_position.map((p, k) => p + index * description.spacing * description.normal[k]);
}

/** The plane of a described stack through patient point `point` (the nearest, within the stack; pure). */
export function planeThrough(description, point) {
  const d = point.map((p, k) => p - description.first_position[k]);
  const index = Math.round(dot(d, description.normal) / description.spacing);
  return Math.min(Math.max(index, 0), description.count - 1);
}

/** The description of plane `index` as stack.js `describe` gives a frame's, with the series' values
 * (`base`: the description of its middle slice: frame of reference, window, units). */
export function planeMeta(description, index, base) {
  const position = planePosition(description, index);
  return {
    ...(base || {}),
    rows: description.rows,
    columns: description.columns,
    spacing: [...description.pixel_spacing],
    calibration: "PixelSpacing",
    position,
    orientation: [...description.row_cosines, ...description.column_cosines],
    location: dot(position, description.normal),
    thickness: undefined, // a reformatted plane has no slice thickness of its own
    frameOfReference: (base && base.frameOfReference) || null,
    color: false,
    frameTime: undefined,
  };
}

/** The planes of one orientation of a series, shown by a Viewport as a Stack is. */
export class PlaneStack {
  constructor(source, description, plane, urls) {
    this.source = source;
    this.study = source.study;
    this.studyInfo = source.studyInfo;
    this.series = source.series;
    this.number = source.number;
    this.description = `${NAMES[plane]} MPR`; // (short: three viewports side by side)
    this.modality = source.modality;
    this.plane = plane;
    this.layout = description;
    this.urls = urls;
    this.metadata = new Map();
    const middle = source.items[Math.floor(source.items.length / 2)];
    const base = middle && middle.meta ? { ...middle.meta, frameOfReference: middle.meta.frameOfReference || source.series } : null;
    this.items = Array.from({ length: description.count }, (_, index) => ({
      sop: null,
      frame: 1,
      rows: description.rows,
      columns: description.columns,
      plane: { series: source.series, plane, index },
      meta: planeMeta(description, index, base),
    }));
  }

  get length() { return this.items.length; }
  indexOf() { return -1; }
  setMetadata() {}
  /** The rendered URL of plane `index` (frames.js asks for it with the window and accept of a frame). */
  urlOf(index, params) { return this.urls.image(this.plane, index, params); }
}

/** The MPR layout of the viewer: entered on the active series, left to the layout before it. */
export class Mpr {
  constructor(app) {
    this.app = app;
    this.active = false;
    this.series = null;
    this.saved = null; // the layout and viewports before MPR
    this.loading = 0; // the latest enter(): older answers are dropped
    this.syncing = false;
  }

  get viewports() { return this.app.viewports.slice(0, 3); }

  toggle() { return this.active ? this.leave() : this.enter(); }

  /** Show series `uid` (default: the active viewport's) in the MPR layout. `at`: {axial, sagittal,
   * coronal} indices to show (a presenter's); otherwise through the centre of the slice on screen. */
  async enter(uid = null, { at = null } = {}) {
    const app = this.app;
    const current = app.activeViewport;
    const series = uid || (current && current.stack && current.stack.series);
    const source = series && (current && current.stack && current.stack.source && current.stack.series === series
      ? current.stack.source : app.stackFor(series));
    if (!source) { app.toast("Choose a series to reformat."); return; }
    const point = !at && current && current.stack && !current.stack.source ? centreOfShown(current) : null;
    const window = current ? current.window : null;
    if (!this.active) {
      this.saved = {
        layout: app.layout,
        active: Math.max(0, app.viewports.indexOf(current)),
        viewports: app.viewports.map((v) => ({ stack: v.stack, index: v.target, window: v.window, invert: v.invert, view: v.view, fitted: v.fitted })),
      };
    }
    this.active = true;
    this.series = series;
    const ticket = (this.loading += 1);
    this.setPressed(true);
    document.body.dataset.mpr = "loading";
    app.setLayout("mpr", { fill: false });
    for (const [i, v] of this.viewports.entries()) {
      v.setStack(null);
      this.note(v, `Reformatting ${NAMES[PLANES[i]].toLowerCase()}…`);
    }
    app.activate(this.viewports[0]);
    const urls = mprUrls(app.project, series);
    await app.loadMetadata(source); // the frame of reference and window of the series
    const answers = await Promise.all(PLANES.map((plane) => requestJson(urls.description(plane)).then(
      (description) => ({ description }), (error) => ({ error }))));
    if (ticket !== this.loading || !this.active) return;
    let shown = 0;
    answers.forEach(({ description, error }, i) => {
      const v = this.viewports[i];
      const plane = PLANES[i];
      if (error) {
        const reason = error instanceof ApiError && error.body && error.body.detail ? error.body.detail : error.message;
        const what = error.status === 422 ? "This series cannot be reformatted" : error.status === 413 ? "This series is too large to reformat" : "The reformatted planes could not be loaded";
        this.note(v, `${what}: ${reason}`, true);
        return;
      }
      const stack = new PlaneStack(source, description, plane, urls);
      let index = Math.floor(description.count / 2);
      if (at && Number.isInteger(at[plane])) index = Math.min(Math.max(at[plane], 0), description.count - 1);
      else if (point) index = planeThrough(description, point);
      this.note(v, null);
      v.window = window ? { ...window } : null;
      v.invert = false;
      v.fitted = true;
      v.setStack(stack, { index, keepView: true });
      shown += 1;
    });
    document.body.dataset.mpr = shown ? "on" : "refused";
    if (app.linking) app.redrawOverlays();
    this.viewports[0].announce();
  }

  /** Back to the layout before MPR (or to `layout`), with the series and slices it showed. */
  leave(layout = null) {
    if (!this.active) return;
    const app = this.app;
    const saved = this.saved || { layout: "1x1", active: 0, viewports: [] };
    this.active = false;
    this.series = null;
    this.saved = null;
    this.loading += 1;
    this.setPressed(false);
    document.body.dataset.mpr = "off";
    app.viewports.forEach((v, i) => {
      this.note(v, null);
      const before = saved.viewports[i];
      if (before && before.stack) {
        v.window = before.window;
        v.invert = before.invert;
        v.fitted = before.fitted;
        v.setStack(before.stack, { index: before.index, keepView: true });
        if (!before.fitted) { v.view = before.view; v.draw(); }
      } else if (v.stack && v.stack.source) {
        v.setStack(null);
      }
    });
    app.setLayout(layout || saved.layout);
    const active = app.viewports[saved.active];
    if (active && !active.root.hidden) app.activate(active);
    app.redrawOverlays();
    if (app.activeViewport) app.activeViewport.announce();
  }

  /** A message in a viewport instead of its image (null removes it). */
  note(v, text, refused = false) {
    let node = v.root.querySelector(".mpr-note");
    if (!text) { if (node) node.remove(); return; }
    if (!node) {
      node = Object.assign(document.createElement("p"), { className: "mpr-note" });
      node.setAttribute("role", "status");
      v.root.append(node);
    }
    node.textContent = text;
    node.classList.toggle("refused", refused);
  }

  setPressed(on) {
    for (const button of document.querySelectorAll("[data-action='mpr']")) button.setAttribute("aria-pressed", String(on));
  }

  isPlane(v) { return this.active && !!v.stack && !!v.stack.source && this.viewports.includes(v); }

  /** The window is shared by the three planes (viewport.js calls this after every change of one). */
  windowChanged(source, { final = true } = {}) {
    if (this.syncing || !this.isPlane(source)) return;
    this.syncing = true;
    try {
      for (const v of this.viewports) if (v !== source && this.isPlane(v)) v.setWindow(source.window, { final, remote: true });
    } finally {
      this.syncing = false;
    }
  }

  /** What viewport events carry of the MPR layout (docs/protocol.md): {mpr: {series, plane, axial,
   * sagittal, coronal}}, or {mpr: null} out of it. */
  stateOf(v) {
    if (!this.active || !this.isPlane(v)) return { mpr: null };
    const indices = Object.fromEntries(this.viewports.map((p) => [p.stack && p.stack.plane, p.target]).filter(([plane]) => plane));
    if (PLANES.some((plane) => !Number.isInteger(indices[plane]))) return { mpr: null };
    return { mpr: { series: this.series, plane: v.stack.plane, ...indices } };
  }

  /** A presenter's viewport event (`apply-viewport`) with `mpr`: the same series and planes here. */
  async apply(state) {
    const app = this.app;
    const m = state.mpr;
    if (!m) {
      this.leave();
      if (app.activeViewport) app.activeViewport.apply(state);
      return;
    }
    if (app.linking) app.linking.applyRegistrations(state);
    if (!this.active || this.series !== m.series) await this.enter(m.series, { at: m });
    if (!this.active || this.series !== m.series) return;
    if (app.linking && "crosshair" in state) app.linking.applyCrosshair(state);
    for (const v of this.viewports) {
      if (!this.isPlane(v)) continue;
      v.following = true;
      const index = m[v.stack.plane];
      if (Number.isInteger(index)) v.setIndex(Math.min(Math.max(index, 0), v.stack.length - 1), { linked: true });
      if (state.window !== undefined) { v.window = state.window ? { ...state.window } : null; v.setWindow(v.window, { remote: true }); }
      if (state.invert !== undefined) v.setInvert(!!state.invert, { remote: true });
    }
    const active = this.viewports.find((v) => this.isPlane(v) && v.stack.plane === m.plane);
    if (active) app.activate(active);
  }
}

/** The patient point at the centre of the image a viewport shows, or null without geometry. */
function centreOfShown(v) {
  const meta = v.meta;
  if (!meta || !meta.position || meta.position.length !== 3 || !meta.orientation || !meta.spacing) return null;
  const [x, y] = [meta.columns / 2 - 0.5, meta.rows / 2 - 0.5]; // pixel-centre coordinates from the first pixel
  const row = meta.orientation.slice(0, 3);
  const column = meta.orientation.slice(3, 6);
  return meta.position.map((p, k) => p + row[k] * x * meta.spacing[1] + column[k] * y * meta.spacing[0]);
}
