// Upload page: drop files, folders or zips; each file is POSTed on its own (a few at a time) to
// /api/projects/<slug>/upload/ so that each has its own progress bar and report.
import { csrfToken } from "./api.js";

const CONCURRENCY = 3;
const root = document.getElementById("upload");
const url = `/api/projects/${encodeURIComponent(root.dataset.project)}/upload/`;
const zone = document.getElementById("dropzone");
const table = document.getElementById("upload-table");
const rows = document.getElementById("upload-rows");
const overall = document.getElementById("overall");
const overallBar = document.getElementById("overall-progress");
const overallText = document.getElementById("overall-text");
const summary = document.getElementById("summary");

const jobs = [];
const totals = { stored: 0, already_stored: 0, failed: 0 };
const refused = [];
let running = 0;

function humanSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

// -------------------------------------------------------------- collecting dropped files and folders

async function filesFromEntry(entry, prefix = "") {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    return [{ file, name: prefix + file.name }];
  }
  const reader = entry.createReader();
  const children = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    children.push(...batch);
  }
  const nested = await Promise.all(children.map((child) => filesFromEntry(child, `${prefix}${entry.name}/`)));
  return nested.flat();
}

async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files].map((file) => ({ file, name: file.name }));
  return (await Promise.all(entries.map((entry) => filesFromEntry(entry)))).flat();
}

// -------------------------------------------------------------- queue

function addFiles(items) {
  const wanted = items.filter(({ name }) => !/(^|\/)\.[^/]*$/.test(name)); // skip hidden files (.DS_Store)
  if (!wanted.length) return;
  table.hidden = false;
  overall.hidden = false;
  summary.hidden = true;
  for (const { file, name } of wanted) {
    const tr = document.createElement("tr");
    const progress = document.createElement("progress");
    progress.max = 1;
    progress.value = 0;
    progress.setAttribute("aria-label", `Upload of ${name}`);
    const result = document.createElement("td");
    result.className = "result";
    result.textContent = "waiting";
    const nameCell = document.createElement("td");
    nameCell.textContent = name;
    const sizeCell = document.createElement("td");
    sizeCell.textContent = humanSize(file.size);
    const progressCell = document.createElement("td");
    progressCell.append(progress);
    tr.append(nameCell, sizeCell, progressCell, result);
    rows.append(tr);
    jobs.push({ file, name, size: file.size, loaded: 0, done: false, progress, result, row: tr });
  }
  pump();
}

function updateOverall() {
  const size = jobs.reduce((sum, job) => sum + job.size, 0) || 1;
  const loaded = jobs.reduce((sum, job) => sum + (job.done ? job.size : job.loaded), 0);
  overallBar.value = loaded / size;
  const finished = jobs.filter((job) => job.done).length;
  overallText.textContent = `${finished} of ${jobs.length} files sent · ${humanSize(loaded)} of ${humanSize(size)}`;
}

function pump() {
  while (running < CONCURRENCY) {
    const job = jobs.find((j) => !j.started);
    if (!job) break;
    job.started = true;
    running += 1;
    send(job).finally(() => {
      running -= 1;
      job.done = true;
      updateOverall();
      pump();
      if (jobs.every((j) => j.done)) showSummary();
    });
  }
  updateOverall();
}

function send(job) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const body = new FormData();
    body.append("file", job.file, job.name.split("/").pop());
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    job.result.textContent = "sending";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) {
        job.loaded = event.loaded / event.total * job.size;
        job.progress.value = event.loaded / event.total;
        updateOverall();
      }
    };
    xhr.onload = () => {
      job.progress.value = 1;
      let report = null;
      try { report = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (report && report.counts) record(job, report);
      else fail(job, (report && report.detail) || `HTTP ${xhr.status}`);
      resolve();
    };
    xhr.onerror = () => { fail(job, "network error"); resolve(); };
    xhr.send(body);
  });
}

function record(job, report) {
  for (const key of Object.keys(totals)) totals[key] += report.counts[key] || 0;
  const failures = report.results.filter((r) => r.outcome === "failed");
  for (const failure of failures) refused.push({ name: report.results.length > 1 ? `${job.name}: ${failure.name}` : job.name, reason: failure.reason });
  const parts = [];
  if (report.counts.stored) parts.push(`${report.counts.stored} stored`);
  if (report.counts.already_stored) parts.push(`${report.counts.already_stored} already stored`);
  if (report.counts.failed) parts.push(`${report.counts.failed} refused`);
  job.result.textContent = parts.join(", ") || "nothing";
  if (failures.length === 1 && report.results.length === 1) job.result.textContent = `refused: ${failures[0].reason}`;
  job.row.classList.add(failures.length === report.results.length ? "failed" : "ok");
}

function fail(job, reason) {
  totals.failed += 1;
  refused.push({ name: job.name, reason });
  job.result.textContent = `refused: ${reason}`;
  job.row.classList.add("failed");
}

function showSummary() {
  summary.hidden = false;
  document.getElementById("summary-counts").textContent =
    `${totals.stored} instances stored, ${totals.already_stored} already stored, ${totals.failed} refused.`;
  document.getElementById("summary-refused").replaceChildren(...refused.map(({ name, reason }) => {
    const li = document.createElement("li");
    li.textContent = `${name}: ${reason}`;
    return li;
  }));
}

// -------------------------------------------------------------- wiring

for (const type of ["dragenter", "dragover"]) {
  zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add("over"); });
}
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", async (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  addFiles(await droppedFiles(event.dataTransfer));
});
zone.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") { event.preventDefault(); document.getElementById("pick-files").click(); }
});
for (const id of ["pick-files", "pick-folder"]) {
  const input = document.getElementById(id);
  input.addEventListener("change", () => {
    addFiles([...input.files].map((file) => ({ file, name: file.webkitRelativePath || file.name })));
    input.value = "";
  });
}
