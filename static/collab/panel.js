// The session panel: participants (colour, role, online), follow-the-presenter, case navigation.
// Drawing only; the state comes from state.js.
import { state, subscribe, changed } from "./state.js";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value != null) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

export function mountPanel(root, { currentStudy = null, showCases = true } = {}) {
  const render = () => {
    const s = state.session;
    if (!s) { root.replaceChildren(el("p", { class: "collab-status" }, "Connecting to the session…")); return; }
    const me = state.you ? state.you.user : "";
    const participants = el("ul", { class: "collab-participants", "aria-label": "Participants" },
      ...state.participants.map((p) => el("li", { "data-user": p.user, class: p.online ? "online" : "offline" },
        el("span", { class: "collab-dot", style: `background:${p.colour}`, "aria-hidden": "true" }),
        el("span", { class: "collab-name" }, p.name + (p.user === me ? " (you)" : "")),
        el("span", { class: "collab-role" }, p.role),
        el("span", { class: "collab-status" }, p.online ? "online" : "offline"),
        where(p.user))));
    const cases = s.cases.map((c, i) => el("li", { class: c.study === currentStudy ? "current" : "" },
      el("a", { href: c.viewer, "aria-current": c.study === currentStudy ? "page" : false }, c.description || c.date || c.study)));
    const index = s.cases.findIndex((c) => c.study === currentStudy);
    const nav = el("p", { class: "collab-case-nav" },
      index > 0 ? el("a", { href: s.cases[index - 1].viewer, class: "button" }, "◀ Previous case") : null,
      index >= 0 && index < s.cases.length - 1 ? el("a", { href: s.cases[index + 1].viewer, class: "button" }, "Next case ▶") : null);
    root.replaceChildren(
      el("h2", {}, s.title),
      el("p", { class: "collab-meta" },
        el("span", { class: `collab-badge ${s.mode}` }, s.mode), " ",
        el("span", { class: `collab-badge ${s.status}` }, s.status), " ",
        el("span", { class: `collab-connection ${state.status}`, role: "status" }, state.status)),
      participants,
      state.you && state.you.role !== "presenter" ? el("label", { class: "collab-follow" },
        el("input", { type: "checkbox", id: "collab-follow", checked: state.following, onchange: (event) => {
          state.following = event.target.checked;
          sessionStorage.setItem("collab-follow", state.following ? "on" : "off");
          changed("follow");
        } }), " Follow the presenter") : null,
      showCases ? el("h3", {}, "Cases") : null,
      showCases ? el("ol", { class: "collab-cases" }, ...cases) : null,
      showCases ? nav : null,
      el("p", {}, el("a", { href: s.lobby }, "Session lobby")));
  };
  const where = (user) => {
    const v = state.viewports.get(user);
    if (!v || !state.session) return null;
    const index = state.session.cases.findIndex((c) => c.study === v.study);
    return el("span", { class: "collab-where" }, `${index >= 0 ? `case ${index + 1}` : ""}${v.frame ? ` · frame ${v.frame}` : ""}`);
  };
  subscribe((what) => { if (what !== "cursors") render(); });
  render();
}
