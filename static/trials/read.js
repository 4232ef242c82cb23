// The read's summary (reads/<id>/summary/; the read itself is the viewer, read_panel.js): lesions × time points, the reader's own measurements, the live RECIST table, signing.
// State comes from GET /api/trials/<slug>/reads/<id>/; every change is one REST call whose answer
// is the new state. While the read is a draft, it is polled so measurements made in the viewer
// (another tab) show up and the table updates as the reader measures.

const boot = JSON.parse(document.getElementById("trial-boot").textContent);
const root = document.getElementById("read-root");
const STATUSES = {
  target: ["measured", "too_small", "disappeared", "not_evaluable"],
  non_target: ["present", "absent", "progressed", "not_evaluable"],
  new: ["present", "absent", "not_evaluable"],
};
const ROLE_NAMES = { target: "Target", non_target: "Non-target", new: "New lesion" };
let state = null;
let lastJson = "";
let errors = [];

function csrf() {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function call(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    errors = [data.detail, ...(data.errors || [])];
    render();
    return null;
  }
  errors = [];
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "on") for (const [name, fn] of Object.entries(value)) node.addEventListener(name, fn);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** A length for display: "–" when there is none (never "null"). */
function axis(value) {
  return value === null || value === undefined ? "–" : value;
}

/** A measurement's axes: "long × short", or the long axis alone for a length (no short axis). */
function axes(m) {
  return m.short_axis_mm === null || m.short_axis_mm === undefined ? axis(m.long_axis_mm) : `${axis(m.long_axis_mm)} × ${axis(m.short_axis_mm)}`;
}

function svgShot(item) {
  // The rendered frame with the bidirectional's two axes (a length's one) drawn over it, in image pixel coordinates.
  if (!item || !item.points || !item.columns) return null;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${item.columns} ${item.rows}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const image = document.createElementNS(ns, "image");
  const tp = state.timepoints.find((t) => t.id === item.timepoint) || {};
  image.setAttribute("href", `${boot.dicomweb}studies/${tp.study}/series/${item.series}/instances/${item.instance}/frames/${item.frame}/rendered`);
  image.setAttribute("width", item.columns);
  image.setAttribute("height", item.rows);
  svg.append(image);
  const [a, b, c, d] = item.points;
  for (const [p, q, colour] of [[a, b, "#ffd33d"], [c, d, "#4fb3ff"]].filter(([p, q]) => p && q)) {
    const line = document.createElementNS(ns, "line");
    Object.entries({ x1: p[0], y1: p[1], x2: q[0], y2: q[1], stroke: colour, "stroke-width": Math.max(item.columns / 160, 0.6) })
      .forEach(([k, v]) => line.setAttribute(k, v));
    svg.append(line);
  }
  return el("div", { class: "shot", title: "measurement" }, svg);
}

function cell(lesion, tp, index) {
  const assessment = lesion.assessments[index];
  const editable = state.editable;
  const allowed = STATUSES[lesion.role].filter((s) => {
    if (tp.order > 0) return true;
    return (lesion.role === "target" && s === "measured") || (lesion.role === "non_target" && s === "present");
  });
  if (lesion.role === "new" && tp.order === 0) return el("td", { class: "cell muted" }, "—");
  const shown = assessment && assessment.long_axis_mm !== null
    ? el("div", { class: "value" }, `${axes(assessment)} mm`) : null;
  // the key image opens the read's viewer at that time point, on the lesion's slice
  const picture = svgShot(assessment ? { ...assessment, timepoint: tp.id } : null);
  const shot = picture ? el("a", { href: `${boot.viewer}?timepoint=${tp.id}&lesion=${lesion.id}`, title: `${lesion.identifier} at ${tp.label}: open on its slice` }, picture) : null;
  if (!editable) {
    return el("td", { class: "cell" }, assessment ? assessment.status.replace("_", " ") : "—", shown, shot);
  }
  const status = el("select", {
    "aria-label": `${lesion.identifier} ${tp.label} status`, "data-testid": `status-${lesion.identifier}-${tp.order}`,
    on: { change: () => save(lesion, tp, status.value, measurement.value) },
  }, el("option", { value: "" }, "— status —"),
  allowed.map((s) => el("option", { value: s, selected: assessment && assessment.status === s }, s.replace("_", " "))));
  const own = (state.measurements || []).filter((m) => m.timepoint === tp.id);
  const measurement = el("select", {
    "aria-label": `${lesion.identifier} ${tp.label} measurement`, "data-testid": `measure-${lesion.identifier}-${tp.order}`,
    on: { change: () => save(lesion, tp, status.value || (lesion.role === "new" ? "present" : "measured"), measurement.value) },
  }, el("option", { value: "" }, "— measurement —"),
  own.map((m) => el("option", { value: m.id, selected: assessment && assessment.annotation === m.id },
    `#${m.id} ${m.label ? m.label + " " : ""}${axes(m)} ${m.unit || ""}${m.kind === "length" ? " (length)" : ""}${m.valid ? "" : " (invalid)"}`)));
  const canMeasure = lesion.role === "target" || lesion.role === "new";
  return el("td", { class: "cell" }, status, canMeasure ? measurement : null, shown, shot);
}

