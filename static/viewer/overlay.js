// Drawing of the SVG overlay of one viewport, in screen (CSS pixel) coordinates recomputed from
// image coordinates on every view change, so marks stay on the anatomy through zoom, pan and
// scroll. Pure drawing: the state comes in as arguments.
import { placeLabels } from "./placement.js";
import { measurementLines } from "./tools.js";

const SVG = "http://www.w3.org/2000/svg";

function el(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.append(node);
  return node;
}

function pathOf(points, close = false) {
  return points.map((p, i) => `${i ? "L" : "M"}${p[0].toFixed(1)},${p[1].toFixed(1)}`).join("") + (close ? "Z" : "");
}

/** An arc at `vertex` from the arm towards `a` to the arm towards `b`, the smaller way round (screen pixels). */
function arcOf(vertex, a, b) {
  const arm = (p) => Math.hypot(p[0] - vertex[0], p[1] - vertex[1]);
  const radius = Math.max(4, Math.min(24, 0.35 * Math.min(arm(a), arm(b))));
  const [ta, tb] = [a, b].map((p) => Math.atan2(p[1] - vertex[1], p[0] - vertex[0]));
  let sweep = tb - ta;
  while (sweep <= -Math.PI) sweep += 2 * Math.PI;
  while (sweep > Math.PI) sweep -= 2 * Math.PI;
  const at = (t) => [vertex[0] + radius * Math.cos(t), vertex[1] + radius * Math.sin(t)];
  const [start, end] = [at(ta), at(ta + sweep)];
  return `M${start[0].toFixed(1)},${start[1].toFixed(1)}A${radius.toFixed(1)},${radius.toFixed(1)} 0 0 ${sweep > 0 ? 1 : 0} ${end[0].toFixed(1)},${end[1].toFixed(1)}`;
}

function shapeOf(kind, pts, group, className) {
  // Each shape twice: a wide transparent stroke to grab, then the visible one.
  const shapes = [];
  const add = (name, attributes) => {
    el(name, { ...attributes, class: "hit" }, group);
    shapes.push(el(name, { ...attributes, class: className }, group));
  };
  switch (kind) {
    case "length":
      add("path", { d: pathOf(pts) });
      break;
    case "arrow": {
      add("path", { d: pathOf([pts[1], pts[0]]) });
      const [tip, tail] = pts;
      const angle = Math.atan2(tail[1] - tip[1], tail[0] - tip[0]);
      const head = [-0.45, 0.45].map((da) => [tip[0] + 12 * Math.cos(angle + da), tip[1] + 12 * Math.sin(angle + da)]);
      el("path", { d: pathOf([head[0], tip, head[1]]), class: className }, group);
      break;
    }
    case "bidirectional":
      add("path", { d: pathOf(pts.slice(0, 2)) });
      add("path", { d: pathOf(pts.slice(2, 4)) });
      break;
    case "ellipse": {
      const [a, b] = pts;
      add("ellipse", { cx: (a[0] + b[0]) / 2, cy: (a[1] + b[1]) / 2, rx: Math.abs(b[0] - a[0]) / 2, ry: Math.abs(b[1] - a[1]) / 2 });
      break;
    }
    case "freehand":
      add("path", { d: pathOf(pts, pts.length > 2) });
      break;
    case "angle": // the arms through the vertex (a draft may have only the first), and an arc at the vertex
      add("path", { d: pathOf(pts) });
      if (pts.length === 3) el("path", { d: arcOf(pts[1], pts[0], pts[2]), class: `${className} arc` }, group);
      break;
    case "cobb": // two lines (a draft may have only the first)
      add("path", { d: pathOf(pts.slice(0, 2)) });
      if (pts.length === 4) add("path", { d: pathOf(pts.slice(2, 4)) });
      break;
    case "point":
      add("circle", { cx: pts[0][0], cy: pts[0][1], r: 4 });
      el("path", { d: `M${pts[0][0] - 9},${pts[0][1]}h5m8,0h5M${pts[0][0]},${pts[0][1] - 9}v5m0,8v5`, class: className }, group);
      break;
    default:
      break;
  }
  return shapes;
}

