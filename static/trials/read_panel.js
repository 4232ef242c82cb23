// A trial read as a viewer mode (docs/trials.md, "The read in the viewer"): the read's panel beside
// the viewer's images. It runs before viewer.js (the template puts it first) so that the annotation
// store's transport is the read's own marks (GET/POST/PATCH/DELETE .../reads/<id>/marks/) before the
// viewer lists any. State comes from GET .../reads/<id>/ (lesions, assessments, marks, the RECIST table
// computed on the server by trials.services.evaluation); every change is one REST call, then that state again.
//
// - Hanging: the time point being read in the first viewport, the one before it beside it (any earlier
//   one a click away), linked scrolling on (linking.js); the registration between the two studies the
//   reader sets with the link action is remembered for the read (localStorage).
// - One gesture: a selected ("armed") lesion takes the next mark drawn (bidirectional: its measurement
//   at the image's time point, labelled with its name; a length too for a non-nodal target where the trial
//   measures targets by length: the server's lesion.measured_by says which, and the panel offers those
//   tools). A mark drawn with no lesion selected asks for its name in the panel (role, organ): a new lesion.
// - Tracking: a lesion's button brings the viewports to its last mark and centres it; its history shows
//   the axes at every time point, each a key image that jumps to its slice.
import { requestJson } from "../viewer/api.js";
import * as annotations from "../viewer/annotations.js";
import * as bus from "../viewer/bus.js";
import { add, patientToPixel, pixelToPatient } from "../viewer/geometry.js";
import { el, mm } from "./dom.js";

const boot = JSON.parse(document.getElementById("boot").textContent);
const R = boot.read;
const panel = document.getElementById("read-panel");
const STATUSES = {
  target: ["measured", "too_small", "disappeared", "not_evaluable"],
  non_target: ["present", "absent", "progressed", "not_evaluable"],
  new: ["present", "absent", "not_evaluable"],
};
const STATUS_TEXT = {
  measured: "measured", too_small: "too small", disappeared: "disappeared", not_evaluable: "not evaluable",
  present: "present", absent: "absent", progressed: "unequivocal progression",
};
const ROLES = { target: "Targets", non_target: "Non-targets", new: "New lesions" };
const ROLE_ONE = { target: "Target", non_target: "Non-target", new: "New" };
const ORGANS = ["liver", "lung", "lymph node", "bone", "adrenal", "kidney", "spleen", "pleura", "peritoneum", "soft tissue"];
const REGISTRATIONS_KEY = `crossread:read:${R.id}:registrations`;

const ui = {
  read: null,
  current: R.current, // the time point being read
  beside: null, // the earlier time point beside it (null: the one just before)
  armed: null, // lesion id: the next mark drawn is this lesion's
  selected: null, // lesion id: the one last gone to (its statuses shown)
  naming: null, // {mark, timepoint, kind}: a mark drawn with no lesion, to be named
  adding: null, // role: a lesion added from the panel (no mark yet)
  confirming: false,
  errors: [],
  busy: false,
};
let app = null;

// ------------------------------------------------------------------ transport: the read's marks

let listing = null;
annotations.setTransport({
  async create(fields) {
    const lesion = ui.armed;
    const body = { instance: fields.instance, frame: fields.frame, kind: fields.kind, points: fields.points, client_ref: fields.client_ref };
    if (lesion) body.lesion = lesion;
    let saved;
    try {
      saved = await requestJson(`${R.api}marks/`, { method: "POST", body });
    } catch (error) {
      showError(error);
      throw error;
    }
    if (lesion) ui.armed = null;
    else ui.naming = { mark: saved.id, timepoint: saved.timepoint, kind: saved.kind };
    ui.errors = [];
    await refresh();
    return saved;
  },
  async update(id, version, fields) {
    const saved = await requestJson(`${R.api}marks/${id}/`, { method: "PATCH", body: { version, ...fields } });
    refresh();
    return saved;
  },
  async remove(id) {
    await requestJson(`${R.api}marks/${id}/`, { method: "DELETE" });
    if (ui.naming && ui.naming.mark === id) ui.naming = null;
    refresh();
  },
  // the viewer lists each study's marks; the read's marks of every time point come in one answer
  list: () => (listing ||= requestJson(`${R.api}marks/`).then((data) => data.annotations).finally(() => setTimeout(() => { listing = null; }, 0))),
});

