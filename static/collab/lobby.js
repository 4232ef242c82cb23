// The session lobby: who is online (live, over the session websocket) and the organizer's controls
// (start, close, seat, invitation links) over the REST API.
import { Connection } from "./connection.js";
import { dispatch } from "./events.js";
import { state, subscribe } from "./state.js";

const root = document.getElementById("collab-lobby");
const sessionId = root.dataset.session;
const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
const problem = root.querySelector(".collab-error");

function renderParticipants() {
  const list = document.getElementById("collab-participants");
  list.replaceChildren(...state.participants.map((p) => {
    const li = document.createElement("li");
    li.dataset.user = p.user;
    li.className = p.online ? "online" : "offline";
    li.innerHTML = '<span class="collab-dot"></span> <span class="collab-name"></span> <span class="collab-role"></span> <span class="collab-status"></span>';
    li.querySelector(".collab-dot").style.background = p.colour;
    li.querySelector(".collab-name").textContent = p.name;
    li.querySelector(".collab-role").textContent = p.role;
    li.querySelector(".collab-status").textContent = p.online ? "online" : "offline";
    return li;
  }));
}

subscribe((what) => {
  if (what === "state" || what === "presence") renderParticipants();
  if (state.session) {
    root.querySelector("[data-field=status]").textContent = state.session.status;
    root.querySelector("[data-field=mode]").textContent = state.session.mode;
  }
});
new Connection(sessionId, { onFrame: (frame) => dispatch(frame) });

async function api(method, path, body) {
  const response = await fetch(`/api/sessions/${sessionId}/${path}`, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) { problem.textContent = data.detail; problem.hidden = false; throw new Error(data.detail); }
  problem.hidden = true;
  return data;
}

function renderInvitations(list) {
  const ul = document.getElementById("collab-invitations");
  if (!ul) return;
  ul.replaceChildren(...list.filter((i) => !i.revoked).map((invitation) => {
    const li = document.createElement("li");
    const link = new URL(invitation.url, location.href).href;
    li.innerHTML = '<code></code> <span class="collab-role"></span> <button type="button">Revoke</button>';
    li.querySelector("code").textContent = link;
    li.querySelector(".collab-role").textContent = `${invitation.role}, until ${new Date(invitation.expires_at).toLocaleString()}`;
    li.querySelector("button").addEventListener("click", async () => {
      await api("DELETE", `invitations/${invitation.id}/`);
      loadInvitations();
    });
    return li;
  }));
}
async function loadInvitations() { renderInvitations((await api("GET", "invitations/")).invitations); }

if (root.dataset.manages === "true") {
  for (const button of root.querySelectorAll("[data-action]")) {
    button.addEventListener("click", async () => {
      if (button.dataset.action === "start") await api("PATCH", "", { status: "active" });
      if (button.dataset.action === "close") await api("POST", "close/");
      location.reload();
    });
  }
  const voice = document.getElementById("collab-voice"); // a blinded session: may its participants talk?
  if (voice) voice.addEventListener("change", () => api("PATCH", "", { voice_when_blinded: voice.checked }).catch(() => { voice.checked = !voice.checked; }));
  const seat = document.getElementById("collab-seat");
  if (seat) seat.addEventListener("submit", async (event) => {
    event.preventDefault();
    await api("POST", "participants/", { username: seat.username.value, role: seat.role.value });
  });
  const invite = document.getElementById("collab-invite");
  if (invite) {
    invite.addEventListener("submit", async (event) => {
      event.preventDefault();
      await api("POST", "invitations/", { role: invite.role.value, hours: Number(invite.hours.value) });
      loadInvitations();
    });
    loadInvitations();
  }
}
