// One switch on the server's message types (docs/protocol.md), routing each to the state and to
// the hooks of the page (the viewer bridge or the lobby).
import { state, changed, colourOf, setParticipants } from "./state.js";

export function dispatch(frame, hooks = {}) {
  switch (frame.type) {
    case "session.state":
      state.session = frame.session;
      state.you = frame.you;
      setParticipants(frame.participants);
      hooks.snapshot && hooks.snapshot(frame.annotations);
      changed("state");
      break;
    case "session.updated":
      state.session = frame.session;
      changed("session");
      break;
    case "presence":
      setParticipants(frame.participants);
      changed("presence");
      hooks.cursors && hooks.cursors();
      break;
    case "cursors":
      for (const cursor of frame.cursors) state.cursors.set(cursor.user, { ...cursor, colour: colourOf(cursor.user) });
      hooks.cursors && hooks.cursors();
      break;
    case "viewports":
      for (const viewport of frame.viewports) {
        state.viewports.set(viewport.user, viewport);
        hooks.viewport && hooks.viewport(viewport);
      }
      changed("viewports");
      break;
    case "drafts":
      for (const draft of frame.drafts) hooks.draft && hooks.draft({ ...draft, colour: colourOf(draft.user) });
      break;
    case "annotation.created":
    case "annotation.updated":
    case "annotation.deleted":
      hooks.annotation && hooks.annotation(frame);
      break;
    case "error":
      if (frame.ref == null && frame.code !== "rate_limited") hooks.error && hooks.error(frame);
      break;
    default:
      break; // a newer server's message: ignored
  }
}