async function call(method, url, body) {
  try {
    const data = await requestJson(url, { method, body });
    ui.errors = [];
    return data === null ? {} : data;
  } catch (error) {
    showError(error);
    return null;
  }
}

function showError(error) {
  ui.errors = [error.message, ...((error.body && error.body.errors) || [])];
  render();
}

async function refresh() {
  const data = await requestJson(R.api).catch((error) => { showError(error); return null; });
  if (!data) return;
  ui.read = data;
  if (!data.editable && app && app.canWrite) readOnly();
  render();
}

/** The marks' labels changed on the server (a lesion named, renamed): the store gets the new versions. */
function reloadMarks() { return annotations.load({}).catch(() => {}); }

const TOOL_TEXT = { bidirectional: "bidirectional", length: "length" };
/** A measurement's axes: "long × short", or the long axis alone for a length (no short axis). */
const axes = (cell) => (cell.short_axis_mm === null || cell.short_axis_mm === undefined ? mm(cell.long_axis_mm) : `${mm(cell.long_axis_mm)} × ${mm(cell.short_axis_mm)}`);

// ------------------------------------------------------------------ the read's facts

const timepoints = () => (ui.read ? ui.read.timepoints : []);
const tpById = (id) => timepoints().find((tp) => tp.id === id);
const currentTp = () => tpById(ui.current) || timepoints()[0];
const lesionById = (id) => ui.read && ui.read.lesions.find((lesion) => lesion.id === id);
const cellAt = (lesion, tp) => lesion.assessments[timepoints().indexOf(tp)] || null;

function besideTp() {
  const cur = currentTp();
  if (!cur || cur.order === 0) return null;
  const chosen = ui.beside && tpById(ui.beside);
  if (chosen && chosen.order < cur.order) return chosen;
  return timepoints().filter((tp) => tp.order < cur.order).pop() || null;
}

/** Arm `lesion` (its next mark is its measurement): a drawing tool that cannot measure it gives way to one that can
 * (a node's bidirectional after a length). */
function arm(lesion) {
  ui.armed = lesion ? lesion.id : null;
  const kinds = (lesion && lesion.measured_by) || [];
  if (lesion && kinds.length && TOOL_TEXT[app.tool] && !kinds.includes(app.tool)) app.setTool(kinds[0]);
}

function allowedStatuses(lesion, tp) {
  if (lesion.role === "new" && tp.order === 0) return [];
  return STATUSES[lesion.role].filter((s) => tp.order > 0 || (lesion.role === "target" && s === "measured") || (lesion.role === "non_target" && s === "present"));
}

/** Where a lesion was marked: at `tp` if given, else the time point being read, else the latest before it, else any. */
function locate(lesion, tp = null) {
  const order = (id) => (tpById(id) || { order: -1 }).order;
  const cur = currentTp();
  const wanted = tp || cur;
  const marks = ui.read.marks.filter((m) => m.lesion === lesion.id)
    .map((m) => ({ timepoint: m.timepoint, annotation: annotations.get(m.annotation) }))
    .filter((m) => m.annotation);
  const cells = lesion.assessments.filter((c) => c && c.instance && c.points)
    .map((c) => ({ timepoint: c.timepoint, annotation: { instance: c.instance, frame: c.frame, points: c.points } }));
  const found = [...marks, ...cells];
  const rank = (m) => (m.timepoint === wanted.id ? 0 : order(m.timepoint) <= cur.order ? 1 + (cur.order - order(m.timepoint)) : 100 + order(m.timepoint));
  found.sort((a, b) => rank(a) - rank(b));
  if (tp && found.length && found[0].timepoint !== tp.id) return null;
  return found[0] || null;
}

// ------------------------------------------------------------------ hanging

function outlineOf(tp) { return app.outlines.find((o) => o.timepoint === tp.id); }

function seriesOf(outline) {
  const images = (s) => s.instances.reduce((sum, i) => sum + i[1], 0);
  const volumes = outline.series.filter((s) => ["CT", "MR", "PT"].includes(s.modality));
  return [...(volumes.length ? volumes : outline.series)].sort((a, b) => images(b) - images(a))[0] || null;
}

