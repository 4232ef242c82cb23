// The call's part of the session panel: "Join audio" (camera optional, off by default), mute, leave,
// how far calls reach here, and a small tile per participant in the call with a speaking indicator.
// Drawing only: the call's state is call.js. Media elements are kept across redraws (a redraw must
// not interrupt what is playing).
import { state } from "./state.js";

const REACH = {
  local: "No STUN or TURN server is configured: calls work on a local network only.",
  stun: "No TURN relay is configured: calls across strict firewalls may not connect.",
};

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

export function mountCallPanel(root, call) {
  root.classList.add("collab-call");
  const tiles = new Map(); // user -> {tile, video}
  const controls = el("div", { class: "collab-call-controls" });
  const note = el("p", { class: "hint collab-call-note", role: "status" });
  const grid = el("div", { class: "collab-call-tiles", "aria-label": "In the call" });
  root.replaceChildren(el("h3", {}, "Call"), controls, note, grid);
  let problem = "";
  const camera = el("input", { type: "checkbox", id: "collab-camera" }); // kept across redraws (off by default)

  const nameOf = (user) => (state.participants.find((p) => p.user === user) || { name: user }).name;
  const colourOf = (user) => (state.participants.find((p) => p.user === user) || { colour: "#888" }).colour;

  function tileOf(user) {
    let entry = tiles.get(user);
    if (!entry) {
      const video = el("video", { autoplay: true, playsinline: true });
      if (user === call.me) video.muted = true; // never hear oneself
      const tile = el("figure", { class: "collab-tile", "data-user": user }, video, el("span", { class: "collab-tile-initial", "aria-hidden": "true" }),
        el("figcaption", {}, el("span", { class: "collab-dot" }), el("span", { class: "collab-tile-name" })));
      entry = { tile, video };
      tiles.set(user, entry);
    }
    const stream = user === call.me ? call.stream : (call.peers.get(user) || {}).stream;
    if (stream && entry.video.srcObject !== stream) entry.video.srcObject = stream;
    const hasVideo = !!stream && stream.getVideoTracks().some((t) => t.readyState === "live");
    entry.tile.classList.toggle("has-video", hasVideo);
    entry.tile.querySelector(".collab-dot").style.background = colourOf(user);
    entry.tile.querySelector(".collab-tile-initial").textContent = (nameOf(user)[0] || "?").toUpperCase();
    entry.tile.querySelector(".collab-tile-initial").style.color = colourOf(user);
    entry.tile.querySelector(".collab-tile-name").textContent = nameOf(user) + (user === call.me ? " (you)" : "");
    return entry.tile;
  }

  function drawTiles() {
    const users = call.active ? [call.me, ...call.roster.map((p) => p.user).filter((u) => u !== call.me)] : [];
    for (const user of [...tiles.keys()]) if (!users.includes(user)) { tiles.get(user).video.srcObject = null; tiles.delete(user); }
    grid.replaceChildren(...users.map(tileOf));
    drawLevels();
  }

  function drawLevels() {
    for (const [user, { tile }] of tiles) {
      tile.classList.toggle("speaking", call.speaking(user));
      tile.classList.toggle("muted", user === call.me && call.muted);
    }
  }

  function drawControls() {
    const s = state.session;
    const others = call.roster.filter((p) => p.user !== call.me).length;
    if (!s) { controls.replaceChildren(); return; }
    if (!s.voice) {
      controls.replaceChildren(el("p", { class: "hint" }, "Voice is off in this blinded session."));
    } else if (s.status !== "active") {
      controls.replaceChildren(el("p", { class: "hint" }, "The call is open while the session is active."));
    } else if (!call.active) {
      controls.replaceChildren(
        el("button", { type: "button", class: "button", id: "collab-join-audio", disabled: call.joining, onclick: () => {
          problem = "";
          call.join({ video: camera.checked }).catch((error) => { problem = `Could not join: ${error.message || error.name || error}`; draw(); });
        } }, call.joining ? "Joining…" : "Join audio"),
        el("label", { class: "collab-camera" }, camera, " Camera"),
        ...(others ? [el("span", { class: "hint" }, ` ${others} in the call`)] : []));  // (replaceChildren writes null as "null")
    } else {
      controls.replaceChildren(
        el("button", { type: "button", class: "button", id: "collab-mute", "aria-pressed": call.muted ? "true" : "false",
          onclick: () => call.setMuted(!call.muted) }, call.muted ? "Unmute" : "Mute"),
        el("button", { type: "button", class: "button", id: "collab-leave-call", onclick: () => call.leave() }, "Leave call"));
    }
    const reach = call.reach || (state.call && state.call.reach);
    note.textContent = problem || (s.voice ? REACH[reach] || "" : "");
  }

  function draw() { drawControls(); drawTiles(); }
  call.onChange = (what) => (what === "levels" ? drawLevels() : draw());
  draw();
  return { draw };
}
