// The read-only layers that opened SR, SEG and RTSTRUCT objects draw on the viewports, and the side
// panel an opened object reads in (documents.js lists the objects; report.js and segments.js read them).
// A module of its own so that the readers do not import documents.js, which imports them.

const SVG = "http://www.w3.org/2000/svg";

/** The app's read-only layers: name -> draw(viewport, svg). viewport.js calls app.drawLayers. */
export function installLayers(app) {
  if (app.documentLayers) return;
  app.documentLayers = new Map();
  app.drawLayers = (viewport) => drawLayers(app, viewport);
  if (!document.querySelector("link[data-documents-css]")) {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = new URL("./documents.css", import.meta.url).href;
    link.dataset.documentsCss = "";
    document.head.append(link);
  }
}

export function setLayer(app, name, draw) {
  installLayers(app);
  if (draw) app.documentLayers.set(name, draw);
  else app.documentLayers.delete(name);
  app.redrawOverlays();
}

function drawLayers(app, viewport) {
  let svg = viewport.root.querySelector("svg.derived");
  if (!svg) {
    svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "derived");
    svg.setAttribute("aria-hidden", "true");
    viewport.overlay.before(svg);
  }
  const [w, h] = viewport.size;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const item = viewport.shown && viewport.stack && viewport.stack.items[viewport.shown.index];
  if (!item || item.plane) return; // reformatted planes: no derived objects drawn
  for (const draw of app.documentLayers.values()) draw(viewport, svg, item);
}

/** The SVG transform that draws image coordinates where the viewport shows them (zoom, pan, rotation). */
export function imageTransform(viewport) {
  const o = viewport.toScreen([0, 0]);
  const x = viewport.toScreen([1, 0]);
  const y = viewport.toScreen([0, 1]);
  return `matrix(${x[0] - o[0]} ${x[1] - o[1]} ${y[0] - o[0]} ${y[1] - o[1]} ${o[0]} ${o[1]})`;
}

export function svgEl(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.append(node);
  return node;
}

/** Show `sop` (frame) in the active viewport: load its series and go to it. False when not in the study. */
export function showImage(app, sop, frame = 1) {
  const found = app.allSeries.find(({ series }) => series.instances.some((i) => i[0] === sop));
  if (!found) return false;
  const viewport = app.activeViewport || app.viewports[0];
  const stack = app.stackFor(found.series.uid);
  const index = Math.max(0, stack.indexOf(sop, frame));
  if (viewport.stack === stack) viewport.setIndex(index, { force: true });
  else app.loadSeries(found.series.uid, viewport, { index });
  return true;
}

/** A side panel for an opened object (one at a time), with a close button. */
export function panel(app, { title, kind, onClose }) {
  let aside = document.getElementById("document-panel");
  if (aside && aside.closeHandler) aside.closeHandler();
  if (!aside) {
    aside = document.createElement("aside");
    aside.id = "document-panel";
    aside.className = "document-panel";
    document.querySelector(".reader").append(aside);
  }
  aside.dataset.kind = kind;
  aside.setAttribute("aria-label", title);
  aside.replaceChildren();
  const header = document.createElement("header");
  const h2 = document.createElement("h2");
  h2.textContent = title;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "close";
  close.textContent = "✕";
  close.setAttribute("aria-label", `Close ${title}`);
  const reader = document.querySelector(".reader");
  close.addEventListener("click", () => { aside.closeHandler(); aside.remove(); reader.classList.remove("document-open"); });
  header.append(h2, close);
  const body = document.createElement("div");
  body.className = "document-body";
  aside.append(header, body);
  aside.closeHandler = () => { aside.closeHandler = null; if (onClose) onClose(); };
  aside.hidden = false;
  reader.classList.add("document-open"); // the viewports make room for the panel
  return body;
}
