// Editing a mark's label after it was drawn: inline on the image (double-click a mark or its text,
// whatever the tool: an input over the label, Enter saves, Esc cancels) and in the selected mark's
// panel (#mark-inspector, under "On this image"). Both save through app.updateAnnotation, so the
// transport in force carries it (REST PATCH, or a reading session's `annotation.update` with the
// version, which the others receive live) and Ctrl+Z undoes it. The edit is based on the version
// the reader saw when they started typing: if someone changed the mark meanwhile, the server
// refuses (409), nothing is overwritten, and the reader is told, their text kept to save again.
import * as annotations from "./annotations.js";
import { TOOLS, measurementLines } from "./tools.js";

/** As annotations.services.MAX_LABEL_LENGTH (and collab.protocol's bound on a label). */
export const MAX_LABEL = 200;

/** The id of the mark drawn at a client point of `overlay` (its shape, handles or text), else null. */
export function markAt(overlay, clientX, clientY) {
  for (const element of document.elementsFromPoint(clientX, clientY)) {
    if (!overlay.contains(element)) continue;
    const group = element.closest("g.annotation[data-id]");
    if (group) return /^\d+$/.test(group.dataset.id) ? Number(group.dataset.id) : group.dataset.id;
  }
  return null;
}

/** Why `annotation`'s label cannot be changed by this user, or "" when it can. */
function refusal(app, annotation) {
  if (!app.canWrite) return "Your role in this project can view but not change labels.";
  if (!app.mayEdit(annotation)) return `Only ${annotation.author || "the author"} or an organizer can change this label.`;
  if (annotation.pending) return "The mark is still being saved.";
  return "";
}

/** Save `text` as the label of mark `id`, based on `version`. Returns null when saved (or nothing
 * changed), else the message to show (the text stays with the reader). */
async function save(app, id, text, version) {
  const current = annotations.get(id);
  if (!current) return "The mark was deleted meanwhile: the label was not saved.";
  const label = text.trim().slice(0, MAX_LABEL);
  if (label === (current.label || "") && version === current.version) return null;
  const error = await app.updateAnnotation(current, { label }, { version, quiet: true });
  if (!error) return null;
  if (error.status === 409) {
    const now = annotations.get(id);
    if (!now) return "The mark was deleted meanwhile: the label was not saved.";
    return `Not saved: the mark was changed meanwhile${now.label ? ` (its label is now “${now.label}”)` : ""}. Your text is kept: save again to replace it.`;
  }
  return `Not saved: ${error.message}`;
}

// ---------------------------------------------------------------- inline, on the image

let editing = null; // {id, version, viewport}

function closeInline(refocus = true) {
  const form = document.getElementById("label-editor");
  form.hidden = true;
  const was = editing;
  editing = null;
  if (refocus && was && was.viewport) was.viewport.root.focus({ preventScroll: true });
}

/** Where the label of mark `id` is on screen (its text box), or null when it has none. */
function labelBox(viewport, id) {
  const hit = viewport && viewport.overlay.querySelector(`g.annotation[data-id="${CSS.escape(String(id))}"] .label-hit`);
  return hit ? hit.getBoundingClientRect() : null;
}

/** Open the inline editor of `annotation`'s label over its text on `viewport` (else at the point). */
export function editInline(app, annotation, clientX, clientY, viewport = app.activeViewport) {
  if (!annotation) return;
  const why = refusal(app, annotation);
  if (why) { app.toast(why); return; }
  const form = document.getElementById("label-editor");
  const input = document.getElementById("label-input");
  const note = document.getElementById("label-note");
  editing = { id: annotation.id, version: annotation.version, viewport };
  const box = labelBox(viewport, annotation.id);
  const [left, top] = box ? [box.left - 4, box.top - 4] : [clientX + 8, clientY + 8];
  form.hidden = false;
  form.style.left = `${Math.max(0, Math.min(left, window.innerWidth - form.offsetWidth - 4))}px`;
  form.style.top = `${Math.max(0, Math.min(top, window.innerHeight - form.offsetHeight - 4))}px`;
  input.maxLength = MAX_LABEL;
  input.value = annotation.label || "";
  note.textContent = "Enter saves · Esc cancels";
  note.classList.remove("error");
  input.focus();
  input.select();
}