function show(tp, viewport) {
  const outline = tp && outlineOf(tp);
  const series = outline && seriesOf(outline);
  if (series && (!viewport.stack || viewport.stack.series !== series.uid)) app.loadSeries(series.uid, viewport);
}

/** The time point being read in the first viewport, the one before it (or the one chosen) beside it. */
function hang() {
  const cur = currentTp();
  if (!cur) return;
  const prior = besideTp();
  app.setLayout(prior ? "1x2" : "1x1");
  show(cur, app.viewports[0]);
  if (prior) show(prior, app.viewports[1]);
  app.activate(app.viewports[0]);
  document.body.dataset.hanging = `${cur.id}|${prior ? prior.id : ""}`;
}

function viewportOf(tp) {
  const outline = outlineOf(tp);
  return app.viewports.find((v) => !v.root.hidden && v.stack && outline && v.stack.study === outline.study) || null;
}

// ------------------------------------------------------------------ tracking: go to a lesion

async function goTo(lesion, tp = null) {
  const where = locate(lesion, tp);
  if (!where) { app.toast(`${lesion.identifier} has no mark${tp ? ` at ${tp.label}` : ""} yet.`); return; }
  let viewport = viewportOf(tpById(where.timepoint));
  if (!viewport) {
    // an earlier time point not on screen: it goes beside the one being read
    const target = tpById(where.timepoint);
    if (target.order < currentTp().order) ui.beside = target.id;
    else ui.current = target.id;
    hang();
    render();
    viewport = viewportOf(target);
    if (!viewport) return;
  }
  // every viewport's metadata first: a time point hung a moment ago is centred too, not only moved to the level
  await Promise.all(app.viewports.filter((v) => !v.root.hidden && v.stack).map((v) => app.loadMetadata(v.stack)));
  const { instance, frame, points } = where.annotation;
  const index = viewport.stack.indexOf(instance, frame || 1);
  if (index < 0) return;
  const centre = [points.reduce((s, p) => s + p[0], 0) / points.length, points.reduce((s, p) => s + p[1], 0) / points.length];
  app.activate(viewport);
  viewport.setIndex(index, { force: true }); // linked scrolling moves the others to its level
  centreOn(viewport, index, centre);
  document.body.dataset.wentTo = `${lesion.identifier}|${where.timepoint}|${index}`;
}

/** Centre `viewport` on image point `centre` of slice `index`, and the others of a registered frame of reference on the same patient point. */
function centreOn(viewport, index, centre) {
  viewport.centre = centre;
  viewport.fitted = false;
  viewport.draw();
  const linking = app.linking;
  const geometry = viewport.stack.geometry;
  const plane = geometry && geometry.planes[index];
  if (!linking || !plane) return;
  const point = pixelToPatient(plane, centre);
  for (const v of linking.visible()) {
    if (v === viewport || !v.stack.geometry) continue;
    const offset = linking.offset(geometry.frameOfReference, v.stack.geometry.frameOfReference);
    if (!offset) continue;
    const slice = linking.sliceThrough(v, geometry.frameOfReference, point);
    if (slice === null || slice === undefined) continue;
    if (slice !== v.target) v.setIndex(slice, { linked: true });
    const [x, y] = patientToPixel(v.stack.geometry.planes[slice], add(point, offset));
    v.centre = [x, y];
    v.fitted = false;
    v.draw();
  }
}

// ------------------------------------------------------------------ writes

async function setStatus(lesion, tp, status) {
  const cell = cellAt(lesion, tp);
  const body = { lesion: lesion.id, timepoint: tp.id, status };
  const measured = status === "measured" || (lesion.role === "new" && status === "present");
  if (measured && cell && cell.annotation) body.annotation = cell.annotation;
  const data = await call("PUT", `${R.api}assessments/`, body);
  if (!data) return;
  ui.read = data;
  // a status that needs a measurement waits for it: the lesion takes the next mark drawn
  if (status === "measured" && !body.annotation) arm(lesion);
  else if (ui.armed === lesion.id) ui.armed = null;
  render();
}

async function nameMark(role, organ, nodal) {
  const naming = ui.naming;
  if (!naming || ui.busy) return;
  ui.busy = true;
  const created = await call("POST", `${R.api}lesions/`, { role, organ, nodal, mark: naming.mark });
  ui.busy = false;
  if (!created) return;
  ui.naming = null;
  await Promise.all([refresh(), reloadMarks()]);
}

