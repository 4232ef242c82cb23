// Layouts of the viewer's grid (docs/viewer.md, "Layouts"): the names and viewport counts, the
// layout menu, and the layout remembered per modality (localStorage, this browser): a study opens
// in the layout last chosen for the modality of its first series. MPR is mpr.js's own layout.

/** Layout name -> number of viewports; "RxC" is R rows of C viewports. */
export const LAYOUTS = { "1x1": 1, "1x2": 2, "2x1": 2, "1x3": 3, "2x2": 4, "2x3": 6, "3x3": 9, mpr: 3 };
export const MENU = ["1x1", "1x2", "2x1", "1x3", "2x2", "2x3", "3x3"];
const KEY = "crossread.layout."; // + modality

/** "2x3" -> "2 × 3" (rows × columns). */
export function title(name) { return name.replace("x", " × "); }

export function remembered(modality) {
  try {
    const name = modality ? localStorage.getItem(KEY + modality) : null;
    return MENU.includes(name) ? name : null;
  } catch { return null; } // storage refused (privacy settings): nothing remembered
}

function remember(modality, name) {
  if (!modality || !MENU.includes(name)) return;
  try { localStorage.setItem(KEY + modality, name); } catch { /* not remembered */ }
}

/** The reader chose layout `name` (menu, toolbar, keys): show it and remember it for the modality. */
export function choose(app, name) {
  app.setLayout(name);
  const stack = app.activeViewport && app.activeViewport.stack;
  remember(stack ? stack.modality : app.outline.series[0] && app.outline.series[0].modality, name);
}

/** The layout a study opens in: the one remembered for its first series' modality, else 1x1. */
export function initial(app) {
  const first = app.outline.series[0];
  return (first && remembered(first.modality)) || "1x1";
}

/** A small picture of a layout: its rows and columns of cells. */
function icon(name) {
  const [rows, columns] = name.split("x").map(Number);
  const grid = document.createElement("span");
  grid.className = "layout-icon";
  grid.setAttribute("aria-hidden", "true");
  grid.style.gridTemplate = `repeat(${rows}, 1fr) / repeat(${columns}, 1fr)`;
  for (let i = 0; i < rows * columns; i += 1) grid.append(document.createElement("span"));
  return grid;
}

/** The layout menu: the toolbar button #layout-menu-button opens #layout-menu. */
export function install(app) {
  const button = document.getElementById("layout-menu-button");
  const menu = document.getElementById("layout-menu");
  if (!button || !menu) return;
  menu.replaceChildren(...MENU.map((name) => {
    const item = document.createElement("button");
    item.type = "button";
    item.setAttribute("role", "menuitemradio");
    item.dataset.layoutChoice = name;
    item.setAttribute("aria-label", `Layout ${title(name)}`);
    item.append(icon(name), Object.assign(document.createElement("span"), { textContent: title(name) }));
    item.addEventListener("click", () => { close(); choose(app, name); });
    return item;
  }));
  const open = () => {
    for (const item of menu.children) item.setAttribute("aria-checked", String(item.dataset.layoutChoice === app.layout));
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    (menu.querySelector("[aria-checked=true]") || menu.firstElementChild).focus();
  };
  const close = () => { menu.hidden = true; button.setAttribute("aria-expanded", "false"); };
  button.addEventListener("click", () => (menu.hidden ? open() : close()));
  menu.addEventListener("keydown", (event) => {
    const items = [...menu.children];
    const at = items.indexOf(document.activeElement);
    if (event.key === "Escape") { close(); button.focus(); } else if (event.key === "ArrowDown" || event.key === "ArrowRight") items[(at + 1) % items.length].focus();
    else if (event.key === "ArrowUp" || event.key === "ArrowLeft") items[(at + items.length - 1) % items.length].focus();
    else return;
    event.preventDefault();
    event.stopPropagation();
  });
  document.addEventListener("pointerdown", (event) => { if (!menu.hidden && !menu.contains(event.target) && event.target !== button) close(); });
}
