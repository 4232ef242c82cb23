// Comparison reading across viewports: linked scrolling, reference lines and the crosshair point
// (docs/viewer.md, "Linked scrolling, reference lines, crosshairs"). The geometry is geometry.js;
// this module decides which viewport follows which. Imported after the first image, like the modes.
//
// Frames of reference: series that share a FrameOfReferenceUID share patient coordinates. Between
// two frames of reference a registration is a translation (p in the first is p + offset in the
// second): set by the "link" action from the slices on screen (their offset along the normal), or,
// when the layout hangs a study beside another of the patient's, assumed to be none (the same
// scanner coordinates, which the reader corrects by aligning a slice pair and linking).
import { add, alignment, centreOf, nearestSlice, parallel, patientToPixel, pixelToPatient, planeOf, referenceLine, scale, shifted, sliceSpacing } from "./geometry.js";

export const MAX_REGISTRATIONS = 8; // what one viewport event carries (collab/protocol.py bounds it too)

/** The geometry of a stack once its metadata is here: {planes, frameOfReference, spacing}, cached on it. */
export function geometryOf(stack) {
  if (!stack || !stack.items.length || !stack.items[0].meta) return null;
  if (stack.geometry && stack.geometry.items === stack.items[0].meta) return stack.geometry;
  const planes = stack.items.map((item) => planeOf(item.meta));
  const first = planes.find(Boolean);
  const meta = stack.items[0].meta;
  stack.geometry = {
    items: meta, // the metadata this was computed from
    planes,
    frameOfReference: meta.frameOfReference || stack.series, // no FrameOfReferenceUID: the series is its own
    spacing: first ? sliceSpacing(planes, first.normal) : 0,
    thickness: meta.thickness || 0,
  };
  return stack.geometry;
}

const key = (a, b) => `${a}|${b}`;

export class Linking {
  constructor(app) {
    this.app = app;
    this.on = false;
    this.chosen = false; // the reader (or the presenter) turned linking on or off: the hanging no longer decides
    this.offsets = new Map(); // "forA|forB" -> [dx, dy, dz]: p in A is p + offset in B
    this.crosshair = null; // {frameOfReference, point: [x, y, z]}
  }

  // ---------------------------------------------------------------- state

  visible() { return this.app.viewports.filter((v) => !v.root.hidden && v.stack); }

  /** The translation from frame of reference `a` to `b`, or null when the two are not registered. */
  offset(a, b) {
    if (a === b) return [0, 0, 0];
    if (this.offsets.has(key(a, b))) return this.offsets.get(key(a, b));
    if (this.offsets.has(key(b, a))) return scale(this.offsets.get(key(b, a)), -1);
    return null;
  }

  setOffset(a, b, offset) {
    if (a === b) return;
    this.offsets.delete(key(b, a));
    this.offsets.set(key(a, b), offset.map((x) => Math.round(x * 1e4) / 1e4));
  }

  /** Turn linked scrolling on or off; `remote`: from the presenter (not announced back). */
  setOn(on, { remote = false } = {}) {
    this.on = !!on;
    this.chosen = true;
    for (const button of document.querySelectorAll("[data-action='linked']")) button.setAttribute("aria-pressed", String(this.on));
    document.body.dataset.linked = this.on ? "on" : "off";
    if (this.on) this.follow(this.app.activeViewport);
    else for (const v of this.app.viewports) v.setOutOfRange(false);
    if (!remote && this.app.activeViewport) this.app.activeViewport.announce();
  }

  /** Registrations as sent in viewport events: [{from, to, offset}], at most MAX_REGISTRATIONS. */
  registrations() {
    return [...this.offsets].slice(-MAX_REGISTRATIONS).map(([pair, offset]) => {
      const [from, to] = pair.split("|");
      return { from, to, offset };
    });
  }

  /** What viewport events carry of it (docs/viewer.md): {linked, registrations, crosshair}. */
  state() {
    return {
      linked: this.on,
      registrations: this.registrations(),
      crosshair: this.crosshair ? { frameOfReference: this.crosshair.frameOfReference, point: [...this.crosshair.point] } : null,
    };
  }

