// Measurement tools: one adapter per kind converting pointer gestures in image coordinates into
// the wire schema (points [[x, y], ...], x = column, y = row, (0, 0) the top-left corner of the
// top-left pixel; see annotations/geometry.py) and back into handles for editing.

const dist = (a, b) => Math.hypot(a[0] - b[0], a[1] - b[1]);
const sub = (a, b) => [a[0] - b[0], a[1] - b[1]];
const add = (a, b) => [a[0] + b[0], a[1] + b[1]];
const scale = (a, k) => [a[0] * k, a[1] * k];
const dot = (a, b) => a[0] * b[0] + a[1] * b[1];

/** Short axis of a bidirectional from its long axis: crossing at fraction t, signed half-lengths s0, s1. */
function shortAxis(p0, p1, t, s0, s1) {
  const along = sub(p1, p0);
  const length = Math.hypot(...along) || 1;
  const normal = [-along[1] / length, along[0] / length];
  const crossing = add(p0, scale(along, t));
  return [add(crossing, scale(normal, s0)), add(crossing, scale(normal, s1))];
}

function shortAxisParameters(points) {
  const [p0, p1, q0, q1] = points;
  const along = sub(p1, p0);
  const length2 = dot(along, along) || 1;
  const length = Math.sqrt(length2);
  const normal = [-along[1] / length, along[0] / length];
  const middle = scale(add(q0, q1), 0.5);
  const t = Math.min(1, Math.max(0, dot(sub(middle, p0), along) / length2));
  const crossing = add(p0, scale(along, t));
  return { t, s0: dot(sub(q0, crossing), normal), s1: dot(sub(q1, crossing), normal), crossing, normal };
}

const twoPoint = {
  begin: (p) => [p, p],
  move: (points, p) => [points[0], p],
  valid: (points, minimum) => dist(points[0], points[1]) >= minimum,
  moveHandle: (points, index, p) => points.map((q, i) => (i === index ? p : q)),
};

/** Any handle moves alone (angles: an arm's end or the vertex; Cobb: a line's end). */
const freeHandles = (points, index, p) => points.map((q, i) => (i === index ? p : q));

export const TOOLS = {
  length: { ...twoPoint, kind: "length", label: "Length", key: "l" },
  arrow: { ...twoPoint, kind: "arrow", label: "Arrow with text", key: "t", asksLabel: true },
  ellipse: { ...twoPoint, kind: "ellipse", label: "Ellipse ROI", key: "e",
    valid: (points, minimum) => Math.abs(points[0][0] - points[1][0]) >= minimum && Math.abs(points[0][1] - points[1][1]) >= minimum },
  point: { kind: "point", label: "Point", key: "m", begin: (p) => [p], move: (points, p) => [p], valid: () => true,
    moveHandle: (points, index, p) => [p] },
  bidirectional: {
    kind: "bidirectional", label: "Bidirectional (RECIST long and short axis)", key: "b",
    begin: (p) => [p, p, p, p],
    move: (points, p) => {
      const length = dist(points[0], p);
      return [points[0], p, ...shortAxis(points[0], p, 0.5, -length / 4, length / 4)];
    },
    valid: (points, minimum) => dist(points[0], points[1]) >= minimum,
    // Moving a long-axis end keeps the short axis perpendicular, at the same place and length;
    // moving a short-axis end slides it along the perpendicular.
    moveHandle: (points, index, p) => {
      const { t, s0, s1, crossing, normal } = shortAxisParameters(points);
      if (index < 2) {
        const long = index === 0 ? [p, points[1]] : [points[0], p];
        return [...long, ...shortAxis(long[0], long[1], t, s0, s1)];
      }
      const s = dot(sub(p, crossing), normal);
      const [n0, n1] = index === 2 ? [Math.min(s, -0.5), s1] : [s0, Math.max(s, 0.5)];
      return [points[0], points[1], add(crossing, scale(normal, n0)), add(crossing, scale(normal, n1))];
    },
  },
  freehand: {
    kind: "freehand", label: "Freehand ROI", key: "g",
    begin: (p) => [p],
    move: (points, p, minimumStep) => (dist(points[points.length - 1], p) >= minimumStep ? [...points, p] : points),
    valid: (points) => points.length >= 3,
    moveHandle: null, // freehand outlines move as a whole
    finish: (points) => simplify(points, 1500),
  },
  // Drawn in two steps by modes/angle.js: an angle's first arm is dragged from its end to the vertex,
  // then the second arm follows the pointer until a click; a Cobb angle's two lines are two drags.
  angle: {
    kind: "angle", label: "Angle (vertex in the middle)", key: "n", steps: 2, points: 3,
    moveHandle: freeHandles,
    valid: (points, minimum) => points.length === 3 && dist(points[0], points[1]) >= minimum && dist(points[1], points[2]) >= minimum,
  },
  cobb: {
    kind: "cobb", label: "Cobb angle (two lines)", key: "j", steps: 2, points: 4,
    moveHandle: freeHandles,
    valid: (points, minimum) => points.length === 4 && dist(points[0], points[1]) >= minimum && dist(points[2], points[3]) >= minimum,
  },
};

/** Keep at most `maximum` points, dropping every other one until it fits. */
function simplify(points, maximum) {
  let result = points;
  while (result.length > maximum) result = result.filter((_, i) => i % 2 === 0);
  return result;
}

export function translate(points, delta, columns, rows) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const dx = Math.min(Math.max(delta[0], -Math.min(...xs)), columns - Math.max(...xs));
  const dy = Math.min(Math.max(delta[1], -Math.min(...ys)), rows - Math.max(...ys));
  return points.map((p) => [p[0] + dx, p[1] + dy]);
}

