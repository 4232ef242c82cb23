// The session websocket: connects, reconnects with backoff, answers writes by their ref.
// Every server frame goes to onFrame (events.js routes it); a fresh "session.state" arrives after
// each (re)connect. Writes (annotation.*) are kept until answered and sent again after a reconnect:
// a create's ref makes the retry idempotent.
export const PROTOCOL = 3; // docs/protocol.md: 2 pages the snapshot's annotations; 3 the call and the chat
const FATAL = new Set([4401, 4403, 4404]); // not logged in, no seat, no such session: do not retry

export class Connection {
  constructor(sessionId, { onFrame, onStatus }) {
    this.url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/sessions/${sessionId}/`;
    this.onFrame = onFrame;
    this.onStatus = onStatus || (() => {});
    this.pending = new Map(); // ref -> {frame, resolve, reject}
    this.attempt = 0;
    this.closed = false;
    this.open();
  }

  open() {
    this.onStatus(this.attempt ? "reconnecting" : "connecting");
    const ws = (this.ws = new WebSocket(this.url));
    ws.onopen = () => { this.attempt = 0; };
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (this.closed) return;
      if (FATAL.has(event.code)) { this.onStatus("refused", event.code); return; }
      const delay = Math.min(30000, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this.onStatus("offline");
      setTimeout(() => this.open(), delay);
    };
  }

  receive(frame) {
    if (frame.type === "session.state") {
      if (frame.protocol !== PROTOCOL) console.warn(`collab: server protocol ${frame.protocol}, client ${PROTOCOL}`);
      this.onStatus("online");
      this.onFrame(frame);
      for (const { frame: write } of this.pending.values()) this.sendRaw(write); // unanswered writes, again
      return;
    }
    const waiting = frame.ref != null && this.pending.get(frame.ref);
    if (waiting) {
      this.pending.delete(frame.ref);
      if (frame.type === "error") waiting.reject(frame);
      else waiting.resolve(frame);
    }
    this.onFrame(frame);
  }

  sendRaw(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  /** Ephemeral: sent if connected, dropped otherwise. */
  send(frame) { this.sendRaw(frame); }

  /** A write: resolves with the server's answer to its ref, rejects with the error frame. */
  request(frame) {
    return new Promise((resolve, reject) => {
      this.pending.set(frame.ref, { frame, resolve, reject });
      this.sendRaw(frame);
    });
  }

  close() { this.closed = true; if (this.ws) this.ws.close(1000); }
}

export function newRef() {
  return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).slice(0, 64);
}