  /** A presenter's linked state and registrations (from `apply-viewport`), before its slice is applied. */
  applyRegistrations({ linked, registrations }) {
    const finite = (x) => typeof x === "number" && Number.isFinite(x);
    if (Array.isArray(registrations)) {
      for (const r of registrations.slice(0, MAX_REGISTRATIONS)) {
        if (r && typeof r.from === "string" && typeof r.to === "string" && Array.isArray(r.offset) && r.offset.length === 3 && r.offset.every(finite)) {
          this.setOffset(r.from, r.to, r.offset);
        }
      }
    }
    if (typeof linked === "boolean" && linked !== this.on) this.setOn(linked, { remote: true });
  }

  /** A presenter's crosshair point (from `apply-viewport`; null clears it; absent leaves it). */
  applyCrosshair(state) {
    if (!("crosshair" in state) || state.crosshair === undefined) return;
    const c = state.crosshair;
    const valid = c && typeof c.frameOfReference === "string" && Array.isArray(c.point) && c.point.length === 3 && c.point.every(Number.isFinite);
    const next = valid ? { frameOfReference: c.frameOfReference, point: [...c.point] } : null;
    if (JSON.stringify(next) === JSON.stringify(this.crosshair)) return;
    this.placeCrosshair(next); // every viewport, the one the presenter's slice was applied to included (already there, it stays)
  }

  // ---------------------------------------------------------------- hanging and the link action

  /**
   * The hanging of a study beside another of the patient's turns linking on (unless the reader
   * chose otherwise) and assumes no offset between frames of reference not yet registered. Called
   * when the layout or a viewport's series changes and when metadata arrives.
   */
  hang() {
    const shown = this.visible().filter((v) => geometryOf(v.stack));
    const studies = new Set(shown.map((v) => v.stack.study));
    if (studies.size < 2) return;
    let added = false;
    for (const a of shown) {
      for (const b of shown) {
        const fa = geometryOf(a.stack).frameOfReference;
        const fb = geometryOf(b.stack).frameOfReference;
        if (a.stack.study !== b.stack.study && fa < fb && !this.offset(fa, fb)) { this.setOffset(fa, fb, [0, 0, 0]); added = true; }
      }
    }
    if (!this.chosen && !this.on) {
      this.on = true;
      for (const button of document.querySelectorAll("[data-action='linked']")) button.setAttribute("aria-pressed", "true");
      document.body.dataset.linked = "on";
      added = true;
    }
    if (added && this.on) this.follow(this.app.activeViewport);
  }

  /**
   * The link action: the slices now on screen are declared to match. Every visible viewport of
   * another frame of reference than the active one, with parallel slices, keeps its offset along
   * the normal from it; linking turns on. Returns how many viewports were linked.
   */
  linkOnScreen() {
    const source = this.app.activeViewport;
    const from = source && this.planeShown(source);
    if (!from) return 0;
    const fa = geometryOf(source.stack).frameOfReference;
    const linked = [];
    for (const v of this.visible()) {
      const plane = this.planeShown(v);
      if (v === source || !plane || !parallel(from, plane)) continue;
      const fb = geometryOf(v.stack).frameOfReference;
      if (fb === fa) continue;
      this.setOffset(fa, fb, alignment(from, plane));
      linked.push(fb);
    }
    // Between the others, through the active one.
    for (const fb of linked) for (const fc of linked) {
      if (fb < fc) this.setOffset(fb, fc, add(this.offset(fa, fc), scale(this.offset(fa, fb), -1)));
    }
    this.setOn(true);
    return linked.length;
  }

  // ---------------------------------------------------------------- following

  planeShown(v) {
    const geometry = geometryOf(v.stack);
    const index = v.shown ? v.shown.index : v.target;
    return geometry ? geometry.planes[index] : null;
  }

  planeAsked(v) {
    const geometry = geometryOf(v.stack);
    return geometry ? geometry.planes[v.target] : null;
  }