async function save(lesion, tp, status, annotation) {
  if (!status) return;
  const body = { lesion: lesion.id, timepoint: tp.id, status };
  const measured = status === "measured" || (lesion.role === "new" && status === "present");
  if (measured && annotation) body.annotation = Number(annotation);
  const data = await call("PUT", `${boot.api}assessments/`, body);
  if (data) show(data);
}

function recistTable() {
  const table = state.recist;
  const problems = [...errors, ...table.errors, ...table.missing];
  const evaluation = table.evaluation;
  if (evaluation) problems.push(...evaluation.baseline_problems.map((p) => `baseline ${p.lesion}: ${p.detail}`));
  const rows = evaluation ? evaluation.timepoints.map((r, i) => el("tr", { "data-timepoint": r.label },
    el("td", {}, r.label), el("td", {}, `day ${state.timepoints[i] ? state.timepoints[i].day : ""}`),
    el("td", { class: "value", "data-testid": `sum-${i}` }, r.sum_mm === null ? "–" : `${r.sum_mm} mm`),
    el("td", { class: "value" }, r.change_from_baseline_pct === null ? "–" : `${r.change_from_baseline_pct} %`),
    el("td", { class: "value" }, r.nadir_mm === null ? "–" : `${r.nadir_mm} mm`),
    el("td", { class: "value" }, r.change_from_nadir_pct === null ? "–" : `${r.change_from_nadir_pct} %`),
    el("td", { class: "resp" }, r.target_response || ""), el("td", { class: "resp" }, r.non_target_response || ""),
    el("td", { class: "overall", "data-testid": `overall-${i}` }, r.overall_response || ""))) : [];
  return el("section", { class: "recist-box" },
    el("h2", {}, "RECIST 1.1"),
    el("table", { class: "recist", "data-testid": "recist" },
      el("thead", {}, el("tr", {}, ["Time point", "Day", "Sum", "Δ baseline", "Nadir", "Δ nadir", "Target", "Non-target", "Overall"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)),
    evaluation ? el("p", {}, "Best overall response: ", el("strong", { "data-testid": "bor" }, evaluation.best_overall_response || "–")) : null,
    problems.length ? el("ul", { class: "problems", role: "alert", "data-testid": "problems" }, problems.map((p) => el("li", {}, p)))
      : el("p", { class: "ok" }, "No rule broken."));
}

function addLesionForm() {
  const role = el("select", { "aria-label": "role", "data-testid": "new-role" },
    Object.entries(ROLE_NAMES).map(([v, t]) => el("option", { value: v }, t)));
  const organ = el("input", { type: "text", "aria-label": "organ", placeholder: "organ, e.g. liver", "data-testid": "new-organ" });
  const nodal = el("input", { type: "checkbox", "data-testid": "new-nodal" });
  const add = el("button", { type: "submit" }, "Add lesion");
  return el("form", {
    class: "add-lesion", on: {
      submit: async (event) => {
        event.preventDefault();
        const created = await call("POST", `${boot.api}lesions/`, { role: role.value, organ: organ.value, nodal: nodal.checked });
        if (created) await refresh(true);
      },
    },
  }, el("label", {}, "Role ", role), el("label", {}, "Organ ", organ), el("label", {}, nodal, " lymph node"), add);
}

let exported = null;

function srExport() {
  // Organizers store the locked read as DICOM SR (one TID 1500 document per time point) in the archive.
  return el("section", { class: "sr-export" },
    el("button", {
      type: "button", "data-testid": "export-sr", on: {
        click: async () => {
          const data = await call("POST", `${boot.api}sr/`);
          if (data) { exported = data.instances; render(); }
        },
      },
    }, "Store as DICOM SR in the archive"),
    exported ? el("ul", { "data-testid": "sr-instances" }, exported.map((i) => el("li", {},
      `${i.timepoint}: series ${i.series} `, el("a", { href: `/projects/${boot.project}/studies/${i.study}/`, target: "_blank", rel: "noopener" }, "open study")))) : null);
}

function render() {
  if (!state) return;
  const active = document.activeElement && root.contains(document.activeElement) ? document.activeElement.getAttribute("data-testid") : null;
  root.replaceChildren(...[
    el("div", { class: "read-head" },
      el("h1", {}, `Subject ${state.subject}`),
      el("span", {}, `Reader ${state.reader}`),
      el("span", { class: `status status-${state.status}`, "data-testid": "read-status" }, state.status)),
    el("div", { class: "timepoints" }, state.timepoints.map((tp) => el("a", {
      href: `${boot.viewer}?timepoint=${tp.id}`,
    }, `${tp.label} · day ${tp.day}${tp.date ? " · " + tp.date : ""} · read in the viewer`))),
    el("table", { class: "lesions", "data-testid": "lesions" },
      el("thead", {}, el("tr", {}, el("th", {}, "Lesion"), el("th", {}, "Organ"), state.timepoints.map((tp) => el("th", {}, `${tp.label} (day ${tp.day})`)))),
      el("tbody", {}, state.lesions.map((lesion) => el("tr", { "data-lesion": lesion.identifier },
        el("td", {}, el("strong", {}, lesion.identifier), el("div", { class: "muted small" }, ROLE_NAMES[lesion.role])),
        el("td", {}, lesion.organ, lesion.nodal ? el("div", { class: "muted small" }, "lymph node") : null),
        state.timepoints.map((tp, i) => cell(lesion, tp, i)))))),
    state.editable ? addLesionForm() : null,
    recistTable(),
    state.editable ? el("p", { class: "sign" }, el("button", {
      type: "button", "data-testid": "sign", on: {
        click: async () => {
          if (!window.confirm("Sign this read? It cannot be changed afterwards.")) return;
          const data = await call("POST", `${boot.api}sign/`);
          if (data) show(data);
        },
      },
    }, "Sign and lock the read")) : el("p", { class: "muted" }, `Signed${state.signed_at ? " " + state.signed_at.slice(0, 16).replace("T", " ") : ""}: read-only.`),
    boot.organizer && state.status === "locked" ? srExport() : null,
  ].filter(Boolean)); // (replaceChildren writes a null as the text "null")
  if (active) {
    const again = root.querySelector(`[data-testid="${active}"]`);
    if (again) again.focus();
  }
}

function show(data) {
  state = data;
  lastJson = JSON.stringify(data);
  render();
}

async function refresh(force = false) {
  const response = await fetch(boot.api, { credentials: "same-origin" });
  if (!response.ok) return;
  const data = await response.json();
  const json = JSON.stringify(data);
  const typing = document.activeElement && document.activeElement.tagName === "INPUT";
  if (force || (json !== lastJson && !typing)) show(data);
}

await refresh(true);
setInterval(() => { if (state && state.editable && !document.hidden) refresh(); }, 4000);