export function clampPoint(p, columns, rows) {
  return [Math.min(Math.max(p[0], 0), columns), Math.min(Math.max(p[1], 0), rows)];
}

// ---------------------------------------------------------------- measurement text

// Which spacing a length was measured with (annotations.geometry.CalibrationSource), after its unit.
const CALIBRATION_NOTE = {
  ImagerPixelSpacing: " (detector)",
  "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor": " (magnification-corrected)",
  "PixelSpacing/calibrated": " (calibrated)",
  "PixelSpacing/projection": " (plane unknown)",
  SequenceOfUltrasoundRegions: " (US region)",
  "PixelSpacing/slide": " (slide)",
};

/** The note after a unit for a spacing source (the corner text's and the marks'): "" for PixelSpacing. */
export function calibrationNote(source) { return CALIBRATION_NOTE[source] || ""; }

/** A length (power 1) or an area (power 2) with its unit: micrometres of a slide become mm when large. */
function sized(value, unit, power = 1) {
  const digits = power === 1 ? 1 : 2;
  if (unit !== "um") return `${format(value, digits)} ${unit}${power === 2 ? "²" : ""}`;
  if (value !== null && value !== undefined && value >= 1000 ** power) return `${format(value / 1000 ** power, power === 1 ? 2 : 3)} mm${power === 2 ? "²" : ""}`;
  return `${format(value, digits)} µm${power === 2 ? "²" : ""}`;
}

/** Provisional angle on the client while drawing, in degrees in physical space (spacing: [row, column]). */
export function clientAngle(kind, points, spacing) {
  const [rowSpacing, columnSpacing] = spacing || [1, 1];
  const vector = (a, b) => [(b[0] - a[0]) * columnSpacing, (b[1] - a[1]) * rowSpacing];
  const [u, v] = kind === "angle" ? [vector(points[1], points[0]), vector(points[1], points[2])] : [vector(points[0], points[1]), vector(points[2], points[3])];
  const cross = Math.abs(u[0] * v[1] - u[1] * v[0]);
  const along = u[0] * v[0] + u[1] * v[1];
  return (Math.atan2(cross, kind === "angle" ? along : Math.abs(along)) * 180) / Math.PI;
}

function format(value, digits = 1) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

/** Provisional length on the client while drawing (the server's value replaces it). */
export function clientLength(a, b, spacing) {
  const [rowSpacing, columnSpacing] = spacing || [1, 1];
  return Math.hypot((b[0] - a[0]) * columnSpacing, (b[1] - a[1]) * rowSpacing);
}

/** Lines of text describing an annotation; `meta` is the frame's description (stack.js). */
export function measurementLines(annotation, meta) {
  const m = annotation.measurements;
  const units = meta && meta.units ? ` ${meta.units}` : "";
  const lines = [];
  if (annotation.label) lines.push(annotation.label);
  if (!m) {
    // Not saved yet: lengths from the metadata's spacing (a slide's in µm; an ultrasound region's only
    // the server knows: px until it answers), regions wait for the server.
    const slide = meta && meta.modality === "SM" && meta.spacing;
    const unit = slide ? "um" : meta && meta.spacing ? "mm" : "px";
    const spacing = slide ? meta.spacing.map((s) => s * 1000) : meta && meta.spacing;
    const p = annotation.points;
    if (annotation.kind === "length") lines.push(sized(clientLength(p[0], p[1], spacing), unit));
    if (annotation.kind === "bidirectional") {
      lines.push(`L ${format(clientLength(p[0], p[1], spacing))} × S ${format(clientLength(p[2], p[3], spacing))} ${unit}`);
    }
    if (annotation.kind === "ellipse" || annotation.kind === "freehand") lines.push("measuring…");
    const whole = (TOOLS[annotation.kind] || {}).points;
    if (whole && p.length === whole) lines.push(`${annotation.kind === "cobb" ? "Cobb " : ""}${format(clientAngle(annotation.kind, p, spacing))}°`);
    return lines;
  }
  const note = CALIBRATION_NOTE[m.calibration] || "";
  const unit = m.unit === "px" || m.unit === "um" ? m.unit : "mm";
  switch (annotation.kind) {
    case "length":
      lines.push(`${sized(m.length, unit)}${note}`);
      break;
    case "bidirectional":
      lines.push(unit === "um" ? `L ${sized(m.long_axis, unit)} × S ${sized(m.short_axis, unit)}${note}` : `L ${format(m.long_axis)} × S ${format(m.short_axis)} ${unit}${note}`);
      if (!m.valid) lines.push(m.perpendicular ? "axes do not cross" : `not perpendicular (${format(m.angle_deg)}°)`);
      break;
    case "angle":
      lines.push(`${format(m.angle)}°`);
      break;
    case "cobb":
      lines.push(`Cobb ${format(m.angle)}°`);
      break;
    case "ellipse":
    case "freehand":
      lines.push(`Area ${sized(m.area, unit, 2)}${note}`);
      if (m.stats && m.stats.count) {
        lines.push(`Mean ${format(m.stats.mean)}${units} · SD ${format(m.stats.std)}`);
        lines.push(`Min ${format(m.stats.min, 0)} · Max ${format(m.stats.max, 0)}${units}`);
      } else if (m.note) lines.push(m.note);
      break;
    case "point":
      if (m.value !== null && m.value !== undefined) lines.push(`${format(m.value)}${units}`);
      break;
    default:
      break;
  }
  return lines;
}
