// Patient-space geometry of image planes, pure (no DOM): what linked scrolling, reference lines and
// crosshairs compute with. Patient coordinates are DICOM LPS millimetres. Image coordinates are the
// viewer's (x the column, y the row, (0, 0) the top-left corner of the top-left pixel, so the centre
// of pixel (c, r) is (c + 0.5, r + 0.5)); ImagePositionPatient is the centre of the first pixel.
//
// A plane is {origin, row, column, normal, spacing: [between rows, between columns], rows, columns}:
// `row` the direction of increasing column index (ImageOrientationPatient's first triple), `column`
// that of increasing row index (its second), `normal` = row × column.

export const PARALLEL = 0.995; // |cos| of the angle between normals above which planes count as parallel (~5.7°)
const EPSILON = 1e-9;

export const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
export const add = (a, b) => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
export const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
export const scale = (a, k) => [a[0] * k, a[1] * k, a[2] * k];
const unit = (a) => { const n = Math.hypot(...a); return n > EPSILON ? scale(a, 1 / n) : null; };

/**
 * The plane of one frame from its description ({position, orientation, spacing, rows, columns}, as
 * stack.js `describe` gives it), or null when any of them is missing or degenerate.
 */
export function planeOf(meta) {
  if (!meta || !meta.position || meta.position.length !== 3 || !meta.orientation || meta.orientation.length !== 6) return null;
  if (!meta.spacing || !(meta.spacing[0] > 0 && meta.spacing[1] > 0) || !(meta.rows > 0 && meta.columns > 0)) return null;
  const row = unit(meta.orientation.slice(0, 3));
  const column = unit(meta.orientation.slice(3, 6));
  if (!row || !column) return null;
  const normal = unit(cross(row, column));
  if (!normal) return null;
  return { origin: [...meta.position], row, column, normal, spacing: [meta.spacing[0], meta.spacing[1]], rows: meta.rows, columns: meta.columns };
}

/** A plane moved by `offset` (a patient-space vector): the same image in another frame of reference. */
export function shifted(plane, offset) {
  return plane && offset ? { ...plane, origin: add(plane.origin, offset) } : plane;
}

/** The plane's position along `normal` (default its own): the signed distance of its origin from 0. */
export function positionAlong(plane, normal = plane.normal) { return dot(plane.origin, normal); }

/** Image coordinates [x, y] on `plane` -> the patient point. */
export function pixelToPatient(plane, [x, y]) {
  return add(plane.origin, add(scale(plane.row, (x - 0.5) * plane.spacing[1]), scale(plane.column, (y - 0.5) * plane.spacing[0])));
}

/** A patient point -> [x, y, distance]: its image coordinates on `plane` and its signed distance from it (mm, along the normal). */
export function patientToPixel(plane, point) {
  const d = sub(point, plane.origin);
  return [dot(d, plane.row) / plane.spacing[1] + 0.5, dot(d, plane.column) / plane.spacing[0] + 0.5, dot(d, plane.normal)];
}

/** Whether two planes are parallel (within ~5.7°). */
export function parallel(a, b) { return Math.abs(dot(a.normal, b.normal)) >= PARALLEL; }

/** The patient point at the centre of the plane's image. */
export function centreOf(plane) { return pixelToPatient(plane, [plane.columns / 2, plane.rows / 2]); }

/**
 * The spacing of a stack of planes along `normal`: the median gap between the sorted positions of
 * the planes parallel to it (0 when fewer than two are).
 */
export function sliceSpacing(planes, normal) {
  const positions = planes.filter((p) => p && Math.abs(dot(p.normal, normal)) >= PARALLEL).map((p) => dot(p.origin, normal)).sort((a, b) => a - b);
  const gaps = [];
  for (let i = 1; i < positions.length; i += 1) if (positions[i] - positions[i - 1] > 1e-4) gaps.push(positions[i] - positions[i - 1]);
  if (!gaps.length) return 0;
  gaps.sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 2)];
}

