// Double-click a mark to edit its text (the page's label editor). On whatever the tool.
import * as annotations from "../../annotations.js";
import { listeners } from "./gesture.js";
import { idOf } from "./select.js";

export function labelMode(vp) {
  const on = listeners();
  const dblclick = (event) => {
    const group = event.target.closest("[data-id]");
    if (group) vp.app.editLabel(annotations.get(idOf(group.dataset.id)), event.clientX, event.clientY);
  };
  return {
    name: "label",
    enter() { on.add(vp.overlay, "dblclick", dblclick); },
    exit() { on.removeAll(); },
  };
}
