// The reference text of a viewport: the four corners and the orientation letters on the edges.
// cornerText is pure (the lines of each corner); writeText puts them in the viewport's nodes.
import { fallbackWindow, orientationLetters } from "../stack.js";
import { calibrationNote } from "../tools.js";
import { screenLetters } from "./view.js";

function fmt(n, digits = 0) { return Number.isFinite(n) ? n.toFixed(digits) : "–"; }

/** Pixel spacing (row, column) as "columns × rows" in mm, or in µm for microscopy. */
export function spacingText([row, column]) {
  return column < 0.01 ? `${fmt(column * 1000, 2)} × ${fmt(row * 1000, 2)} µm` : `${fmt(column, 3)} × ${fmt(row, 3)} mm`;
}

export function formatDate(da) {
  return da && /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : da || "";
}

/**
 * The lines of the four corners, {tl, tr, bl, br} (empty lines are left out when written).
 * stack: the Stack; item, meta: the frame shown (or asked for); shownIndex: the slice on the
 * canvas or null; window: the window asked for (null: the file's), effective: the window in force;
 * zoom: device pixels per image pixel; tiled: whether the image is drawn from tiles. Pure.
 */
export function cornerText({ stack, item, meta, shownIndex, window, effective, auto = false, zoom, invert, tiled }) {
  const outline = stack.studyInfo;
  const win = effective || (meta && !meta.color ? fallbackWindow(meta) : null);
  return {
    tl: [outline.patientName.replace(/\^+/g, " "), outline.patientId, formatDate(outline.studyDate), outline.studyDescription],
    tr: [
      `Se ${stack.number ?? ""}${stack.description ? `: ${stack.description}` : ""}`,
      stack.modality,
      shownIndex === null ? `Im –/${stack.length}` : `Im ${shownIndex + 1}/${stack.length}`,
      meta && Number.isFinite(meta.location) ? `Loc ${fmt(meta.location, 1)} mm` : "",
      meta && meta.thickness ? `Thk ${fmt(meta.thickness, 1)} mm` : "",
    ],
    bl: [
      win && !(meta && meta.color) ? `W ${fmt(win.width)} L ${fmt(win.center)}${window ? "" : auto ? " (auto)" : " (file)"}` : "",
      `Zoom ${zoom.toFixed(2)}×`,
      invert ? "Inverted" : "",
    ],
    br: [
      item ? `${item.columns} × ${item.rows}${tiled ? " (tiles)" : ""}` : "",
      meta ? (meta.spacing && !meta.ultrasoundRegions ? `${spacingText(meta.spacing)}${calibrationNote(meta.calibration)}`
        : meta.ultrasoundRegions ? "US regions: lengths in mm inside one" : "No pixel spacing: lengths in px") : "",
    ],
  };
}

/** Write the corner text and orientation letters of viewport `vp` (nodes vp.corners, vp.orient). */
export function writeText(vp) {
  const set = (node, lines) => { node.replaceChildren(...lines.filter(Boolean).map((line) => Object.assign(document.createElement("div"), { textContent: line }))); };
  if (!vp.stack) { for (const node of [...Object.values(vp.corners), ...Object.values(vp.orient)]) node.replaceChildren(); return; }
  const meta = vp.meta;
  const shownIndex = vp.shown ? vp.shown.index : null;
  const lines = cornerText({
    stack: vp.stack, item: vp.item, meta, shownIndex, window: vp.window, effective: vp.effectiveWindow(),
    auto: !vp.window && !(meta && meta.window) && !!vp.autoWindow(),
    zoom: vp.zoom, invert: vp.invert, tiled: !!(vp.shown && vp.shown.kind === "tiles"),
  });
  for (const corner of ["tl", "tr", "bl", "br"]) set(vp.corners[corner], lines[corner]);
  vp.corners.tr.children[2]?.classList.add("slice-label");
  const letters = meta && screenLetters(orientationLetters(meta.orientation), vp.view); // turned and mirrored with the view
  for (const side of ["top", "bottom", "left", "right"]) vp.orient[side].textContent = letters ? letters[side] : "";
  vp.root.dataset.shownIndex = shownIndex === null ? "" : String(shownIndex);
  vp.root.dataset.targetIndex = String(vp.target);
}