  /** The slice of `v` through patient point `point` (of frame of reference `frame`), parallel to its own. */
  sliceThrough(v, frame, point) {
    const geometry = geometryOf(v.stack);
    const plane = this.planeAsked(v) || (geometry && geometry.planes.find(Boolean));
    const offset = geometry && this.offset(frame, geometry.frameOfReference);
    if (!plane || !offset) return undefined; // not comparable: left alone
    return nearestSlice(geometry.planes, add(point, offset), { normal: plane.normal, spacing: geometry.spacing, thickness: geometry.thickness });
  }

  /** Linked scrolling: the other visible viewports go to the slice at `source`'s position (called when it moves). */
  follow(source) {
    if (!this.on || !source || !source.stack) return;
    const from = this.planeAsked(source);
    if (!from) return;
    const frame = geometryOf(source.stack).frameOfReference;
    const point = centreOf(from);
    source.setOutOfRange(false);
    for (const v of this.visible()) {
      if (v === source) continue;
      const plane = this.planeAsked(v);
      if (!plane || !parallel(from, plane)) continue;
      const index = this.sliceThrough(v, frame, point);
      if (index === undefined) continue;
      v.setOutOfRange(index === null);
      if (index !== null) v.setIndex(index, { linked: true });
    }
  }

  // ---------------------------------------------------------------- crosshairs

  /** Set the crosshair point at image point `xy` of viewport `source`; the viewports of its frame of reference go to it. */
  setCrosshair(source, xy) {
    const plane = this.planeShown(source);
    if (!plane) { this.app.toast("This image has no patient geometry: no crosshairs."); return; }
    this.placeCrosshair({ frameOfReference: geometryOf(source.stack).frameOfReference, point: pixelToPatient(plane, xy) }, source);
    source.announce();
  }

  /** Show `crosshair` ({frameOfReference, point}, or null to clear it) and move the viewports to it. */
  placeCrosshair(crosshair, source = null) {
    this.crosshair = crosshair;
    if (crosshair) {
      for (const v of this.visible()) {
        if (v === source) continue;
        const index = this.sliceThrough(v, crosshair.frameOfReference, crosshair.point);
        if (index === undefined) continue;
        v.setOutOfRange(false);
        if (index !== null && index !== v.target) v.setIndex(index, { linked: true });
      }
    }
    this.app.redrawOverlays();
  }

  // ---------------------------------------------------------------- what the overlay draws

  /**
   * The reference lines and crosshair of viewport `v`, in its image coordinates:
   * {references: [{points: [[x, y], [x, y]], kind: "current"|"first"|"last"}],
   * crosshair: {point: [x, y], size: [columns, rows]} or null}.
   */
  overlayFor(v) {
    const out = { references: [], crosshair: null };
    const target = this.planeShown(v);
    if (!target) return out;
    const frame = geometryOf(v.stack).frameOfReference;
    const active = this.app.activeViewport;
    if (active && active !== v && active.stack && !active.root.hidden) {
      const geometry = geometryOf(active.stack);
      const offset = geometry && this.offset(geometry.frameOfReference, frame);
      const current = this.planeShown(active);
      if (offset && current && !parallel(current, target)) {
        const index = active.shown ? active.shown.index : active.target;
        const lines = [["current", current]];
        const last = geometry.planes.length - 1;
        if (last > 0 && index !== 0) lines.push(["first", geometry.planes[0]]);
        if (last > 0 && index !== last) lines.push(["last", geometry.planes[last]]);
        for (const [kind, plane] of lines) {
          const points = plane && referenceLine(shifted(plane, offset), target);
          if (points) out.references.push({ kind, points });
        }
      }
    }
    if (this.crosshair) {
      const offset = this.offset(this.crosshair.frameOfReference, frame);
      if (offset) {
        const geometry = geometryOf(v.stack);
        const [x, y, distance] = patientToPixel(target, add(this.crosshair.point, offset));
        const half = (geometry.spacing || geometry.thickness || 1) / 2 + 1e-3;
        if (Math.abs(distance) <= half && x >= 0 && y >= 0 && x <= target.columns && y <= target.rows) out.crosshair = { point: [x, y], size: [target.columns, target.rows] };
      }
    }
    return out;
  }
}