/**
 * The index of the plane of `planes` (a stack, null entries allowed) nearest to `point` along
 * `normal`, among those parallel to it, or null when the nearest is more than half a slice
 * spacing away (out of the stack's range). `thickness` stands for the spacing of a one-plane stack.
 * `normal` defaults to the first usable plane's.
 */
export function nearestSlice(planes, point, { normal = null, spacing = null, thickness = 0 } = {}) {
  const first = planes.find(Boolean);
  if (!first || !point) return null;
  const n = normal || first.normal;
  const d = dot(point, n);
  let best = null;
  let bestGap = Infinity;
  planes.forEach((plane, index) => {
    if (!plane || Math.abs(dot(plane.normal, n)) < PARALLEL) return;
    const gap = Math.abs(dot(plane.origin, n) - d);
    if (gap < bestGap - 1e-9) { best = index; bestGap = gap; }
  });
  if (best === null) return null;
  const step = spacing ?? sliceSpacing(planes, n);
  const tolerance = (step > 0 ? step : thickness) / 2 + 1e-6;
  return bestGap <= tolerance ? best : null;
}

/** Clip the parameter interval [t0, t1] of the line a + t·b (scalars) to 0 <= value <= limit. */
function clipInterval([t0, t1], a, b, limit) {
  // value(t) = a + b t must lie in [0, limit]
  if (Math.abs(b) < EPSILON) return a >= -1e-6 && a <= limit + 1e-6 ? [t0, t1] : null;
  let lo = (0 - a) / b;
  let hi = (limit - a) / b;
  if (lo > hi) [lo, hi] = [hi, lo];
  const next = [Math.max(t0, lo), Math.min(t1, hi)];
  return next[0] <= next[1] ? next : null;
}

/**
 * The reference line of plane `source` on plane `target`: where the two planes meet, clipped to
 * both images' rectangles, as two points in `target`'s image coordinates, or null (parallel planes,
 * or planes that do not meet within both images).
 */
export function referenceLine(source, target) {
  if (!source || !target || parallel(source, target)) return null;
  // On the target's image, f(x, y) = a x + b y + c is the signed distance from the source plane.
  const a = dot(target.row, source.normal) * target.spacing[1];
  const b = dot(target.column, source.normal) * target.spacing[0];
  const c = dot(sub(pixelToPatient(target, [0, 0]), source.origin), source.normal);
  // A point of the line and its direction, in target image coordinates.
  const norm2 = a * a + b * b;
  if (norm2 < EPSILON) return null;
  const p0 = [-a * c / norm2, -b * c / norm2];
  const dir = [-b, a];
  const large = 1e9;
  let interval = [-large, large];
  interval = clipInterval(interval, p0[0], dir[0], target.columns);
  if (interval) interval = clipInterval(interval, p0[1], dir[1], target.rows);
  if (!interval) return null;
  // The same line in the source's image coordinates (affine in t): clip to its rectangle too.
  const q0 = patientToPixel(source, pixelToPatient(target, p0));
  const q1 = patientToPixel(source, pixelToPatient(target, [p0[0] + dir[0], p0[1] + dir[1]]));
  interval = clipInterval(interval, q0[0], q1[0] - q0[0], source.columns);
  if (interval) interval = clipInterval(interval, q0[1], q1[1] - q0[1], source.rows);
  if (!interval || interval[1] - interval[0] < 1e-9) return null;
  return interval.map((t) => [p0[0] + t * dir[0], p0[1] + t * dir[1]]);
}

/**
 * The translation that brings plane `a`'s position along its normal onto plane `b`'s: what the
 * "link" action keeps between two series of different frames of reference. A point p of a's frame
 * is p + offset in b's.
 */
export function alignment(a, b) {
  return scale(a.normal, dot(b.origin, a.normal) - dot(a.origin, a.normal));
}
