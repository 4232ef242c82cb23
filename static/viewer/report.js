// An SR document (TID 1500 and other templates, Key Object Selection) as a readable report in a side
// panel: containers as headings, measurements with value and units, codes by their meaning, text,
// dates, names and references to images (a click shows the image). Its spatial coordinates are drawn
// read-only on the images they refer to (SCOORD: the image it was selected from; SCOORD3D: any slice
// of the same frame of reference it lies on), in a style of their own. The tree comes from the server
// (viewer/structured.py), masked there for a blinded reader.
import { requestJson } from "./api.js";
import { imageTransform, panel, setLayer, showImage, svgEl } from "./document_layers.js";
import { patientToPixel, planeOf } from "./geometry.js";

const LAYER = "sr";

export async function openReport(app, outline, doc, sop) {
  const url = `/projects/${encodeURIComponent(app.project)}/instances/${encodeURIComponent(sop)}/report`;
  const tree = await requestJson(url);
  const body = panel(app, { title: tree.title || "Structured report", kind: "sr", onClose: () => setLayer(app, LAYER, null) });
  body.append(header(tree));
  const content = document.createElement("div");
  content.className = "sr-content";
  for (const node of tree.content) content.append(renderNode(app, node, 3));
  body.append(content);
  if (tree.truncated) body.append(note("The report is longer than the viewer shows; the rest is left out."));
  if (tree.withheld) body.append(note(`${tree.withheld} item${tree.withheld === 1 ? "" : "s"} (names, dates, free text) withheld: blinded reading.`));
  const regions = tree.regions || [];
  setLayer(app, LAYER, regions.length ? (viewport, svg, item) => drawRegions(viewport, svg, item, regions) : null);
  // Go to the first referenced image, unless one of them is on screen already.
  const first = regions.find((r) => r.sopInstanceUID);
  const shown = app.viewports.some((v) => v.stack && v.shown && regions.some((r) => r.sopInstanceUID === v.stack.items[v.shown.index].sop));
  if (first && !shown) showImage(app, first.sopInstanceUID, first.frame || 1);
  document.body.dataset.reportOpen = sop;
  return tree;
}

function note(text) {
  const p = document.createElement("p");
  p.className = "muted small";
  p.textContent = text;
  return p;
}

function header(tree) {
  const dl = document.createElement("dl");
  dl.className = "sr-header";
  const rows = [
    ["Document", tree.sopClass],
    ["Template", tree.template ? `TID ${tree.template}` : ""],
    ["Status", [tree.completion, tree.verification].filter(Boolean).join(", ")],
    ["Date", tree.contentDate || ""],
    ["Series", tree.seriesDescription || ""],
  ];
  for (const [term, value] of rows) {
    if (!value) continue;
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dl.append(dt, dd);
  }
  return dl;
}

function meaning(code) {
  return code ? code.meaning || code.value || "" : "";
}

/** One content item: a heading and its children for a container, a line otherwise. */
function renderNode(app, node, level) {
  const name = meaning(node.name);
  if (node.type === "CONTAINER") {
    const section = document.createElement("section");
    section.className = "sr-container";
    section.dataset.id = node.id;
    const heading = document.createElement(`h${Math.min(6, level)}`);
    heading.textContent = name || "Container";
    section.append(heading);
    const list = document.createElement("ul");
    for (const child of node.children || []) list.append(listItem(app, child, level + 1));
    section.append(list);
    return section;
  }
  const ul = document.createElement("ul");
  ul.append(listItem(app, node, level));
  return ul;
}

