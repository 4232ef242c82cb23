// The adjudication on the images (docs/trials.md, "Adjudication on the images"): the viewer page with
// both signed reads of a subject side by side, reader A's marks in the left viewport and B's in the
// right, the same time point in both (the same study: linked scrolling by its frame of reference), and
// the adjudication's panel: the time points where the overall responses differ (and where they agree),
// each reader's RECIST table and lesions ("go to" either reader's lesion), and the choice of a read with
// a reason. It runs before viewer.js (the template puts it first) so that the annotation store lists the
// two reads' marks (GET .../subjects/<id>/adjudication/marks/), read-only, before the viewer lists any.
// State comes from GET .../subjects/<id>/adjudication/ (trials.services.signing.adjudication_view).
import { requestJson } from "../viewer/api.js";
import * as annotations from "../viewer/annotations.js";
import { el, mm } from "./dom.js";

const boot = JSON.parse(document.getElementById("boot").textContent);
const J = boot.adjudication;
const panel = document.getElementById("adjudication-panel");
const STATUS_TEXT = {
  measured: "measured", too_small: "too small", disappeared: "disappeared", not_evaluable: "not evaluable",
  present: "present", absent: "absent", progressed: "unequivocal progression",
};
const STATE_TEXT = { reading: "reading", agreed: "agreed", needs_adjudication: "needs adjudication", adjudicated: "adjudicated", done: "done" };
const SIDES = ["A", "B"];

const ui = { view: null, current: J.current, chosen: null, reason: "", errors: [], busy: false };
let app = null;

// ------------------------------------------------------------------ transport: both reads' marks, read-only

let listing = null;
const readOnly = () => Promise.reject(Object.assign(new Error("The adjudication shows the signed reads: read-only."), { status: 403 }));
annotations.setTransport({
  create: readOnly,
  update: readOnly,
  remove: readOnly,
  // the viewer lists each study's marks; both reads' marks of every time point come in one answer
  list: () => (listing ||= requestJson(J.marks).then((data) => data.annotations).finally(() => setTimeout(() => { listing = null; }, 0))),
});

async function refresh() {
  try {
    ui.view = await requestJson(J.api);
  } catch (error) {
    ui.errors = [error.message];
  }
  render();
}

const dash = (value) => (value === null || value === undefined || value === "" ? "–" : String(value));

// ------------------------------------------------------------------ the view's facts

const reads = () => (ui.view ? ui.view.reads : []);
const readOf = (side) => reads().find((r) => r.side === side) || null;
const timepoints = () => (ui.view ? ui.view.timepoints : []);
const tpById = (id) => timepoints().find((tp) => tp.id === id);
const currentTp = () => tpById(ui.current) || timepoints()[timepoints().length - 1];
const short = (tp) => (tp.order === 0 ? "BL" : `FU${tp.order}`);
const dayOf = (tp) => { const outline = app && app.outlines.find((o) => o.timepoint === tp.id); return outline ? outline.day : null; };

// ------------------------------------------------------------------ hanging: A left, B right, the same time point

function seriesOf(outline) {
  const images = (s) => s.instances.reduce((sum, i) => sum + i[1], 0);
  const volumes = outline.series.filter((s) => ["CT", "MR", "PT"].includes(s.modality));
  return [...(volumes.length ? volumes : outline.series)].sort((a, b) => images(b) - images(a))[0] || null;
}