async function addLesion(role, organ, nodal) {
  if (ui.busy) return;
  ui.busy = true;
  const created = await call("POST", `${R.api}lesions/`, { role, organ, nodal });
  ui.busy = false;
  if (!created) return;
  ui.adding = null;
  await refresh();
  const lesion = lesionById(created.id);
  const tp = currentTp();
  if (lesion && lesion.role === "non_target" && tp.order === 0) await setStatus(lesion, tp, "present");
  else arm(lesion || { id: created.id }); // its mark is the next one drawn
  render();
}

async function discardNaming() {
  const naming = ui.naming;
  ui.naming = null;
  if (naming) await annotations.remove(naming.mark).catch((error) => showError(error));
  render();
}

async function sign() {
  const data = await call("POST", `${R.api}sign/`);
  ui.confirming = false;
  if (data) { ui.read = data; readOnly(); }
  render();
}

function readOnly() {
  app.canWrite = false;
  app.setTool("pointer");
  for (const button of document.querySelectorAll("[data-tool]")) {
    if (!["pointer", "wl", "pan", "zoom", "crosshair"].includes(button.dataset.tool)) { button.disabled = true; button.title = "The read is signed: read-only"; }
  }
  for (const action of ["undo", "delete"]) { const b = document.querySelector(`[data-action='${action}']`); if (b) b.disabled = true; }
  ui.armed = null;
  ui.naming = null;
  app.redrawOverlays();
}

// ------------------------------------------------------------------ rendering

function chooser({ title, roles, role, onPick, onCancel, testid }) {
  // role buttons, organ chips (a chip names it at once), an organ field with "lymph node"
  let chosen = role;
  const roleButtons = roles.map((r) => el("button", {
    type: "button", class: "chip role", "aria-pressed": String(r === chosen), "data-testid": `${testid}-role-${r}`,
    on: { click: (event) => { chosen = r; for (const b of event.target.parentNode.children) b.setAttribute("aria-pressed", String(b === event.target)); } },
  }, ROLE_ONE[r]));
  const organ = el("input", { type: "text", maxlength: "64", placeholder: "organ, Enter", "aria-label": "Organ", "data-testid": `${testid}-organ` });
  const nodal = el("input", { type: "checkbox", "data-testid": `${testid}-nodal` });
  const pick = (name, node = nodal.checked) => { if (name.trim()) onPick(chosen, name.trim(), node || name === "lymph node"); };
  organ.addEventListener("keydown", (event) => {
    event.stopPropagation();
    if (event.key === "Enter") { event.preventDefault(); pick(organ.value); }
    if (event.key === "Escape") onCancel();
  });
  return el("form", { class: "namer", "data-testid": testid, on: { submit: (event) => { event.preventDefault(); pick(organ.value); } } },
    el("p", { class: "namer-title" }, title),
    el("div", { class: "chips", role: "group", "aria-label": "Role" }, roleButtons),
    el("div", { class: "chips organs", role: "group", "aria-label": "Organ" }, ORGANS.map((name) => el("button", {
      type: "button", class: "chip", "data-testid": `${testid}-organ-${name.replace(/ /g, "-")}`, on: { click: () => pick(name) },
    }, name))),
    el("div", { class: "namer-row" }, organ, el("label", { class: "small" }, nodal, " node"),
      el("button", { type: "submit", class: "small-button" }, "Add"),
      el("button", { type: "button", class: "small-button quiet", on: { click: onCancel } }, testid === "name-mark" ? "Discard" : "Cancel")));
}

