// Window presets in the viewer (docs/viewer.md, "Window presets"). The page hands over the built-in
// presets of the study's modalities (viewer.imaging.presets), their number-key order per body region
// (boot.presetOrders; each series has its region, from BodyPartExamined or the descriptions) and the
// reader's own presets (/api/me/presets/, the same in every project). For a series, the keys 1-9, 0
// give the first ten of: the reader's presets of its modality, in the reader's order, then the
// built-in ones in its region's order; Shift+0 is "as acquired". The menu (#preset) lists them all,
// grouped; the "My presets" dialog adds the current window as a preset, renames, deletes and orders.
import { requestJson } from "./api.js";

const API = "/api/me/presets/";
export const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"];
export const MAX_LABEL = 40; // viewer.user_presets.MAX_LABEL

/** A preset of /api/me/presets/ as the viewer shows it. */
export function fromUser(p) {
  return { id: `user-${p.id}`, userId: p.id, modality: p.modality, group: "My presets", label: p.label, center: p.center, width: p.width };
}

/**
 * The presets of `modality` in number-key order for body `region`: the user's own (`mine`, API
 * objects in their order), then the built-in ones (`builtins`) in the order `orders[modality][region]`
 * gives (the others after, in their own order); "as acquired" (voi "file") is left out. Pure.
 */
export function ordered(builtins, mine, orders, modality, region) {
  const own = mine.filter((p) => p.modality === modality).map(fromUser);
  const order = (orders[modality] && (orders[modality][region] || orders[modality].body)) || [];
  const rank = (p) => { const i = order.indexOf(p.id); return i < 0 ? order.length : i; };
  const base = builtins.filter((p) => p.modality === modality && p.voi !== "file")
    .map((p, i) => [p, i]).sort(([a, i], [b, j]) => rank(a) - rank(b) || i - j).map(([p]) => p);
  return [...own, ...base];
}

/** The presets of the active viewport's series (or of `modality` in the region "body"), keys first. */
export function presetsFor(app, modality, stack = app.activeViewport && app.activeViewport.stack) {
  const region = stack && stack.modality === modality ? regionOf(app, stack) : "body";
  return ordered(app.presets, app.userPresets || [], app.presetOrders || {}, modality, region);
}

function regionOf(app, stack) {
  const found = app.allSeries.find((entry) => entry.series.uid === stack.series);
  return (found && found.series.region) || "body";
}

export function find(app, id) {
  return app.presets.find((p) => p.id === id) || (app.userPresets || []).map(fromUser).find((p) => p.id === id) || null;
}

function describe(preset) {
  return preset.center !== undefined ? ` (${preset.width}/${preset.center})` : "";
}

/** Fill the menu (grouped, with each preset's key) and the key list of the shortcut sheet. */
export function fill(app) {
  const select = document.getElementById("preset");
  const stack = app.activeViewport && app.activeViewport.stack;
  const list = presetsFor(app, stack ? stack.modality : "");
  const groups = new Map();
  list.forEach((preset, i) => {
    const option = new Option(`${KEYS[i] ? `${KEYS[i]} · ` : ""}${preset.label}${describe(preset)}`, preset.id);
    if (!groups.has(preset.group || "Presets")) groups.set(preset.group || "Presets", []);
    groups.get(preset.group || "Presets").push(option);
  });
  const children = [new Option("⇧0 · As acquired", "")];
  for (const [name, options] of groups) {
    const group = document.createElement("optgroup");
    group.label = name === "My presets" || !stack ? name : `${stack.modality} · ${name}`;
    group.append(...options);
    children.push(group);
  }
  const value = select.value;
  select.replaceChildren(...children);
  if ([...select.options].some((o) => o.value === value)) select.value = value;
  const keys = document.getElementById("preset-keys");
  keys.replaceChildren(...list.slice(0, KEYS.length).map((preset, i) => Object.assign(document.createElement("li"), { textContent: `${KEYS[i]}: ${preset.label}` })));
}

/** The window of preset `id` ("" : as acquired) on the active viewport. */
export function apply(app, id) {
  const viewport = app.activeViewport;
  if (!viewport || !viewport.stack) return;
  const select = document.getElementById("preset");
  if (!id) { viewport.setWindow(null); select.value = ""; return; }
  const preset = find(app, id);
  if (!preset) return;
  if (preset.center !== undefined) viewport.setWindow({ center: preset.center, width: preset.width });
  else if (preset.voi === "full") viewport.setWindow(fullRange(viewport));
  else viewport.setWindow(null);
  select.value = id;
}

/** The "Full range" preset of MR, CR, DX: the range of the values present when the server said it
 * (X-Crossread-Window, an image without a window of its own), else the stored range. */
function fullRange(viewport) {
  const auto = viewport.autoWindow();
  if (auto) return { ...auto };
  const meta = viewport.meta;
  if (!meta) return null;
  const high = (meta.signed ? 2 ** (meta.bitsStored - 1) - 1 : 2 ** meta.bitsStored - 1) * meta.slope + meta.intercept;
  const low = (meta.signed ? -(2 ** (meta.bitsStored - 1)) : 0) * meta.slope + meta.intercept;
  return { center: (low + high) / 2, width: high - low };
}

