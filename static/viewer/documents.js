// Non-image series (SR, KO, SEG, RTSTRUCT, PR...) in the series panel, after the image series, and
// the read-only layers they draw on the viewports. The page's outline lists them as `documents`
// (viewer/pages.py); opening one imports its reader: report.js (SR and KO: the report and its regions),
// segments.js (SEG masks, RTSTRUCT contours). A layer is `draw(viewport, svg)` on an SVG of its own
// under the annotations' (pointer events pass through it to the marks and tools): document_layers.js,
// which the readers import (not this module: a cycle of imports cannot be given hashed names).

import { installLayers } from "./document_layers.js";

const KIND_NAMES = { sr: "Report", seg: "Segmentation", rtstruct: "Structure set", pr: "Presentation state", other: "Object" };

export function documentItems(app, outline) {
  return (outline.documents || []).map((doc) => documentItem(app, outline, doc));
}

function documentItem(app, outline, doc) {
  const li = document.createElement("li");
  li.className = "document-item";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "series document";
  button.dataset.series = doc.uid;
  button.dataset.kind = doc.kind;
  const opens = ["sr", "seg", "rtstruct"].includes(doc.kind);
  const what = KIND_NAMES[doc.kind] || KIND_NAMES.other;
  button.setAttribute("aria-label", `${what}: series ${doc.number ?? ""} ${doc.description || ""}, ${doc.modality}${opens ? "" : " (not shown)"}`);
  const badge = document.createElement("span");
  badge.className = "document-badge";
  badge.textContent = doc.modality === "RTSTRUCT" ? "RT" : (doc.modality || "?").slice(0, 4);
  const text = document.createElement("span");
  const title = document.createElement("strong");
  title.textContent = `${doc.modality} · Se ${doc.number ?? "–"}`;
  const description = document.createElement("span");
  description.textContent = doc.description || "";
  const count = document.createElement("span");
  count.className = "muted small";
  count.textContent = opens ? what : `${what}: not shown`;
  text.append(title, description, count);
  button.append(badge, text);
  if (opens) button.addEventListener("click", () => openDocument(app, outline, doc, doc.instances[0]));
  else button.disabled = true;
  li.append(button);
  return li;
}

/** Open a non-image object: its reader module, imported on first use. */
export async function openDocument(app, outline, doc, sop) {
  installLayers(app);
  try {
    if (doc.kind === "sr") {
      const { openReport } = await import("./report.js");
      await openReport(app, outline, doc, sop);
    } else if (doc.kind === "seg") {
      const { openSegmentation } = await import("./segments.js");
      await openSegmentation(app, outline, doc, sop);
    } else if (doc.kind === "rtstruct") {
      const { openStructureSet } = await import("./segments.js");
      await openStructureSet(app, outline, doc, sop);
    }
  } catch (error) {
    app.toast(`${KIND_NAMES[doc.kind] || "The object"} could not be opened: ${error.message}`);
  }
}