function installInline(app) {
  const form = document.getElementById("label-editor");
  const input = document.getElementById("label-input");
  const note = document.getElementById("label-note");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!editing) return;
    const { id, version, viewport } = editing;
    const text = input.value;
    closeInline();
    const problem = await save(app, id, text, version);
    if (!problem) return;
    const now = annotations.get(id);
    if (!now) { app.toast(problem); return; }
    // Reopen over the mark with the reader's text, based on the version now shown.
    editInline(app, now, 0, 0, viewport);
    input.value = text;
    note.textContent = problem;
    note.classList.add("error");
    app.toast(problem);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.preventDefault(); closeInline(); }
    event.stopPropagation(); // the viewer's keys (Delete, letters of tools) are text here
  });
  form.addEventListener("focusout", (event) => {
    if (editing && !form.contains(event.relatedTarget)) closeInline(false); // clicked elsewhere: cancelled
  });
}

// ---------------------------------------------------------------- the selected mark's panel

let shown = { id: null, version: null };

/** Show the selected mark (id or null) in the panel: kind, author, values, and its label field. */
export function showSelected(app, id = app.selected) {
  const panel = document.getElementById("mark-inspector");
  if (!panel) return;
  const annotation = id === null || id === undefined ? null : annotations.get(id);
  panel.hidden = !annotation;
  if (!annotation) { shown = { id: null, version: null }; return; }
  const input = document.getElementById("inspector-label");
  const note = document.getElementById("inspector-note");
  const kind = TOOLS[annotation.kind] ? TOOLS[annotation.kind].label.split(" (")[0] : annotation.kind;
  document.getElementById("inspector-what").textContent = `${kind} · ${annotation.pending ? "saving…" : annotation.author || ""}`;
  const meta = app.activeViewport && app.activeViewport.meta;
  document.getElementById("inspector-values").textContent = measurementLines({ ...annotation, label: "" }, meta).join(" · ");
  const why = refusal(app, annotation);
  input.readOnly = !!why && !annotation.pending;
  input.disabled = !!annotation.pending;
  input.maxLength = MAX_LABEL;
  const typing = document.activeElement === input && shown.id === annotation.id;
  if (!typing) {
    input.value = annotation.label || "";
    shown = { id: annotation.id, version: annotation.version };
    note.classList.remove("error");
    note.textContent = why && !annotation.pending ? why : "";
  }
}

function installPanel(app) {
  const form = document.getElementById("inspector-form");
  if (!form) return;
  const input = document.getElementById("inspector-label");
  const note = document.getElementById("inspector-note");
  input.addEventListener("focus", () => {
    const annotation = shown.id !== null && annotations.get(shown.id);
    if (annotation) shown.version = annotation.version; // the edit is based on what is shown now
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      const annotation = shown.id !== null && annotations.get(shown.id);
      input.value = annotation ? annotation.label || "" : "";
      input.blur();
    }
    event.stopPropagation();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (input.readOnly || shown.id === null) return;
    const { id, version } = shown;
    note.classList.remove("error");
    note.textContent = "Saving…";
    const problem = await save(app, id, input.value, version);
    const now = annotations.get(id);
    if (now) shown.version = now.version;
    note.textContent = problem || "Saved.";
    note.classList.toggle("error", !!problem);
    if (problem) app.toast(problem);
  });
}

/** Wire the inline editor and the panel; keep the panel current as marks change (also others'). */
export function installLabels(app) {
  installInline(app);
  installPanel(app);
  annotations.subscribe(() => showSelected(app));
}