function listItem(app, node, level) {
  const li = document.createElement("li");
  li.className = `sr-item sr-${node.type.toLowerCase()}`;
  li.dataset.id = node.id;
  if (node.type === "CONTAINER") { li.append(renderNode(app, node, level)); return li; }
  const name = document.createElement("span");
  name.className = "sr-name";
  name.textContent = meaning(node.name) || node.type;
  const value = document.createElement("span");
  value.className = "sr-value";
  switch (node.type) {
    case "NUM":
      if (node.value === null || node.value === undefined) value.textContent = meaning(node.qualifier) || "no value";
      else {
        const unit = node.unit ? (node.unit.value === "1" ? "" : node.unit.value) : "";
        value.textContent = `${node.value}${unit ? ` ${unit}` : ""}`;
        if (node.unit) value.title = node.unit.meaning;
      }
      break;
    case "CODE":
      value.textContent = meaning(node.code);
      if (node.code) value.title = `${node.code.scheme} ${node.code.value}`;
      break;
    case "TEXT": case "DATE": case "TIME": case "DATETIME": case "PNAME":
      value.textContent = node.text || "";
      break;
    case "UIDREF":
      value.textContent = node.uid || "";
      value.classList.add("uid");
      break;
    case "IMAGE": case "COMPOSITE": {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link sr-image";
      const frames = node.frames && node.frames.length ? ` frame ${node.frames[0]}` : "";
      button.textContent = `${node.type === "IMAGE" ? "image" : "object"} …${(node.sopInstanceUID || "").slice(-8)}${frames}`;
      button.title = node.sopInstanceUID || "";
      button.addEventListener("click", () => {
        if (!showImage(app, node.sopInstanceUID, (node.frames || [1])[0])) app.toast("That image is not in this study's images.");
      });
      value.append(button);
      break;
    }
    case "SCOORD": case "SCOORD3D":
      value.textContent = `${(node.graphicType || "").toLowerCase()}, ${(node.points || []).length} point${(node.points || []).length === 1 ? "" : "s"}${node.type === "SCOORD3D" ? " (patient mm)" : ""}`;
      break;
    case "REFERENCE":
      value.textContent = `see item ${node.ref}`;
      break;
    default:
      value.textContent = "";
  }
  // the relations that say where a value comes from; the others (contains, has properties,
  // observation context, concept modifier) read as plain nesting
  const relation = ["INFERRED FROM", "SELECTED FROM", "HAS ACQ CONTEXT"].includes(node.relationship)
    ? `${node.relationship.toLowerCase()} ` : "";
  if (relation) {
    const rel = document.createElement("span");
    rel.className = "sr-relation muted small";
    rel.textContent = relation;
    li.append(rel);
  }
  li.append(name, document.createTextNode(": "), value);
  if (node.children && node.children.length) {
    const list = document.createElement("ul");
    for (const child of node.children) list.append(listItem(app, child, level + 1));
    li.append(list);
  }
  return li;
}

// ---------------------------------------------------------------- regions on the images

/** The regions on this image: SCOORD on this SOP instance and frame, SCOORD3D lying on this slice. */
export function regionsOn(item, regions) {
  const out = [];
  const plane = item.meta ? planeOf(item.meta) : null;
  for (const region of regions) {
    if (region.sopInstanceUID) {
      if (region.sopInstanceUID === item.sop && (region.frame || 1) === item.frame) out.push({ region, points: region.points });
    } else if (plane && region.frameOfReferenceUID && region.frameOfReferenceUID === item.meta.frameOfReference) {
      const tolerance = Math.max(0.5, (item.meta.thickness || 1) / 2);
      const projected = region.points.map((p) => patientToPixel(plane, p));
      if (projected.length && projected.every((p) => Math.abs(p[2]) <= tolerance)) out.push({ region, points: projected.map((p) => [p[0], p[1]]) });
    }
  }
  return out;
}

function drawRegions(viewport, svg, item, regions) {
  const found = regionsOn(item, regions);
  if (!found.length) return;
  const group = svgEl("g", { class: "sr-regions", "data-count": String(found.length) }, svg);
  const marks = svgEl("g", { transform: imageTransform(viewport) }, group);
  for (const { region, points } of found) {
    const shape = shapeOf(region.graphicType, points, marks);
    if (shape) {
      const title = svgEl("title", {}, shape);
      title.textContent = [region.tracking, region.label].filter(Boolean).join(": ");
    }
    const anchor = viewport.toScreen(points[0]);
    const text = svgEl("text", { x: anchor[0] + 6, y: anchor[1] - 6, class: "sr-label" }, group);
    text.textContent = [region.tracking, region.label].filter(Boolean).join(" ");
  }
}

function shapeOf(type, points, parent) {
  const path = (close) => points.map((p, i) => `${i ? "L" : "M"}${p[0]},${p[1]}`).join("") + (close ? "Z" : "");
  switch (type) {
    case "POINT": case "MULTIPOINT":
      return svgEl("path", { d: points.map((p) => `M${p[0]},${p[1]}m-1.5,0h3m-1.5,-1.5v3`).join(""), class: "sr-shape sr-point" }, parent);
    case "POLYLINE":
      return svgEl("path", { d: path(false), class: "sr-shape" }, parent);
    case "POLYGON":
      return svgEl("path", { d: path(true), class: "sr-shape" }, parent);
    case "CIRCLE": {
      if (points.length < 2) return null;
      const r = Math.hypot(points[1][0] - points[0][0], points[1][1] - points[0][1]);
      return svgEl("circle", { cx: points[0][0], cy: points[0][1], r, class: "sr-shape" }, parent);
    }
    case "ELLIPSE": case "ELLIPSOID": {
      if (points.length < 4) return null;
      const [a, b, c, d] = points;
      const cx = (a[0] + b[0]) / 2;
      const cy = (a[1] + b[1]) / 2;
      const rx = Math.hypot(b[0] - a[0], b[1] - a[1]) / 2;
      const ry = Math.hypot(d[0] - c[0], d[1] - c[1]) / 2;
      const angle = (Math.atan2(b[1] - a[1], b[0] - a[0]) * 180) / Math.PI;
      return svgEl("ellipse", { cx, cy, rx, ry, transform: `rotate(${angle} ${cx} ${cy})`, class: "sr-shape" }, parent);
    }
    default:
      return svgEl("path", { d: path(false), class: "sr-shape" }, parent);
  }
}