function hang() {
  const tp = currentTp();
  const outline = tp && app.outlines.find((o) => o.timepoint === tp.id);
  const series = outline && seriesOf(outline);
  if (!series) return;
  app.setLayout("1x2");
  SIDES.forEach((side, i) => {
    const viewport = app.viewports[i];
    const read = readOf(side);
    viewport.markFilter = (annotation) => !!read && annotation.read === read.id;
    viewport.root.classList.add("adjudication-side", `side-${side.toLowerCase()}`);
    viewport.root.setAttribute("aria-label", `Reader ${side}'s marks`);
    let badge = viewport.root.querySelector(".side-badge");
    if (!badge) { badge = el("div", { class: "side-badge", "data-testid": `side-badge-${side}` }); viewport.root.append(badge); }
    badge.textContent = read ? `Reader ${side} · ${tp.label}` : `Reader ${side}: not signed`;
    // another time point: at the slice shown before (the subject's studies are usually acquired alike)
    if (!viewport.stack || viewport.stack.series !== series.uid) app.loadSeries(series.uid, viewport, { index: viewport.stack ? viewport.target : 0 });
    viewport.drawOverlay();
  });
  app.activate(app.viewports[0]);
  document.body.dataset.hanging = `${tp.id}`;
}

// ------------------------------------------------------------------ go to a lesion of either reader

/** Where a reader's lesion is marked: at `tp` (its live mark, else its frozen measurement), else at any time point. */
function locate(read, lesion, tp) {
  const marks = annotations.all().filter((a) => a.read === read.id && a.lesion === lesion.id);
  const cells = lesion.assessments.filter((c) => c && c.instance && c.points)
    .map((c) => ({ timepoint: c.timepoint, instance: c.instance, frame: c.frame || 1, points: c.points }));
  const found = [...marks.map((a) => ({ timepoint: a.timepoint, instance: a.instance, frame: a.frame || 1, points: a.points })), ...cells];
  return found.find((m) => m.timepoint === tp.id) || found[0] || null;
}

async function goTo(side, lesion) {
  const read = readOf(side);
  if (!read) return;
  let where = locate(read, lesion, currentTp());
  if (!where) { app.toast(`Reader ${side}'s ${lesion.identifier} has no mark on the images.`); return; }
  if (where.timepoint !== currentTp().id) { ui.current = where.timepoint; hang(); render(); }
  const viewport = app.viewports[SIDES.indexOf(side)];
  await app.loadMetadata(viewport.stack);
  where = locate(read, lesion, currentTp()) || where;
  const index = viewport.stack.indexOf(where.instance, where.frame);
  if (index < 0) return;
  const centre = [where.points.reduce((s, p) => s + p[0], 0) / where.points.length, where.points.reduce((s, p) => s + p[1], 0) / where.points.length];
  app.activate(viewport);
  viewport.setIndex(index, { force: true }); // linked scrolling brings the other reader's viewport to the same slice
  for (const v of app.viewports.slice(0, 2)) {
    if (v !== viewport && v.stack === viewport.stack && v.target !== index) v.setIndex(index, { force: true, linked: true });
    v.centre = [...centre]; // the same study on both sides: the same image point
    v.fitted = false;
    v.draw();
  }
  document.body.dataset.wentTo = `${side}|${lesion.identifier}|${where.timepoint}|${index}`;
}

// ------------------------------------------------------------------ the decision

async function decide() {
  const read = ui.chosen && readOf(ui.chosen);
  if (!read) { ui.errors = ["Choose reader A's or reader B's read."]; render(); return; }
  if (!ui.reason.trim()) { ui.errors = ["Give the reason for the choice."]; render(); return; }
  if (ui.busy) return;
  ui.busy = true;
  try {
    ui.view = await requestJson(J.api, { method: "POST", body: { read: read.id, reason: ui.reason } });
    ui.errors = [];
  } catch (error) {
    ui.errors = [error.message];
  }
  ui.busy = false;
  render();
}

// ------------------------------------------------------------------ rendering

