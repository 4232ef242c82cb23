// The measurement table: every mark of the page's studies in one panel, sortable by series, slice,
// kind, value, author and label; a click on a row shows that series and slice in a viewport and
// selects the mark. It reads the annotation store (annotations.js), so it lists exactly what the
// viewer has loaded through its transport (project marks, a session's, a trial read's, with their
// visibility rules) and the live marks others create, change and delete; it is redrawn on each change.
// Exports (CSV, DICOM SR TID 1500) are made by the server from the project's marks the member sees
// (annotations/exports.py): offered when the page shows the project's marks (the REST transport).
import { csrfToken } from "./api.js";
import * as annotations from "./annotations.js";
import { TOOLS, measurementLines } from "./tools.js";

const COLUMNS = [
  ["series", "Series"], ["slice", "Slice"], ["kind", "Kind"], ["value", "Value"], ["author", "Author"], ["label", "Label"],
];

/** Where a mark is: its series entry ({outline, series}) and stack index, from the page's outlines. Pure over `app`. */
export function placeOf(app, annotation) {
  if (annotation.plane) {
    const found = app.allSeries.find((entry) => entry.series.uid === annotation.plane.series);
    return { entry: found || null, index: annotation.plane.index, plane: annotation.plane.plane };
  }
  for (const entry of app.allSeries) {
    if (annotation.series && entry.series.uid !== annotation.series) continue;
    let index = 0;
    for (const [sop, frames] of entry.series.instances) {
      if (sop === annotation.instance) return { entry, index: index + (annotation.frame || 1) - 1, plane: null };
      index += frames;
    }
  }
  return { entry: null, index: -1, plane: null };
}

/** The rows of the table, one per mark: what each column shows and sorts by. */
export function tableRows(app, list = annotations.all()) {
  return list.filter((a) => !a.deleted).map((a) => {
    const { entry, index, plane } = placeOf(app, a);
    const frames = entry ? entry.series.instances.reduce((sum, i) => sum + i[1], 0) : 0;
    const stack = entry && app.stacks.get(entry.series.uid);
    const meta = stack && !plane && index >= 0 && stack.items[index] ? stack.items[index].meta : null;
    const lines = measurementLines({ ...a, label: "" }, meta);
    const tool = TOOLS[a.kind];
    return {
      id: a.id,
      annotation: a,
      entry,
      index,
      seriesText: entry ? `${studyName(app, entry.outline)}Se ${entry.series.number ?? "–"} ${entry.series.modality || ""}`.trim() : "–",
      seriesKey: entry ? [app.outlines.indexOf(entry.outline), entry.series.number ?? 0] : [99, 0],
      sliceText: plane ? `${plane} ${index + 1}` : index >= 0 ? `Im ${index + 1}/${frames}` : "–",
      sliceKey: index,
      kind: tool ? tool.label.split(" (")[0] : a.kind,
      value: lines.join(" · "),
      valueKey: mainNumber(a.measurements),
      author: a.pending ? "saving…" : a.author || "",
      label: a.label || "",
    };
  });
}