function lesionItem(lesion) {
  const tp = currentTp();
  const cell = cellAt(lesion, tp);
  const editable = ui.read.editable;
  const armed = ui.armed === lesion.id;
  const measuredHere = cell && cell.long_axis_mm !== null && cell.long_axis_mm !== undefined;
  const now = cell ? (measuredHere ? `${axes(cell)} mm` : STATUS_TEXT[cell.status] + (cell.status === "measured" ? ": waiting for the mark" : "")) : (lesion.role === "new" && tp.order === 0 ? "" : "not assessed");
  const head = el("button", {
    type: "button", class: `lesion-button${armed ? " armed" : ""}`, "data-testid": `lesion-${lesion.identifier}`, "aria-pressed": String(armed),
    title: editable ? `Go to ${lesion.identifier}; the next mark drawn is its measurement at ${tp.label}` : `Go to ${lesion.identifier}`,
    on: {
      click: () => {
        ui.selected = lesion.id;
        // the next mark drawn is its measurement while it has none here (select its mark to adjust one)
        if (editable && allowedStatuses(lesion, tp).length && !(cell && cell.annotation)) arm(armed ? null : lesion);
        else if (armed) ui.armed = null;
        render();
        goTo(lesion);
      },
    },
  }, el("strong", {}, lesion.identifier), el("span", { class: "organ" }, `${lesion.organ}${lesion.nodal ? " (node)" : ""}`),
  el("span", { class: `now${cell ? "" : " todo"}`, "data-testid": `now-${lesion.identifier}` }, now));
  // the statuses to choose from: for the lesion selected, and those not assessed here yet
  const statuses = editable && (ui.selected === lesion.id || !cell) ? allowedStatuses(lesion, tp) : [];
  const chips = statuses.length > 1 || (statuses.length === 1 && !cell) ? el("div", { class: "chips statuses", role: "group", "aria-label": `${lesion.identifier} at ${tp.label}` },
    statuses.map((s) => el("button", {
      type: "button", class: "chip", "aria-pressed": String(!!cell && cell.status === s), "data-testid": `status-${lesion.identifier}-${s}`,
      on: { click: () => setStatus(lesion, tp, s) },
    }, STATUS_TEXT[s]))) : null;
  const history = timepoints().map((t, i) => {
    const c = lesion.assessments[i];
    if (!c) return null;
    const text = c.long_axis_mm !== null && c.long_axis_mm !== undefined ? axes(c) : STATUS_TEXT[c.status];
    const where = locate(lesion, t);
    return el("button", {
      type: "button", class: `history${t.id === tp.id ? " here" : ""}`, "data-testid": `history-${lesion.identifier}-${t.order}`,
      disabled: !where, title: where ? `Key image: ${lesion.identifier} at ${t.label}` : "", on: { click: () => goTo(lesion, t) },
    }, el("span", { class: "muted" }, t.order === 0 ? "BL" : `FU${t.order}`), ` ${text}`);
  }).filter(Boolean);
  return el("li", { class: "lesion", "data-lesion": lesion.identifier }, head, chips,
    history.length ? el("div", { class: "histories" }, history) : null);
}

