// Segmentations (DICOM SEG, binary and fractional) and RT Structure Sets drawn on their source images,
// read-only. SEG: the server (viewer/segmentation.py, decoded with highdicom) gives one RGBA PNG per
// segment and source frame, in the segment's colour with the mask as alpha; each is drawn as an SVG
// image with the viewport's image transform, under a segment list with a checkbox per segment and an
// opacity slider. RTSTRUCT: each ROI's contours (patient mm) drawn on the slice ContourImageSequence
// names, or else on the slice whose plane they lie in, in ROIDisplayColor.
import { requestJson } from "./api.js";
import { imageTransform, panel, setLayer, showImage, svgEl } from "./document_layers.js";
import { patientToPixel, planeOf } from "./geometry.js";

const e = encodeURIComponent;

function instanceUrl(app, sop) {
  return `/projects/${e(app.project)}/instances/${e(sop)}`;
}

function controls(body, entries, state, onChange, { labelOf }) {
  const opacity = document.createElement("label");
  opacity.className = "overlay-opacity";
  opacity.textContent = "Opacity ";
  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = "0";
  slider.max = "100";
  slider.value = String(Math.round(state.opacity * 100));
  slider.setAttribute("aria-label", "Overlay opacity");
  slider.addEventListener("input", () => { state.opacity = Number(slider.value) / 100; onChange(); });
  opacity.append(slider);
  body.append(opacity);
  const list = document.createElement("ul");
  list.className = "overlay-list";
  for (const entry of entries) {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.dataset.number = String(entry.number);
    box.addEventListener("change", () => {
      if (box.checked) state.hidden.delete(entry.number); else state.hidden.add(entry.number);
      onChange();
    });
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = entry.colour;
    label.append(box, swatch, document.createTextNode(labelOf(entry)));
    li.append(label);
    list.append(li);
  }
  body.append(list);
}

// ---------------------------------------------------------------- SEG

export async function openSegmentation(app, outline, doc, sop) {
  const description = await requestJson(`${instanceUrl(app, sop)}/segments`);
  const state = { opacity: 0.5, hidden: new Set() };
  const body = panel(app, { title: doc.description || "Segmentation", kind: "seg", onClose: () => setLayer(app, "seg", null) });
  const info = document.createElement("p");
  info.className = "muted small";
  const covered = Object.keys(description.frames).length;
  info.textContent = `${description.segmentationType.toLowerCase()} · ${description.segments.length} segment${description.segments.length === 1 ? "" : "s"} · on ${covered} image${covered === 1 ? "" : "s"}`;
  body.append(info);
  const redraw = () => app.redrawOverlays();
  controls(body, description.segments, state, redraw, {
    labelOf: (s) => `${s.number} ${s.label}${s.type ? ` (${s.type})` : ""}`,
  });
  const colours = new Map(description.segments.map((s) => [s.number, s.colour]));
  const images = new Map(); // href -> <image>, kept across redraws: a loaded mask is not fetched and decoded again
  setLayer(app, "seg", (viewport, svg, item) => {
    const numbers = description.frames[`${item.sop}/${item.frame}`];
    if (!numbers) return;
    const group = svgEl("g", { class: "seg-overlay", transform: imageTransform(viewport), opacity: String(state.opacity) }, svg);
    for (const number of numbers) {
      if (state.hidden.has(number)) continue;
      const href = `${instanceUrl(app, sop)}/segments/${number}/${e(item.sop)}/${item.frame}`;
      const key = `${viewport.index}|${href}`;
      let image = images.get(key);
      if (!image) {
        image = svgEl("image", {
          x: 0, y: 0, width: item.columns, height: item.rows, preserveAspectRatio: "none",
          "data-segment": String(number), "data-colour": colours.get(number) || "", style: "image-rendering: pixelated",
        });
        image.addEventListener("load", () => image.setAttribute("data-loaded", ""), { once: true });
        image.setAttribute("href", href);
        if (images.size > 400) images.delete(images.keys().next().value);
        images.set(key, image);
      }
      group.append(image);
    }
  });
  // Show a covered image unless one is on screen.
  const keys = Object.keys(description.frames);
  const onScreen = app.viewports.some((v) => v.stack && v.shown && description.frames[`${v.stack.items[v.shown.index].sop}/${v.stack.items[v.shown.index].frame}`]);
  if (keys.length && !onScreen) {
    const middle = keys[Math.floor(keys.length / 2)];
    const cut = middle.lastIndexOf("/");
    showImage(app, middle.slice(0, cut), Number(middle.slice(cut + 1)));
  }
  document.body.dataset.segmentationOpen = sop;
  return description;
}

// ---------------------------------------------------------------- RTSTRUCT

/** The contours of `rois` on this image: named by ContourImageSequence, else lying in its plane. */
export function contoursOn(item, rois) {
  const plane = item.meta ? planeOf(item.meta) : null;
  const out = [];
  if (!plane) return out;
  const tolerance = Math.max(0.5, (item.meta.thickness || 1) / 2);
  for (const roi of rois) {
    for (const contour of roi.contours) {
      if (!contour.points.length) continue;
      const projected = contour.points.map((p) => patientToPixel(plane, p));
      const named = contour.images.length ? contour.images.includes(item.sop) : null;
      const inPlane = projected.every((p) => Math.abs(p[2]) <= tolerance);
      if (named === true || (named === null && inPlane) || (named === false && inPlane && !roi.framed)) {
        out.push({ roi, type: contour.type, points: projected.map((p) => [p[0], p[1]]) });
      }
    }
  }
  return out;
}

export async function openStructureSet(app, outline, doc, sop) {
  const description = await requestJson(`${instanceUrl(app, sop)}/contours`);
  const state = { opacity: 1, hidden: new Set() };
  const title = description.label || doc.description || "Structure set";
  const body = panel(app, { title, kind: "rtstruct", onClose: () => setLayer(app, "rtstruct", null) });
  const redraw = () => app.redrawOverlays();
  // A contour that names images of this study is drawn on those only.
  const studySops = new Set(app.allSeries.flatMap(({ series }) => series.instances.map((i) => i[0])));
  for (const roi of description.rois) roi.framed = roi.contours.some((c) => c.images.some((s) => studySops.has(s)));
  controls(body, description.rois, state, redraw, { labelOf: (r) => `${r.name} (${r.contours.length})` });
  setLayer(app, "rtstruct", (viewport, svg, item) => {
    const found = contoursOn(item, description.rois.filter((r) => !state.hidden.has(r.number)));
    if (!found.length) return;
    const group = svgEl("g", { class: "rt-contours", transform: imageTransform(viewport), opacity: String(state.opacity), "data-count": String(found.length) }, svg);
    for (const { roi, type, points } of found) {
      const closed = type === "CLOSED_PLANAR";
      const d = type === "POINT"
        ? points.map((p) => `M${p[0]},${p[1]}m-1.5,0h3m-1.5,-1.5v3`).join("")
        : points.map((p, i) => `${i ? "L" : "M"}${p[0]},${p[1]}`).join("") + (closed ? "Z" : "");
      const path = svgEl("path", { d, class: "rt-contour", stroke: roi.colour, "data-roi": String(roi.number) }, group);
      svgEl("title", {}, path).textContent = roi.name;
    }
  });
  const first = description.rois.flatMap((r) => r.contours).find((c) => c.images.some((s) => studySops.has(s)));
  if (first) showImage(app, first.images.find((s) => studySops.has(s)));
  document.body.dataset.structureSetOpen = sop;
  return description;
}
