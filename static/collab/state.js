// What the client knows of the session: the session, who I am, participants with presence,
// and the latest cursor and viewport of each other participant. events.js fills it; the panel reads it.
export const state = {
  session: null,
  you: null,
  participants: [],
  cursors: new Map(), // user -> {user, colour, instance, frame, x, y}
  viewports: new Map(), // user -> {user, study, series, instance, frame, ...}
  call: null, // {peers: [{user, video}], reach} of the session's call
  status: "connecting",
  following: sessionStorage.getItem("collab-follow") !== "off",
};
const listeners = new Set();

export function subscribe(listener) { listeners.add(listener); return () => listeners.delete(listener); }
export function changed(what) { for (const listener of listeners) listener(what); }

export function colourOf(user) {
  const participant = state.participants.find((p) => p.user === user);
  return participant ? participant.colour : "#f5a623";
}

export function presenter() {
  return state.participants.find((p) => p.role === "presenter" && p.online && p.user !== (state.you && state.you.user));
}

export function setParticipants(participants) {
  state.participants = participants;
  const online = new Set(participants.filter((p) => p.online).map((p) => p.user));
  for (const user of [...state.cursors.keys()]) if (!online.has(user)) state.cursors.delete(user);
  for (const user of [...state.viewports.keys()]) if (!online.has(user)) state.viewports.delete(user);
}
