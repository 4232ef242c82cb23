// The call's signalling, behind one interface so that a mesh can be swapped for an SFU
// (docs/collaboration.md, "Beyond six"): join() → {iceServers, reach, peers}, leave(),
// send(to, kind, data) for "offer" | "answer" | "ice" | "leave", and onSignal(handler) for what
// others sent to us. This one carries WebRTC offers, answers and ICE candidates over the session
// websocket (docs/protocol.md, level 3): each is addressed to one participant and the server
// delivers it to them alone, with `from` set by the server.
import { newRef } from "./connection.js";

export class MeshSignalling {
  constructor(connection) {
    this.connection = connection;
    this.handlers = new Set();
  }

  async join({ video = false } = {}) {
    const reply = await this.connection.request({ type: "call.join", ref: newRef(), video: !!video });
    return { iceServers: reply.ice_servers || [], reach: reply.reach, peers: reply.peers || [] };
  }

  leave() {
    return this.connection.request({ type: "call.leave", ref: newRef() }).catch(() => undefined);
  }

  send(to, kind, data = {}) { this.connection.send({ type: `rtc.${kind}`, to, ...data }); }

  /** Called by the session's event switch (events.js) with each rtc.* frame. */
  receive(frame) { for (const handler of this.handlers) handler(frame); }

  onSignal(handler) { this.handlers.add(handler); return () => this.handlers.delete(handler); }
}
