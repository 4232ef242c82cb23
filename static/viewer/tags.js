// The DICOM tag browser: the elements of the instance shown in the active viewport, from
// GET /projects/<slug>/instances/<uid>/tags (viewer/tag_views.py: through the gate, masked for a
// blinded reader as WADO-RS metadata is). Tag, keyword and name, VR, value; sequences expand; bulk
// data are links to WADO-RS bulkdata; a filter box keeps the rows (and the sequences holding rows)
// whose tag, keyword, name or value contain the text.
import { requestJson } from "./api.js";

function rowNode(element) {
  const row = document.createElement("div");
  row.className = "tag-row";
  row.dataset.tag = element.tag;
  const cell = (className, text) => Object.assign(document.createElement("span"), { className, textContent: text });
  const name = element.keyword || element.name || "";
  const title = element.creator ? `${element.name} [${element.creator}]` : element.name || "";
  const nameCell = cell("tag-name", name);
  nameCell.title = title;
  if (element.creator) nameCell.textContent = `${element.name} [${element.creator}]`;
  const valueCell = cell("tag-value", "");
  if (element.bulk) {
    valueCell.append(Object.assign(document.createElement("a"), { href: element.bulk, textContent: "bulk data", title: "WADO-RS bulk data" }));
  } else {
    valueCell.textContent = element.value;
    if (element.truncated) valueCell.append(cell("muted small", ` … (${element.truncated} characters, cut)`));
  }
  row.append(cell("tag-tag", element.tag), nameCell, cell("tag-vr", element.vr), valueCell);
  row.dataset.search = `${element.tag} ${element.keyword} ${element.name} ${element.creator || ""} ${element.bulk ? "" : element.value}`.toLowerCase();
  return row;
}

function treeNode(elements) {
  const list = document.createElement("div");
  list.className = "tag-list";
  for (const element of elements) {
    if (element.items) {
      const details = document.createElement("details");
      details.className = "tag-sequence";
      const summary = document.createElement("summary");
      summary.append(rowNode(element));
      details.append(summary);
      element.items.forEach((item, i) => {
        const box = document.createElement("div");
        box.className = "tag-item";
        box.append(Object.assign(document.createElement("div"), { className: "tag-item-title muted small", textContent: `Item ${i + 1}` }), treeNode(item));
        details.append(box);
      });
      list.append(details);
    } else {
      list.append(rowNode(element));
    }
  }
  return list;
}

/** Show the rows matching `text` (and every sequence that holds one, opened); all rows when empty. */
export function filterTree(root, text) {
  const needle = text.trim().toLowerCase();
  const visit = (list) => {
    let any = false;
    for (const child of list.children) {
      if (child.classList.contains("tag-row")) {
        const hit = !needle || child.dataset.search.includes(needle);
        child.hidden = !hit;
        any ||= hit;
      } else if (child.classList.contains("tag-sequence")) {
        const own = !needle || child.querySelector("summary .tag-row").dataset.search.includes(needle);
        let inside = false;
        for (const item of child.querySelectorAll(":scope > .tag-item")) {
          const found = visit(item.querySelector(":scope > .tag-list"));
          item.hidden = !!needle && !found && !own;
          inside ||= found;
        }
        child.hidden = !own && !inside;
        if (needle && inside) child.open = true;
        any ||= own || inside;
      }
    }
    return any;
  };
  const top = root.querySelector(":scope > .tag-list");
  return top ? visit(top) : false;
}

export class TagBrowser {
  constructor(app) {
    this.app = app;
    this.root = document.createElement("dialog");
    this.root.className = "toolbox-panel tag-browser";
    this.root.setAttribute("aria-labelledby", "tag-browser-title");
    this.root.innerHTML = `
      <header><h2 id="tag-browser-title">DICOM tags</h2>
        <button type="button" class="close" aria-label="Close the tag browser" title="Close (Esc)">✕</button></header>
      <p class="muted small tag-instance"></p>
      <label class="visually-hidden" for="tag-filter">Filter the tags</label>
      <input id="tag-filter" type="search" placeholder="Filter: tag, keyword, name or value" autocomplete="off">
      <div class="tag-head"><span>Tag</span><span>Name</span><span>VR</span><span>Value</span></div>
      <div class="tag-tree" role="region" aria-label="Tags of the instance" tabindex="0"></div>
      <p class="muted small tag-note" role="status"></p>`;
    document.body.append(this.root);
    this.tree = this.root.querySelector(".tag-tree");
    this.filter = this.root.querySelector("#tag-filter");
    this.filter.addEventListener("input", () => filterTree(this.tree, this.filter.value));
    this.root.querySelector(".close").addEventListener("click", () => this.root.close());
  }

  async open() {
    const v = this.app.activeViewport;
    const item = v && v.item;
    this.root.showModal();
    this.filter.value = "";
    this.tree.replaceChildren();
    const note = this.root.querySelector(".tag-note");
    const where = this.root.querySelector(".tag-instance");
    if (!item || !item.sop) {
      where.textContent = "";
      note.textContent = item && item.plane ? "A reformatted plane has no DICOM header of its own: show a series' image." : "No image shown.";
      return;
    }
    where.textContent = `Instance ${item.sop}${item.frame > 1 ? `, frame ${item.frame}` : ""} · ${v.stack.modality} · Im ${v.target + 1}/${v.stack.length}`;
    note.textContent = "Loading…";
    this.root.dataset.state = "loading";
    try {
      const data = await requestJson(`/projects/${encodeURIComponent(this.app.project)}/instances/${encodeURIComponent(item.sop)}/tags`);
      this.tree.replaceChildren(treeNode(data.elements));
      note.textContent = data.omitted ? `${data.omitted} more elements not listed (at most ${data.limits.rows}).` : "";
      this.root.dataset.state = "ready";
    } catch (error) {
      note.textContent = `The tags could not be loaded: ${error.message}`;
      this.root.dataset.state = "error";
    }
  }
}