function recistBox() {
  const table = ui.read.recist;
  const evaluation = table.evaluation;
  const pct = (v) => (v === null || v === undefined ? "–" : `${v > 0 ? "+" : ""}${v} %`);
  // a time point with lesions not assessed yet has no result to show (the list below says what is missing)
  const incomplete = (label) => table.missing.some((line) => line.startsWith(`${label}:`));
  const rows = evaluation ? evaluation.timepoints.map((r, i) => (incomplete(r.label) ? el("tr", { "data-timepoint": r.label, class: "incomplete" },
    el("th", { scope: "row" }, timepoints()[i] && timepoints()[i].order ? `FU${timepoints()[i].order}` : "BL"),
    el("td", { colspan: "6", class: "muted", "data-testid": `sum-${i}` }, "not complete")) : el("tr", { "data-timepoint": r.label },
    el("th", { scope: "row" }, timepoints()[i] && timepoints()[i].order ? `FU${timepoints()[i].order}` : "BL"),
    el("td", { class: "num", "data-testid": `sum-${i}` }, r.sum_mm === null ? "–" : `${r.sum_mm}`),
    el("td", { class: "num" }, pct(r.change_from_baseline_pct)),
    el("td", { class: "num" }, pct(r.change_from_nadir_pct)),
    el("td", { "data-testid": `target-${i}` }, r.target_response || "–"),
    el("td", { "data-testid": `nontarget-${i}` }, r.non_target_response || "–"),
    el("td", { class: "overall-cell", "data-testid": `overall-${i}` }, r.overall_response || "–")))) : [];
  const problems = [...table.errors, ...(evaluation ? evaluation.baseline_problems.map((p) => `baseline ${p.lesion}: ${p.detail}`) : [])];
  return el("section", { class: "recist-box" },
    el("h3", {}, "RECIST 1.1"),
    el("table", { class: "recist-mini", "data-testid": "recist" },
      el("thead", {}, el("tr", {}, ["", "Sum mm", "Δ BL", "Δ nadir", "T", "NT", "Overall"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)),
    evaluation && !table.missing.length ? el("p", { class: "bor" }, "Best overall response: ", el("strong", { "data-testid": "bor" }, evaluation.best_overall_response || "–")) : null,
    problems.length ? el("ul", { class: "problems", role: "alert", "data-testid": "problems" }, problems.map((p) => el("li", {}, p))) : null,
    table.missing.length ? el("ul", { class: "todo", "data-testid": "missing" }, table.missing.map((p) => el("li", {}, p)))
      : !problems.length ? el("p", { class: "ok", "data-testid": "complete" }, "Complete: no rule broken.") : null);
}

/** The lesion that takes the next mark, and the tools that measure it (bidirectional; length where the trial allows it). */
function armedNote(lesion) {
  const kinds = (lesion.measured_by || []).filter((kind) => TOOL_TEXT[kind]);
  const tools = kinds.length > 1 ? el("span", { class: "chips tools", role: "group", "aria-label": `Measure ${lesion.identifier} with` }, kinds.map((kind) => el("button", {
    type: "button", class: "chip", "aria-pressed": String(app.tool === kind), "data-testid": `armed-tool-${kind}`,
    title: kind === "length" ? "Length: the long axis alone (L)" : "Bidirectional: long and short axis (B)",
    on: { click: () => { app.setTool(kind); render(); } },
  }, TOOL_TEXT[kind]))) : null;
  const what = kinds.length ? kinds.map((kind) => TOOL_TEXT[kind]).join(" or ") : "mark";
  return el("p", { class: "armed-note", "data-testid": "armed" },
    `Drawing for ${lesion.identifier}: the next ${what} is its ${kinds.length ? "measurement" : "mark"}. `, tools, tools ? " " : null,
    el("button", { type: "button", class: "small-button quiet", on: { click: () => { ui.armed = null; render(); } } }, "Stop"));
}

function render() {
  if (!ui.read || !app) return;
  const read = ui.read;
  const tp = currentTp();
  const prior = besideTp();
  const editable = read.editable;
  const earlier = timepoints().filter((t) => t.order < tp.order);
  const active = document.activeElement && panel.contains(document.activeElement) ? document.activeElement.getAttribute("data-testid") : null;
  panel.replaceChildren(...[
    el("header", { class: "read-title" },
      el("h2", {}, `Subject ${read.subject}`),
      el("span", { class: `status status-${read.status}`, "data-testid": "read-status" }, read.status),
      el("nav", { class: "read-links" }, el("a", { href: R.summary }, "Summary"), el("a", { href: R.worklist }, "Worklist"))),
    el("div", { class: "tp-row", role: "group", "aria-label": "Time point read" },
      el("span", { class: "muted small" }, "Reading"),
      timepoints().map((t) => el("button", {
        type: "button", class: "chip", "aria-pressed": String(t.id === tp.id), "data-testid": `tp-${t.order}`,
        on: { click: () => { ui.current = t.id; ui.beside = null; ui.armed = null; ui.selected = null; hang(); render(); } },
      }, `${t.label} · day ${t.day}`))),
    earlier.length > 1 ? el("div", { class: "tp-row", role: "group", "aria-label": "Beside it" },
      el("span", { class: "muted small" }, "Beside"),
      earlier.map((t) => el("button", {
        type: "button", class: "chip", "aria-pressed": String(prior && t.id === prior.id), "data-testid": `beside-${t.order}`,
        on: { click: () => { ui.beside = t.id; hang(); render(); } },
      }, t.label))) : null,
    ui.naming ? chooser({
      title: `Name the new mark (${(tpById(ui.naming.timepoint) || tp).label})`, testid: "name-mark",
      roles: (tpById(ui.naming.timepoint) || tp).order === 0 ? ["target", "non_target"] : ["new", "target", "non_target"],
      role: (tpById(ui.naming.timepoint) || tp).order === 0 ? "target" : "new",
      onPick: nameMark, onCancel: discardNaming,
    }) : null,
    ui.armed && lesionById(ui.armed) ? armedNote(lesionById(ui.armed)) : null,
    ...Object.entries(ROLES).map(([role, title]) => {
      const lesions = read.lesions.filter((lesion) => lesion.role === role);
      if (role === "new" && tp.order === 0 && !lesions.length) return null;
      return el("section", { class: "lesion-group", "data-role": role },
        el("h3", {}, title,
          editable && !(role === "new" && tp.order === 0) ? el("button", {
            type: "button", class: "small-button quiet add", "data-testid": `add-${role}`, title: `Add a ${ROLE_ONE[role].toLowerCase()} lesion without a mark`,
            on: { click: () => { ui.adding = ui.adding === role ? null : role; render(); } },
          }, "+ add") : null),
        ui.adding === role ? chooser({ title: `New ${ROLE_ONE[role].toLowerCase()} lesion`, testid: "add-lesion", roles: [role], role,
          onPick: addLesion, onCancel: () => { ui.adding = null; render(); } }) : null,
        lesions.length ? el("ol", { class: "lesions" }, lesions.map(lesionItem))
          : el("p", { class: "muted small" }, role === "target" ? `Draw a bidirectional${read.targets_by_length ? " (or a length)" : ""} on a lesion, then name it.` : "None."));
    }),
    recistBox(),
    ui.errors.length ? el("ul", { class: "problems", role: "alert", "data-testid": "errors" }, ui.errors.map((e) => el("li", {}, e))) : null,
    editable ? el("div", { class: "sign-row" },
      ui.confirming
        ? [el("span", {}, "Sign? The read locks."),
          el("button", { type: "button", class: "danger", "data-testid": "sign-confirm", on: { click: sign } }, "Sign"),
          el("button", { type: "button", class: "quiet", on: { click: () => { ui.confirming = false; render(); } } }, "Cancel")]
        : el("button", { type: "button", "data-testid": "sign", on: { click: () => { ui.confirming = true; render(); } } }, "Sign the read…"))
      : el("p", { class: "muted small", "data-testid": "read-only" }, `${read.status === "draft" ? "Read-only" : "Signed"}${read.signed_at ? " " + read.signed_at.slice(0, 16).replace("T", " ") : ""}: read-only.`),
  ].filter(Boolean)); // (a null child would be the text "null")
  if (active) {
    const again = panel.querySelector(`[data-testid="${active}"]`);
    if (again) again.focus();
  }
  if (ui.naming || ui.adding) {
    const field = panel.querySelector(".namer input[type=text]");
    if (field && !active) field.focus({ preventScroll: true });
  }
  document.body.dataset.readState = `${read.status}|${read.lesions.length}|${read.marks.length}`;
}

// ------------------------------------------------------------------ the registration, remembered for the read

function restoreRegistrations() {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(REGISTRATIONS_KEY) || "null"); } catch { saved = null; }
  if (Array.isArray(saved) && saved.length) {
    app.linking.applyRegistrations({ registrations: saved });
    app.linking.follow(app.activeViewport);
  }
  let last = JSON.stringify(app.linking.registrations());
  bus.on("viewport", (state) => {
    if (!state.registrations) return;
    const now = JSON.stringify(state.registrations);
    if (now === last) return;
    last = now;
    try { localStorage.setItem(REGISTRATIONS_KEY, now); } catch { /* storage full or refused: the link holds for this page */ }
  });
}

// ------------------------------------------------------------------ start

function whenReady(test) {
  return new Promise((resolve) => {
    const check = () => (test() ? resolve() : setTimeout(check, 20));
    check();
  });
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && (ui.armed || ui.adding)) { ui.armed = null; ui.adding = null; render(); }
});

await whenReady(() => window.crossread && window.crossread.app);
app = window.crossread.app;
// the armed note shows which of its tools is on: drawn again when the tool changes (toolbar, keys)
new MutationObserver(() => { if (ui.armed) render(); }).observe(document.getElementById("viewports"), { attributes: true, attributeFilter: ["data-tool"] });
app.readPanel = { ui, refresh, goTo: (identifier, order) => goTo(ui.read.lesions.find((l) => l.identifier === identifier), order === undefined ? null : timepoints().find((t) => t.order === order)) };
await refresh();
if (ui.read) {
  hang();
  if (ui.read.editable) app.setTool("bidirectional");
  whenReady(() => app.linking).then(() => {
    restoreRegistrations();
    const asked = R.lesion && lesionById(Number(R.lesion));
    if (asked) goTo(asked, currentTp());
    document.body.dataset.readPanel = "ready";
  });
}