// ---------------------------------------------------------------- the marks' text

const FONT = "600 12.5px system-ui, sans-serif"; // as svg.overlay .measure-text in crossread.css
const LINE_HEIGHT = 15.6; // 1.25em
const PADDING = 2;
let measurer = null;
const widths = new Map();

/** The width in CSS pixels of `text` in the labels' font (an off-screen canvas; remembered). */
function textWidth(text) {
  if (widths.has(text)) return widths.get(text);
  measurer ||= document.createElement("canvas").getContext("2d");
  measurer.font = FONT;
  const width = measurer.measureText(text).width;
  if (widths.size > 2000) widths.clear();
  widths.set(text, width);
  return width;
}

/** The screen box of a mark (its points; a point's cross and an ellipse's outline included). */
function boundsOf(kind, pts) {
  if (kind === "angle" && pts.length === 3) { // the text beside the vertex and its arc
    const [x, y] = pts[1];
    return { x0: x - 26, y0: y - 26, x1: x + 26, y1: y + 26 }; // (the arc's radius is at most 24)
  }
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const pad = kind === "point" ? 9 : 0;
  return { x0: Math.min(...xs) - pad, y0: Math.min(...ys) - pad, x1: Math.max(...xs) + pad, y1: Math.max(...ys) + pad };
}

/** The points a leader line may end at: the mark's points, or an ellipse's four extreme points. */
function leaderTargets(kind, pts) {
  if (kind !== "ellipse") return kind === "arrow" ? [pts[1]] : pts;
  const [a, b] = pts;
  const [cx, cy] = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
  return [[a[0], cy], [b[0], cy], [cx, a[1]], [cx, b[1]]];
}

/** A label to place: the group it goes in, its lines, the mark's box and points. */
function labelRequest(group, kind, pts, lines) {
  if (!lines.length) return null;
  const width = Math.max(...lines.map(textWidth)) + 2 * PADDING;
  return { group, lines, size: [Math.ceil(width), Math.ceil(lines.length * LINE_HEIGHT + 2 * PADDING)], bounds: boundsOf(kind, pts), points: leaderTargets(kind, pts) };
}

/** Write each label at its place (placement.js), with a leader line to its mark when moved away. */
function writeLabels(requests, width, height) {
  const places = placeLabels(requests, { width, height });
  requests.forEach((request, i) => {
    const { x, y, h, leader } = places[i];
    const label = el("g", { class: "mark-label" }, request.group);
    if (leader) {
      const [[x1, y1], [x2, y2]] = leader;
      el("line", { class: "leader", x1: x1.toFixed(1), y1: y1.toFixed(1), x2: x2.toFixed(1), y2: y2.toFixed(1) }, label);
    }
    el("rect", { class: "label-hit", x: x.toFixed(1), y: y.toFixed(1), width: places[i].w, height: h }, label);
    const text = el("text", { x: (x + PADDING).toFixed(1), y: (y + PADDING + LINE_HEIGHT / 2).toFixed(1), class: "measure-text" }, label);
    request.lines.forEach((line, n) => {
      const span = el("tspan", { x: (x + PADDING).toFixed(1), dy: n === 0 ? "0.35em" : "1.25em" }, text);
      span.textContent = line;
    });
  });
}

/**
 * The reference lines of the active viewport's slice ({kind: current|first|last, points: two image
 * points}) and the crosshair point ({point, size: [columns, rows]}): lines across the image through
 * it, with a gap around it), under the annotations.
 */