function comparison() {
  const cur = currentTp();
  const rows = timepoints().map((tp) => {
    const [a, b] = tp.responses;
    const verdict = tp.agree === null ? "" : tp.agree ? "agree" : "differ";
    const day = dayOf(tp);
    return el("li", {},
      el("button", {
        type: "button", class: `tp-compare${tp.agree === false ? " differ" : ""}`, "aria-pressed": String(tp.id === cur.id), "data-testid": `compare-${tp.order}`,
        title: `Show ${tp.label} on both sides`, on: { click: () => { ui.current = tp.id; hang(); render(); } },
      },
      el("span", { class: "tp-name" }, `${tp.label}${day === null ? "" : ` · day ${day}`}`),
      el("span", { class: "resp" }, `A ${dash(a)}`), el("span", { class: "resp" }, `B ${dash(b)}`),
      el("span", { class: `verdict ${verdict}`, "data-testid": `verdict-${tp.order}` }, verdict)));
  });
  const [boA, boB] = SIDES.map((s) => { const r = readOf(s); return r && r.recist.evaluation ? r.recist.evaluation.best_overall_response : null; });
  const both = readOf("A") && readOf("B");
  rows.push(el("li", {}, el("div", { class: `tp-compare best${both && boA !== boB ? " differ" : ""}` },
    el("span", { class: "tp-name" }, "best overall response"),
    el("span", { class: "resp" }, `A ${dash(boA)}`), el("span", { class: "resp" }, `B ${dash(boB)}`),
    el("span", { class: `verdict ${both ? (boA === boB ? "agree" : "differ") : ""}`, "data-testid": "verdict-best" }, both ? (boA === boB ? "agree" : "differ") : ""))));
  return el("section", { class: "compare" }, el("h3", {}, "Overall response per time point"), el("ol", { class: "compare-list" }, rows));
}

