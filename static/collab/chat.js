// The session's chat: messages (author, time, text) as the server lets this reader read them, and
// "look here": a message may carry the sender's view (study, series, slice, frame, window, point),
// which opens that view for whoever clicks it. Text is set with textContent, never as HTML.
import { newRef } from "./connection.js";
import { state, colourOf } from "./state.js";

const KEEP = 200; // messages kept on the page (the export has them all)
const MAX_TEXT = 2000; // collab.protocol.MAX_CHAT

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

function describe(view) {
  const index = state.session ? state.session.cases.findIndex((c) => c.study === view.study) : -1;
  const parts = [index >= 0 ? `case ${index + 1}` : "a case"];
  const app = window.crossread && window.crossread.app;
  const stack = app && view.series && view.instance ? app.stackFor(view.series) : null;
  const slice = stack ? stack.indexOf(view.instance, view.frame || 1) : -1;
  if (slice >= 0) parts.push(`Im ${slice + 1}`);
  else if (view.frame && view.frame > 1) parts.push(`frame ${view.frame}`);
  if (view.point) parts.push(`at ${Math.round(view.point[0])}, ${Math.round(view.point[1])}`);
  return `Look here (${parts.join(", ")})`;
}

export function mountChat(root, { connection, currentView, openView }) {
  const messages = new Map(); // id -> message
  const list = el("ol", { class: "collab-chat-list", "aria-label": "Chat", "aria-live": "polite" });
  const input = el("input", { type: "text", id: "collab-chat-text", maxlength: String(MAX_TEXT), autocomplete: "off",
    placeholder: "Message", "aria-label": "Message" });
  const look = el("input", { type: "checkbox", id: "collab-chat-look" });
  const status = el("p", { class: "hint collab-chat-status", role: "status" });
  const form = el("form", { class: "collab-chat-form", onsubmit: (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const frame = { type: "chat.send", ref: newRef(), text };
    if (look.checked) {
      const view = currentView();
      if (view) frame.view = view;
    }
    status.textContent = "";
    input.value = "";
    connection.request(frame).then(
      (reply) => add(reply.message),
      (error) => { status.textContent = error.message || "Not sent."; input.value = text; });
  } }, input, el("label", { class: "collab-chat-look", title: "Attach what you are looking at" }, look, " look here"),
  el("button", { type: "submit", class: "button" }, "Send"));
  root.classList.add("collab-chat");
  root.replaceChildren(el("h3", {}, "Chat"), list, form, status);

  function item(message) {
    const at = new Date(message.at);
    return el("li", { "data-id": String(message.id), "data-author": message.author },
      el("span", { class: "collab-dot", style: `background:${colourOf(message.author)}` }),
      el("span", { class: "collab-chat-author" }, message.name),
      el("time", { datetime: message.at, class: "collab-chat-time" }, at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
      el("p", { class: "collab-chat-text" }, message.text),
      message.view ? el("button", { type: "button", class: "collab-look link", onclick: () => openView(message.view) }, describe(message.view)) : null);
  }

  function draw() {
    const sorted = [...messages.values()].sort((a, b) => a.id - b.id).slice(-KEEP);
    list.replaceChildren(...sorted.map(item));
    list.scrollTop = list.scrollHeight;
  }

  function add(message) {
    if (!message || messages.has(message.id)) return;
    messages.set(message.id, message);
    if (messages.size > KEEP) messages.delete(Math.min(...messages.keys()));
    draw();
  }

  return {
    snapshot(list_) { messages.clear(); for (const m of list_) messages.set(m.id, m); draw(); },
    add,
  };
}
