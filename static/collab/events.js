// One switch on the server's message types (docs/protocol.md), routing each to the state and to
// the hooks of the page (the viewer bridge or the lobby).
import { state, changed, colourOf, setParticipants } from "./state.js";

// A snapshot's annotations may continue in "annotations.page" frames (protocol level 2): they are
// collected, and applied at once when the last ("more": false) has come.
let snapshotAnnotations = null;

export function dispatch(frame, hooks = {}) {
  switch (frame.type) {
    case "session.state":
      state.session = frame.session;
      state.you = frame.you;
      setParticipants(frame.participants);
      state.call = frame.call || null;
      hooks.chatSnapshot && hooks.chatSnapshot(frame.chat || []);
      hooks.call && hooks.call(frame.call ? frame.call.peers : []);
      snapshotAnnotations = [...frame.annotations];
      if (!frame.more) endSnapshot(hooks);
      changed("state");
      break;
    case "annotations.page":
      if (snapshotAnnotations === null) break;
      snapshotAnnotations.push(...frame.annotations);
      if (!frame.more) endSnapshot(hooks);
      break;
    case "session.updated": {
      // A broadcast change carries no case labels (each reader may be told different ones): keep ours.
      const told = new Map((state.session ? state.session.cases : []).map((c) => [c.study, c]));
      for (const c of frame.session.cases) {
        const before = told.get(c.study);
        if (before && !c.description && !c.date) Object.assign(c, { description: before.description, date: before.date });
      }
      state.session = frame.session;
      changed("session");
      break;
    }
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
    // level 3: the call's roster, its signalling (addressed to us alone) and the chat
    case "call":
      if (state.call) state.call.peers = frame.peers;
      hooks.call && hooks.call(frame.peers);
      break;
    case "rtc.offer":
    case "rtc.answer":
    case "rtc.ice":
    case "rtc.leave":
      hooks.signal && hooks.signal(frame);
      break;
    case "chat.message":
      hooks.chat && hooks.chat(frame.message);
      break;
    case "error":
      if (frame.ref == null && frame.code !== "rate_limited") hooks.error && hooks.error(frame);
      break;
    default:
      break; // a newer server's message: ignored
  }
}

function endSnapshot(hooks) {
  const list = snapshotAnnotations;
  snapshotAnnotations = null;
  hooks.snapshot && hooks.snapshot(list);
}