function recistTable(read) {
  const evaluation = read.recist.evaluation;
  const rows = evaluation ? evaluation.timepoints.map((r, i) => {
    const tp = read.timepoints[i];
    return el("tr", { class: tp && tp.id === currentTp().id ? "here" : null },
      el("th", { scope: "row" }, tp ? short(tp) : r.label),
      el("td", { class: "num" }, r.sum_mm === null ? "–" : `${r.sum_mm}`),
      el("td", {}, dash(r.target_response)),
      el("td", {}, dash(r.non_target_response)),
      el("td", {}, r.new_lesions ? "yes" : "–"),
      el("td", { class: "overall-cell", "data-testid": `overall-${read.side}-${i}` }, dash(r.overall_response)));
  }) : [];
  return el("table", { class: "recist-mini", "data-testid": `recist-${read.side}` },
    el("thead", {}, el("tr", {}, ["", "Sum mm", "T", "NT", "New", "Overall"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows));
}

function lesionButton(read, lesion) {
  const tp = currentTp();
  const cell = lesion.assessments[read.timepoints.findIndex((t) => t.id === tp.id)] || null;
  const now = cell ? (cell.long_axis_mm !== null && cell.long_axis_mm !== undefined ? (cell.short_axis_mm === null || cell.short_axis_mm === undefined ? mm(cell.long_axis_mm) : `${mm(cell.long_axis_mm)} × ${mm(cell.short_axis_mm)}`) : STATUS_TEXT[cell.status] || dash(cell.status)) : "–";
  return el("li", {}, el("button", {
    type: "button", class: "lesion-button", "data-testid": `lesion-${read.side}-${lesion.identifier}`,
    title: `Go to reader ${read.side}'s ${lesion.identifier}`, on: { click: () => goTo(read.side, lesion) },
  }, el("strong", {}, lesion.identifier), el("span", { class: "organ" }, `${lesion.organ}${lesion.nodal ? " (node)" : ""}`), el("span", { class: "now" }, now)));
}

function readColumn(side) {
  const read = readOf(side);
  if (!read) return el("section", { class: `read-column side-${side.toLowerCase()}` }, el("h3", {}, `Reader ${side}`), el("p", { class: "muted small" }, "Not signed yet."));
  const chosen = ui.view.adjudication && ui.view.adjudication.read === read.id;
  const bor = read.recist.evaluation ? read.recist.evaluation.best_overall_response : null;
  return el("section", { class: `read-column side-${side.toLowerCase()}${chosen ? " chosen" : ""}`, "data-testid": `read-${side}`, "data-read": String(read.id) },
    el("h3", {}, el("span", {}, `Reader ${side} `, el("span", { class: "who" }, read.reader)),
      el("a", { href: `${J.reads}${read.id}/?timepoint=${currentTp().id}`, class: "small", "data-testid": `open-read-${side}`, title: `Reader ${side}'s read alone in the viewer, read-only` }, "open")),
    recistTable(read),
    el("p", { class: "bor" }, "Best: ", el("strong", { "data-testid": `bor-${side}` }, dash(bor))),
    el("ol", { class: "lesions" }, read.lesions.map((lesion) => lesionButton(read, lesion))));
}

function decision() {
  const view = ui.view;
  if (view.adjudication) {
    const chosen = reads().find((r) => r.id === view.adjudication.read);
    return el("p", { class: "decision", "data-testid": "decision" },
      `Reader ${chosen ? chosen.side : "?"}'s read chosen by ${view.adjudication.adjudicator}: “${view.adjudication.reason}”`);
  }
  if (!view.can_adjudicate) return el("p", { class: "muted small" }, view.state === "needs_adjudication" ? "Only the trial's adjudicators choose a read." : "Nothing to adjudicate.");
  const reason = el("textarea", { rows: "3", maxlength: "2000", "aria-label": "Reason", placeholder: "Why this read (e.g. N1 is an unequivocal new lesion)", "data-testid": "reason" });
  reason.value = ui.reason;
  reason.addEventListener("input", () => { ui.reason = reason.value; });
  reason.addEventListener("keydown", (event) => event.stopPropagation()); // typing is not the viewer's shortcuts
  return el("form", { class: "decide", on: { submit: (event) => { event.preventDefault(); decide(); } } },
    el("h3", {}, "Decision"),
    el("div", { class: "chips", role: "group", "aria-label": "Choose a read" }, SIDES.filter(readOf).map((side) => el("button", {
      type: "button", class: "chip", "aria-pressed": String(ui.chosen === side), "data-testid": `choose-${side}`,
      on: { click: () => { ui.chosen = side; render(); } },
    }, `Reader ${side}'s read`))),
    reason,
    el("button", { type: "submit", "data-testid": "decide", disabled: ui.busy }, "Record decision"));
}

function render() {
  if (!app) return;
  const view = ui.view;
  if (!view) {
    panel.replaceChildren(el("p", { class: "problems", role: "alert" }, ui.errors.join(" ") || "Loading the reads…"));
    return;
  }
  const focused = document.activeElement && panel.contains(document.activeElement) ? document.activeElement.getAttribute("data-testid") : null;
  panel.replaceChildren(...[
    el("header", { class: "read-title" },
      el("h2", {}, `Subject ${view.subject.label}`),
      el("span", { class: `status state-${view.state}`, "data-testid": "state" }, STATE_TEXT[view.state] || view.state),
      el("nav", { class: "read-links" }, el("a", { href: J.page }, "Tables"), el("a", { href: J.worklist }, "Worklist"))),
    comparison(),
    el("div", { class: "read-columns" }, SIDES.map(readColumn)),
    ui.errors.length ? el("ul", { class: "problems", role: "alert", "data-testid": "errors" }, ui.errors.map((e) => el("li", {}, e))) : null,
    decision(),
  ].filter(Boolean)); // (a null child would be the text "null")
  if (focused) { const again = panel.querySelector(`[data-testid="${focused}"]`); if (again) again.focus(); }
  document.body.dataset.adjudication = `${view.state}|${reads().length}`;
}

// ------------------------------------------------------------------ start

function whenReady(test) {
  return new Promise((resolve) => {
    const check = () => (test() ? resolve() : setTimeout(check, 20));
    check();
  });
}

await whenReady(() => window.crossread && window.crossread.app);
app = window.crossread.app;
app.adjudication = { ui, refresh, goTo: (side, identifier) => goTo(side, readOf(side).lesions.find((l) => l.identifier === identifier)) };
await refresh();
if (ui.view) {
  hang();
  render();
  whenReady(() => app.linking).then(() => {
    app.linking.setOn(true); // the same study on both sides: linked by its frame of reference
    document.body.dataset.adjudicationPanel = "ready";
  });
}