/** Press a number key: "1".."9", "0" (the tenth). Returns whether a preset was there. */
export function applyKey(app, key) {
  const stack = app.activeViewport && app.activeViewport.stack;
  const preset = presetsFor(app, stack ? stack.modality : "")[KEYS.indexOf(key)];
  if (preset) apply(app, preset.id);
  return !!preset;
}

// ------------------------------------------------------------------ the reader's own presets

function changed(app, list) {
  app.userPresets = list;
  fill(app);
  renderList(app);
}

async function reload(app) {
  const { presets } = await requestJson(API);
  changed(app, presets);
}

async function run(app, work) {
  const note = document.getElementById("my-presets-note");
  note.textContent = "";
  try {
    await work();
  } catch (error) {
    note.textContent = error.message;
    await reload(app).catch(() => {});
  }
}

/** Open the "My presets" dialog (built on first use). */
export function openManager(app) {
  let dialog = document.getElementById("my-presets");
  if (!dialog) dialog = build(app);
  const viewport = app.activeViewport;
  const window = viewport && viewport.stack ? viewport.effectiveWindow() : null;
  const modality = viewport && viewport.stack ? viewport.stack.modality : "";
  const current = document.getElementById("my-presets-current");
  current.textContent = window ? `${modality} · W ${Math.round(window.width)} L ${Math.round(window.center)}` : "No window to save: show a greyscale image.";
  dialog.querySelector("#my-presets-add button").disabled = !window || !modality;
  document.getElementById("my-presets-note").textContent = "";
  renderList(app);
  dialog.showModal();
  document.getElementById("my-preset-name").focus();
}

function build(app) {
  const dialog = document.createElement("dialog");
  dialog.id = "my-presets";
  dialog.className = "my-presets";
  dialog.setAttribute("aria-labelledby", "my-presets-title");
  dialog.innerHTML = `
    <h2 id="my-presets-title">My window presets</h2>
    <p class="muted small">Yours, in every project. For a series of their modality they come first,
      on the keys 1–9 and 0 before the built-in presets, in this order.</p>
    <form id="my-presets-add">
      <label for="my-preset-name">Name</label>
      <div class="row"><input id="my-preset-name" maxlength="${MAX_LABEL}" autocomplete="off" required placeholder="e.g. Lung wide">
      <button type="submit">Add the current window</button></div>
      <p id="my-presets-current" class="small"></p>
    </form>
    <ol id="my-preset-list" aria-label="My presets"></ol>
    <p id="my-presets-note" class="error small" role="status"></p>
    <form method="dialog"><button type="submit">Close</button></form>`;
  document.body.append(dialog);
  dialog.querySelector("#my-presets-add").addEventListener("submit", (event) => {
    event.preventDefault();
    const viewport = app.activeViewport;
    const window = viewport && viewport.stack && viewport.effectiveWindow();
    const input = document.getElementById("my-preset-name");
    if (!window) return;
    const label = input.value.trim();
    run(app, async () => {
      await requestJson(API, { method: "POST", body: {
        modality: viewport.stack.modality, label,
        center: Math.round(window.center * 100) / 100, width: Math.max(1, Math.round(window.width * 100) / 100),
      } });
      if (input.value.trim() === label) input.value = ""; // not what was typed meanwhile
      await reload(app);
    });
  });
  return dialog;
}

function renderList(app) {
  const ol = document.getElementById("my-preset-list");
  if (!ol) return;
  const mine = app.userPresets || [];
  ol.replaceChildren(...mine.map((preset, i) => {
    const li = document.createElement("li");
    li.dataset.id = String(preset.id);
    const name = Object.assign(document.createElement("input"), { value: preset.label, maxLength: MAX_LABEL, autocomplete: "off" });
    name.setAttribute("aria-label", `Name of preset ${i + 1}`);
    name.addEventListener("change", () => run(app, async () => {
      await requestJson(`${API}${preset.id}/`, { method: "PATCH", body: { label: name.value.trim() } });
      await reload(app);
    }));
    const what = Object.assign(document.createElement("span"), { className: "muted small", textContent: `${preset.modality} · W ${preset.width} L ${preset.center}` });
    const button = (text, label, action, disabled = false) => {
      const b = Object.assign(document.createElement("button"), { type: "button", textContent: text, title: label, disabled });
      b.setAttribute("aria-label", `${label}: ${preset.label}`);
      b.addEventListener("click", () => run(app, action));
      return b;
    };
    const move = (delta) => async () => {
      const ids = mine.map((p) => p.id);
      const [moved] = ids.splice(i, 1);
      ids.splice(i + delta, 0, moved);
      changed(app, (await requestJson(`${API}order/`, { method: "POST", body: { ids } })).presets);
    };
    li.append(name, what,
      button("↑", "Move up", move(-1), i === 0),
      button("↓", "Move down", move(1), i === mine.length - 1),
      button("✕", "Delete", async () => { await requestJson(`${API}${preset.id}/`, { method: "DELETE" }); await reload(app); }));
    return li;
  }));
  if (!mine.length) ol.innerHTML = '<li class="muted small">No presets of your own yet.</li>';
}