function drawReferences(svg, references, crosshair, toScreen) {
  for (const line of references) {
    const [a, b] = line.points.map(toScreen);
    el("line", { x1: a[0].toFixed(1), y1: a[1].toFixed(1), x2: b[0].toFixed(1), y2: b[1].toFixed(1), class: `reference-line ${line.kind}`, "data-kind": line.kind }, svg);
  }
  if (!crosshair) return;
  const [x, y] = crosshair.point;
  const [columns, rows] = crosshair.size;
  const [cx, cy] = toScreen([x, y]);
  const gap = 10;
  const group = el("g", { class: "crosshair", "data-x": x.toFixed(2), "data-y": y.toFixed(2) }, svg);
  // an arm from the point to each edge of the image (any rotation or flip of the view), a gap around the point
  for (const [ex, ey] of [toScreen([0, y]), toScreen([columns, y]), toScreen([x, 0]), toScreen([x, rows])]) {
    const length = Math.hypot(ex - cx, ey - cy);
    if (length <= gap + 1) continue;
    const [ux, uy] = [(ex - cx) / length, (ey - cy) / length];
    el("line", { x1: (cx + ux * gap).toFixed(1), y1: (cy + uy * gap).toFixed(1), x2: ex.toFixed(1), y2: ey.toFixed(1) }, group);
  }
  el("circle", { cx: cx.toFixed(1), cy: cy.toFixed(1), r: 3 }, group);
}

/**
 * Redraw `svg`. `toScreen([x, y])` maps image to overlay coordinates; `meta` describes the frame.
 * annotations: [{id, kind, points, label, measurements, author, pending}], selected: id or null,
 * draft: {kind, points} or null, remoteDrafts: [{user, colour, kind, points}], cursors: [{user, colour, x, y}].
 */
export function drawOverlay(svg, { annotations, selected, draft, remoteDrafts, cursors, toScreen, meta, width, height, editable, references = [], crosshair = null }) {
  svg.replaceChildren();
  const labels = [];
  drawReferences(svg, references, crosshair, toScreen);
  for (const annotation of annotations) {
    const pts = annotation.points.map(toScreen);
    const isSelected = annotation.id === selected;
    const group = el("g", {
      class: `annotation ${annotation.kind}${isSelected ? " selected" : ""}${annotation.pending ? " pending" : ""}`,
      "data-id": String(annotation.id), "data-kind": annotation.kind,
    }, svg);
    const lines = measurementLines(annotation, meta);
    const title = el("title", {}, group);
    title.textContent = `${annotation.kind} by ${annotation.author || "you"}: ${lines.join("; ")}`;
    shapeOf(annotation.kind, pts, group, "shape");
    labels.push(labelRequest(group, annotation.kind, pts, lines));
    if (isSelected && editable && annotation.kind !== "freehand") {
      pts.forEach((p, index) => el("circle", { cx: p[0], cy: p[1], r: 5, class: "handle", "data-handle": index }, group));
    }
  }
  if (draft && draft.points.length) {
    const pts = draft.points.map(toScreen);
    const group = el("g", { class: "annotation draft" }, svg);
    shapeOf(draft.kind, pts, group, "shape");
    labels.push(labelRequest(group, draft.kind, pts, measurementLines({ ...draft, measurements: null }, meta)));
  }
  writeLabels(labels.filter(Boolean), width, height);
  for (const remote of remoteDrafts) {
    if (!remote.points || !remote.points.length) continue;
    const group = el("g", { class: "annotation remote-draft", style: `--colour:${remote.colour || "#f5a623"}` }, svg);
    shapeOf(remote.kind, remote.points.map(toScreen), group, "shape");
  }
  for (const cursor of cursors) {
    const [x, y] = toScreen([cursor.x, cursor.y]);
    const group = el("g", { class: "remote-cursor", style: `--colour:${cursor.colour || "#f5a623"}`, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` }, svg);
    el("path", { d: "M0,0 L0,16 L4.5,12 L8,19 L10.5,18 L7,11 L12.5,11 Z" }, group);
    const name = el("text", { x: 14, y: 24 }, group);
    name.textContent = cursor.user;
  }
}
