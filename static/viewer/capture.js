// Image capture: the active viewport as a PNG or JPEG file, as it is on screen (the image with its
// window preview and invert, the marks and their text, the corner text and orientation letters),
// composed on the client: the canvas, then the SVG overlay (its CSS styles inlined so the picture
// looks as the page does), then each line of text where the page shows it. "Without patient
// details" leaves out the top-left corner (patient name, ID, study date and description). The
// lines drawn are kept in `lastCapture` (the tests read them).

/** The SVG properties that make the overlay look as on the page (from the stylesheet). */
const SVG_STYLE = ["stroke", "stroke-width", "stroke-dasharray", "stroke-opacity", "fill", "fill-opacity", "opacity",
  "font-family", "font-size", "font-weight", "paint-order", "display", "visibility"];

export let lastCapture = null;

/** The overlay as a stand-alone SVG document: a copy with every element's computed style inlined. */
export function overlayDocument(svg, width, height) {
  const copy = svg.cloneNode(true);
  const sources = [svg, ...svg.querySelectorAll("*")];
  const targets = [copy, ...copy.querySelectorAll("*")];
  sources.forEach((source, i) => {
    const style = getComputedStyle(source);
    const target = targets[i];
    target.removeAttribute("class");
    target.setAttribute("style", SVG_STYLE.map((name) => `${name}:${style.getPropertyValue(name)}`).join(";"));
  });
  copy.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  copy.setAttribute("width", String(width));
  copy.setAttribute("height", String(height));
  return new XMLSerializer().serializeToString(copy);
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the overlay could not be drawn"));
    image.src = url;
  });
}

/** The window preview (feComponentTransfer, linear, the same for R, G, B) applied to the pixels. */
function applyTransfer(ctx, width, height, slope, intercept) {
  if (slope === 1 && intercept === 0) return;
  const data = ctx.getImageData(0, 0, width, height);
  const px = data.data;
  const offset = intercept * 255;
  for (let i = 0; i < px.length; i += 4) {
    px[i] = slope * px[i] + offset;
    px[i + 1] = slope * px[i + 1] + offset;
    px[i + 2] = slope * px[i + 2] + offset;
  }
  ctx.putImageData(data, 0, 0);
}

/** The text lines of the viewport, where the page draws them: [{text, x, y, font, colour, corner}] in CSS px. */
function textLines(vp, withoutPatient) {
  const box = vp.root.getBoundingClientRect();
  const lines = [];
  const nodes = [];
  for (const [corner, node] of Object.entries(vp.corners)) {
    if (withoutPatient && corner === "tl") continue;
    for (const line of node.children) nodes.push([corner, line]);
  }
  for (const [side, node] of Object.entries(vp.orient)) nodes.push([`orient-${side}`, node]);
  for (const [corner, node] of nodes) {
    if (!node.textContent || node.hidden) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const rect = range.getBoundingClientRect();
    if (!rect.width) continue;
    const style = getComputedStyle(node);
    lines.push({ text: node.textContent, x: rect.left - box.left, y: rect.top - box.top, height: rect.height,
      font: `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`, colour: style.color, corner });
  }
  return lines;
}

/**
 * The active viewport as an image. `format`: "png" or "jpeg"; `withoutPatient`: leave out the
 * patient lines. Returns {blob, width, height, lines} (device pixels; the lines drawn).
 */
export async function captureViewport(vp, { format = "png", withoutPatient = false } = {}) {
  const dpr = window.devicePixelRatio || 1;
  const [w, h] = vp.size;
  const canvas = document.createElement("canvas");
  canvas.width = vp.canvas.width;
  canvas.height = vp.canvas.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(vp.canvas, 0, 0);
  const func = vp.filter.querySelector("feFuncR");
  if (vp.canvas.style.filter && func) {
    applyTransfer(ctx, canvas.width, canvas.height, Number(func.getAttribute("slope") || 1), Number(func.getAttribute("intercept") || 0));
  }
  const svg = overlayDocument(vp.overlay, w, h);
  const overlay = await loadImage(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`);
  ctx.drawImage(overlay, 0, 0, canvas.width, canvas.height);
  const lines = textLines(vp, withoutPatient);
  ctx.save();
  ctx.scale(canvas.width / w, canvas.height / h);
  ctx.textBaseline = "middle";
  for (const line of lines) {
    ctx.font = line.font;
    ctx.lineWidth = 3;
    ctx.strokeStyle = "rgba(0, 0, 0, 0.85)";
    ctx.fillStyle = line.colour;
    ctx.strokeText(line.text, line.x, line.y + line.height / 2);
    ctx.fillText(line.text, line.x, line.y + line.height / 2);
  }
  ctx.restore();
  const type = format === "jpeg" ? "image/jpeg" : "image/png";
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, type, 0.92));
  lastCapture = { width: canvas.width, height: canvas.height, format, withoutPatient, lines: lines.map((l) => l.text), dpr };
  return { blob, ...lastCapture };
}

/** Capture and download as a file named after the series and slice. */
export async function downloadCapture(app, options) {
  const vp = app.activeViewport;
  if (!vp || !vp.stack || !vp.shown) { app.toast("No image to capture."); return null; }
  const result = await captureViewport(vp, options);
  const ext = options.format === "jpeg" ? "jpg" : "png";
  const name = `capture-se${vp.stack.number ?? ""}-im${vp.shown.index + 1}.${ext}`;
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(result.blob), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  return result;
}

/** The capture dialog: format, without patient details, download. */
export class CaptureDialog {
  constructor(app) {
    this.app = app;
    this.root = document.createElement("dialog");
    this.root.className = "toolbox-panel capture-dialog";
    this.root.setAttribute("aria-labelledby", "capture-title");
    this.root.innerHTML = `
      <form method="dialog">
        <h2 id="capture-title">Capture the viewport</h2>
        <label for="capture-format">Format</label>
        <select id="capture-format"><option value="png">PNG (lossless)</option><option value="jpeg">JPEG</option></select>
        <label class="check"><input type="checkbox" id="capture-anonymous"> Without patient details (no patient name, ID, date)</label>
        <p class="muted small">The image, its marks and the corner text, as on screen.</p>
        <div class="buttons"><button type="submit" value="cancel" class="secondary">Cancel</button>
          <button type="button" id="capture-download">Download</button></div>
      </form>`;
    document.body.append(this.root);
    this.root.querySelector("#capture-download").addEventListener("click", async () => {
      const format = this.root.querySelector("#capture-format").value;
      const withoutPatient = this.root.querySelector("#capture-anonymous").checked;
      this.root.close();
      await new Promise((resolve) => requestAnimationFrame(resolve)); // the dialog is gone from the screen
      try {
        await downloadCapture(this.app, { format, withoutPatient });
      } catch (error) {
        this.app.toast(`Not captured: ${error.message}`);
      }
    });
  }

  open() { this.root.showModal(); }
}
