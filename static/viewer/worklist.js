// Project worklist: QIDO-RS search from the browser, sorted and paged on the client.
//
// QIDO-RS has no sort order, so the page asks for up to MAX_RESULTS matches (one query per
// searched attribute, merged by StudyInstanceUID), sorts them and shows PAGE_SIZE per page. When
// the archive holds more matches than that, the status line says so: refine the search.
import { dicomJson, dicomweb, formatDate, formatName, value, values } from "./api.js";

const PAGE_SIZE = 20;
const MAX_RESULTS = 1000;
const root = document.getElementById("worklist");
const project = root.dataset.project;
const web = dicomweb(project);
const form = document.getElementById("worklist-filters");
const rowsBody = document.getElementById("wl-rows");
const status = document.getElementById("wl-status");
const state = { studies: [], sort: "date", descending: true, page: 0, more: false };
let generation = 0;

function studyOf(item) {
  return {
    uid: value(item, "StudyInstanceUID"),
    patient: formatName(value(item, "PatientName")),
    patientId: value(item, "PatientID") || "",
    date: value(item, "StudyDate") || "",
    time: value(item, "StudyTime") || "",
    modality: values(item, "ModalitiesInStudy").join(", "),
    description: value(item, "StudyDescription") || "",
    accession: value(item, "AccessionNumber") || "",
    series: Number(value(item, "NumberOfStudyRelatedSeries") || 0),
    instances: Number(value(item, "NumberOfStudyRelatedInstances") || 0),
  };
}

function queries() {
  const data = new FormData(form);
  const base = { limit: String(MAX_RESULTS), includefield: "StudyDescription" };
  const modality = data.get("modality");
  if (modality) base.ModalitiesInStudy = modality;
  const from = (data.get("from") || "").replaceAll("-", "");
  const to = (data.get("to") || "").replaceAll("-", "");
  if (from || to) base.StudyDate = from === to ? from : `${from}-${to}`;
  const text = (data.get("q") || "").trim().replace(/[*?\\]/g, "");
  if (!text) return [base];
  const like = `*${text}*`;
  return ["PatientName", "PatientID", "AccessionNumber", "StudyDescription"].map((key) => ({ ...base, [key]: like }));
}

async function load() {
  const mine = ++generation;
  status.textContent = "Searching…";
  try {
    const answers = await Promise.all(queries().map((q) => dicomJson(web.studies(q))));
    if (mine !== generation) return;
    const byUid = new Map();
    for (const answer of answers) for (const item of answer.data) byUid.set(value(item, "StudyInstanceUID"), studyOf(item));
    state.studies = [...byUid.values()];
    state.more = answers.some((a) => a.warning && /additional results/.test(a.warning));
    state.page = 0;
    render();
  } catch (error) {
    if (mine === generation) status.textContent = `The search failed: ${error.message}`;
  }
}

function compare(a, b) {
  const key = state.sort;
  const x = key === "date" ? a.date + a.time : a[key];
  const y = key === "date" ? b.date + b.time : b[key];
  const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y), undefined, { sensitivity: "base" });
  return state.descending ? -order : order;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function render() {
  const sorted = [...state.studies].sort(compare);
  const pages = Math.max(1, Math.ceil(sorted.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  const shown = sorted.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
  rowsBody.replaceChildren(...shown.map((study) => {
    const tr = document.createElement("tr");
    tr.dataset.study = study.uid;
    const href = `/projects/${encodeURIComponent(project)}/studies/${encodeURIComponent(study.uid)}/`;
    const thumb = document.createElement("td");
    const link = document.createElement("a");
    link.href = href;
    link.tabIndex = -1;
    const img = document.createElement("img");
    img.loading = "lazy";
    img.width = img.height = 64;
    img.alt = "";
    img.className = "thumb";
    img.src = web.studyThumbnail(study.uid);
    img.onerror = () => img.classList.add("missing");
    link.append(img);
    thumb.append(link);
    const patient = document.createElement("td");
    const open = document.createElement("a");
    open.href = href;
    open.className = "open-study";
    open.textContent = study.patient || "(no name)";
    open.setAttribute("aria-label", `Open study of ${study.patient || "unnamed patient"}, ${formatDate(study.date)}, ${study.description}`);
    const id = document.createElement("div");
    id.className = "muted small";
    id.textContent = study.patientId + (study.accession ? ` · Acc ${study.accession}` : "");
    patient.append(open, id);
    tr.append(thumb, patient, cell(formatDate(study.date)), cell(study.modality), cell(study.description),
      cell(String(study.series), "num"), cell(String(study.instances), "num"));
    return tr;
  }));
  const total = sorted.length;
  status.textContent = total
    ? `${total} ${total === 1 ? "study" : "studies"}${state.more ? ` (the first ${MAX_RESULTS} matches; refine the search)` : ""}.`
    : "No studies match.";
  document.getElementById("wl-page").textContent = `Page ${state.page + 1} of ${pages}`;
  document.getElementById("wl-prev").disabled = state.page === 0;
  document.getElementById("wl-next").disabled = state.page >= pages - 1;
  for (const button of document.querySelectorAll("button.sort")) {
    const active = button.dataset.sort === state.sort;
    button.closest("th").setAttribute("aria-sort", active ? (state.descending ? "descending" : "ascending") : "none");
    button.removeAttribute("aria-sort");
  }
}

let timer = 0;
form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 250); });
form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
for (const button of document.querySelectorAll("button.sort")) {
  button.addEventListener("click", () => {
    if (state.sort === button.dataset.sort) state.descending = !state.descending;
    else { state.sort = button.dataset.sort; state.descending = state.sort === "date"; }
    render();
  });
}
document.getElementById("wl-prev").addEventListener("click", () => { state.page -= 1; render(); });
document.getElementById("wl-next").addEventListener("click", () => { state.page += 1; render(); });
load();