/** The study of a row when the page has several (the patient's other studies, a read's time points). */
function studyName(app, outline) {
  if (app.outlines.length < 2) return "";
  if (outline.label) return `${outline.label} · `;
  const da = outline.studyDate || "";
  return /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)} · ` : `Study ${app.outlines.indexOf(outline) + 1} · `;
}

function mainNumber(m) {
  if (!m) return -Infinity;
  for (const key of ["length", "long_axis", "area", "angle", "value"]) if (Number.isFinite(m[key])) return m[key];
  return -Infinity;
}

function compare(a, b, key) {
  const pick = (row) => ({ series: [...row.seriesKey, row.sliceKey], slice: [row.sliceKey, ...row.seriesKey], value: [row.valueKey] }[key]
    || [String(row[key]).toLowerCase()]);
  const x = pick(a);
  const y = pick(b);
  for (let i = 0; i < x.length; i += 1) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return String(a.id).localeCompare(String(b.id));
}

/** Show the mark: its series in a viewport (one already showing it, else the active one), its slice, selected. */
export async function jumpTo(app, annotation) {
  const { entry, index, plane } = placeOf(app, annotation);
  if (!entry || index < 0) { app.toast("This mark's image is not in this page's studies."); return; }
  if (plane) {
    const mpr = await app.loadMpr();
    await mpr.apply({ mpr: { series: entry.series.uid, plane, [plane]: index } });
    app.select(annotation.id);
    return;
  }
  if (app.mpr && app.mpr.active) app.mpr.leave();
  const visible = app.viewports.filter((v) => !v.root.hidden);
  let viewport = visible.find((v) => v.stack && v.stack.series === entry.series.uid);
  if (!viewport) { viewport = app.activeViewport || visible[0]; app.loadSeries(entry.series.uid, viewport, { index }); }
  app.activate(viewport);
  viewport.takeOver();
  viewport.setIndex(index);
  app.select(annotation.id);
}

async function download(url, name, app) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
    app.toast(`Not exported: ${detail}`);
    return;
  }
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(await response.blob()), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

export class MeasurementTable {
  constructor(app) {
    this.app = app;
    this.sort = "series";
    this.descending = false;
    this.root = document.createElement("dialog");
    this.root.className = "toolbox-panel measurement-table";
    this.root.setAttribute("aria-labelledby", "mark-table-title");
    this.root.innerHTML = `
      <header><h2 id="mark-table-title">Measurements of the study</h2>
        <button type="button" class="close" aria-label="Close the measurement table" title="Close (Shift+M)">✕</button></header>
      <div class="mark-table-scroll"><table><thead><tr></tr></thead><tbody></tbody></table></div>
      <footer>
        <span class="muted small count" role="status"></span>
        <span class="exports">
          <button type="button" data-export="csv" title="The table as CSV (from the server)">CSV</button>
          <button type="button" data-export="sr" title="The marks as a DICOM SR TID 1500 file">DICOM SR</button>
          <button type="button" data-export="store" title="Store the marks as a DICOM SR in the archive (a new series of the study)">Store SR</button>
        </span>
      </footer>`;
    document.body.append(this.root);
    const head = this.root.querySelector("thead tr");
    for (const [key, title] of COLUMNS) {
      const th = document.createElement("th");
      th.scope = "col";
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: title });
      button.dataset.sort = key;
      button.addEventListener("click", () => {
        this.descending = this.sort === key ? !this.descending : false;
        this.sort = key;
        this.render();
      });
      th.append(button);
      head.append(th);
    }
    this.root.querySelector(".close").addEventListener("click", () => this.toggle(false));
    for (const button of this.root.querySelectorAll("[data-export]")) button.addEventListener("click", () => this.export(button.dataset.export));
    annotations.subscribe(() => this.scheduleRender());
  }

  get open() { return this.root.open; }

  toggle(open = !this.open) {
    if (open) { this.root.show(); this.render(); } else this.root.close();
    for (const button of document.querySelectorAll("[data-toolbox='table']")) button.setAttribute("aria-pressed", String(open));
  }

  scheduleRender() {
    if (!this.open || this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  /** The study the exports are of: the active viewport's, else the page's. */
  get study() {
    const v = this.app.activeViewport;
    return (v && v.stack && v.stack.study) || this.app.outline.study;
  }

  render() {
    if (!this.open) return;
    const rows = tableRows(this.app).sort((a, b) => compare(a, b, this.sort) * (this.descending ? -1 : 1));
    for (const button of this.root.querySelectorAll("[data-sort]")) {
      const on = button.dataset.sort === this.sort;
      button.parentElement.setAttribute("aria-sort", on ? (this.descending ? "descending" : "ascending") : "none");
    }
    // the units of values (HU...) come with a series' metadata: ask for it once for the series listed
    for (const row of rows) {
      const stack = row.entry && !row.annotation.plane && this.app.stackFor(row.entry.series.uid);
      if (stack && !this.app.metadataRequests.has(stack.series)) this.app.loadMetadata(stack).then(() => this.scheduleRender());
    }
    const body = this.root.querySelector("tbody");
    body.replaceChildren(...rows.map((row) => {
      const tr = document.createElement("tr");
      tr.dataset.id = String(row.id);
      tr.tabIndex = 0;
      tr.setAttribute("aria-selected", String(row.id === this.app.selected));
      for (const text of [row.seriesText, row.sliceText, row.kind, row.value, row.author, row.label]) {
        tr.append(Object.assign(document.createElement("td"), { textContent: text }));
      }
      const go = () => jumpTo(this.app, row.annotation);
      tr.addEventListener("click", go);
      tr.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); go(); } });
      return tr;
    }));
    if (!rows.length) body.innerHTML = '<tr><td colspan="6" class="muted small">No marks in this study yet.</td></tr>';
    this.root.querySelector(".count").textContent = `${rows.length} mark${rows.length === 1 ? "" : "s"}`;
    const project = (annotations.getTransport() || {}).scope === "project";
    for (const button of this.root.querySelectorAll("[data-export]")) {
      button.disabled = !project || (button.dataset.export === "store" && !this.app.canWrite);
      if (!project) button.title = "Exports cover the project's marks; this page shows a session's or a read's";
    }
  }

  async export(kind) {
    const base = `/api/projects/${encodeURIComponent(this.app.project)}/annotations/export/`;
    const study = encodeURIComponent(this.study);
    if (kind === "csv") return download(`${base}?study=${study}&as=csv`, "measurements.csv", this.app);
    if (kind === "sr") return download(`${base}?study=${study}&as=sr`, "measurements-sr.dcm", this.app);
    const response = await fetch(base, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ study: this.study }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) { this.app.toast(`Not stored: ${body.detail || response.status}`); return null; }
    this.app.toast(`Stored as DICOM SR: ${body.marks} mark${body.marks === 1 ? "" : "s"}${body.skipped ? ` (${body.skipped} on MPR planes left out)` : ""}, series ${body.series}.`);
    return body;
  }
}
