// The reading toolbox: the measurement table (Shift+M), the DICOM tag browser (Shift+D), the
// magnifier loupe (U, a tool: viewport/modes/loupe.js) and image capture (Shift+S). Installed by the
// viewer after its first import graph; each panel's module is imported when first opened.
const BUTTONS = [
  { toolbox: "table", label: "Measurement table of the study", title: "Measurements of the study: table, CSV, DICOM SR (Shift+M)", text: "☷" },
  { toolbox: "tags", label: "DICOM tags of the image", title: "DICOM tags of the image shown (Shift+D)", text: "#" },
  { tool: "loupe", label: "Magnifier loupe", title: "Magnifier loupe (U)", text: "⊙" },
  { toolbox: "capture", label: "Capture the viewport as an image", title: "Capture the viewport as PNG or JPEG (Shift+S)", text: "▦" },
];

export function install(app) {
  const panels = {};
  const load = {
    table: () => (panels.table ||= import("./measurements.js").then(({ MeasurementTable }) => new MeasurementTable(app))),
    tags: () => (panels.tags ||= import("./tags.js").then(({ TagBrowser }) => new TagBrowser(app))),
    capture: () => (panels.capture ||= import("./capture.js").then(({ CaptureDialog }) => new CaptureDialog(app))),
  };
  const open = {
    table: async () => (await load.table()).toggle(),
    tags: async () => (await load.tags()).open(),
    capture: async () => (await load.capture()).open(),
  };
  const group = document.createElement("div");
  group.className = "group";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", "Reading tools");
  for (const spec of BUTTONS) {
    const button = Object.assign(document.createElement("button"), { type: "button", textContent: spec.text, title: spec.title });
    button.setAttribute("aria-label", spec.label);
    if (spec.tool) {
      button.dataset.tool = spec.tool;
      button.setAttribute("aria-pressed", String(app.tool === spec.tool));
      button.addEventListener("click", () => app.setTool(spec.tool));
    } else {
      button.dataset.toolbox = spec.toolbox;
      if (spec.toolbox === "table") button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => open[spec.toolbox]());
    }
    group.append(button);
  }
  const toolbar = document.querySelector(".toolbar");
  const edit = toolbar && toolbar.querySelector("[aria-label='Edit']");
  if (toolbar) toolbar.insertBefore(group, edit);
  document.body.dataset.toolbox = "ready";
  return {
    /** A key for the toolbox (from the viewer's keydown): true when handled. */
    key(event) {
      if (!event.shiftKey) return false;
      const name = { M: "table", D: "tags", S: "capture" }[event.key];
      if (!name) return false;
      open[name]();
      return true;
    },
    /** The selected mark changed: the measurement table, if open, marks its row. */
    selected() { if (panels.table) panels.table.then((table) => table.scheduleRender()); },
    panels: load,
  };
}
