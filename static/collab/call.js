// The session's call: a mesh of WebRTC peer connections, one per other participant in the call.
// Media flows browser to browser (or through a TURN relay); the server only carries the signalling
// (signalling.js). Whoever joins offers to everyone already in the call, who answer: no two offers
// cross. Drawing is call_panel.js; this module keeps the state and tells it what changed.

const LEVEL_EVERY_MS = 250;
const SPEAKING = 0.02; // an audioLevel (0..1) above this counts as speaking

export class Call {
  constructor(signalling, { me, onChange = () => {} }) {
    this.signalling = signalling;
    this.me = me;
    this.onChange = onChange;
    this.active = false;
    this.joining = false;
    this.muted = false;
    this.video = false;
    this.stream = null;
    this.iceServers = [];
    this.reach = null;
    this.roster = []; // [{user, video}] as the server last said
    this.peers = new Map(); // user -> {pc, stream, queued: [], level}
    this.level = 0; // the microphone's level, as sent
    this.timer = null;
    signalling.onSignal((frame) => this.onSignal(frame).catch((error) => console.warn("call:", frame.type, error)));
  }

  changed(what) { this.onChange(what); }

  /** Microphone (and camera when `video`) after the browser's permission prompt, then the call. */
  async join({ video = false } = {}) {
    if (this.active || this.joining) return;
    this.joining = true;
    this.changed("joining");
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true },
        video: video ? { width: { ideal: 320 }, height: { ideal: 240 }, frameRate: { ideal: 15 } } : false,
      });
      this.video = video;
      const { iceServers, reach, peers } = await this.signalling.join({ video });
      this.iceServers = iceServers;
      this.reach = reach;
      this.active = true;
      this.listed = false;
      this.muted = false;
      for (const peer of peers) await this.offerTo(peer.user);
      this.timer = setInterval(() => this.measure(), LEVEL_EVERY_MS);
    } catch (error) {
      this.stopMedia();
      throw error;
    } finally {
      this.joining = false;
      this.changed("joined");
    }
  }

  async leave({ tell = true } = {}) {
    if (!this.active) return;
    this.active = false;
    for (const user of [...this.peers.keys()]) {
      if (tell) this.signalling.send(user, "leave");
      this.drop(user);
    }
    this.stopMedia();
    clearInterval(this.timer);
    this.timer = null;
    if (tell) await this.signalling.leave();
    this.changed("left");
  }

  /** A muted microphone keeps its track, disabled: the others receive silence. */
  setMuted(muted) {
    this.muted = !!muted;
    if (this.stream) for (const track of this.stream.getAudioTracks()) track.enabled = !this.muted;
    this.changed("muted");
  }

  /** The server's roster: peers who left the call are hung up. */
  setRoster(peers) {
    this.roster = peers || [];
    const inCall = new Set(this.roster.map((p) => p.user));
    // A roster without us after one with us: the call was ended for us (an older roster, sent before
    // our join, may still arrive after it: that one is not a reason to leave).
    if (this.active && inCall.has(this.me)) this.listed = true;
    else if (this.active && this.listed) { this.leave({ tell: false }); return; }
    for (const user of [...this.peers.keys()]) if (!inCall.has(user)) this.drop(user);
    this.changed("roster");
  }

  stopMedia() {
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
  }

  peer(user) {
    let peer = this.peers.get(user);
    if (peer) return peer;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    peer = { pc, stream: new MediaStream(), queued: [], level: 0, bytes: 0 };
    this.peers.set(user, peer);
    for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    pc.onicecandidate = (event) => this.signalling.send(user, "ice", { candidate: event.candidate ? event.candidate.toJSON() : null });
    pc.ontrack = (event) => { peer.stream.addTrack(event.track); this.changed("media"); };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") this.drop(user);
      this.changed("state");
    };
    this.changed("peers");
    return peer;
  }

  drop(user) {
    const peer = this.peers.get(user);
    if (!peer) return;
    this.peers.delete(user);
    peer.pc.close();
    this.changed("peers");
  }

  async offerTo(user) {
    const { pc } = this.peer(user);
    // The offer holds an audio and a video line whatever we send, so the other's camera reaches us.
    for (const kind of ["audio", "video"]) {
      if (!pc.getTransceivers().some((t) => t.receiver.track.kind === kind)) pc.addTransceiver(kind, { direction: "recvonly" });
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.signalling.send(user, "offer", { sdp: pc.localDescription.sdp });
  }

  async onSignal(frame) {
    if (!this.active) return;
    const user = frame.from;
    switch (frame.type) {
      case "rtc.offer": {
        if (this.peers.has(user)) this.drop(user); // they joined again: a fresh connection
        const peer = this.peer(user);
        await peer.pc.setRemoteDescription({ type: "offer", sdp: frame.sdp });
        await this.flush(peer);
        const answer = await peer.pc.createAnswer();
        await peer.pc.setLocalDescription(answer);
        this.signalling.send(user, "answer", { sdp: peer.pc.localDescription.sdp });
        break;
      }
      case "rtc.answer": {
        const peer = this.peers.get(user);
        if (!peer) return;
        await peer.pc.setRemoteDescription({ type: "answer", sdp: frame.sdp });
        await this.flush(peer);
        break;
      }
      case "rtc.ice": {
        const peer = this.peers.get(user);
        if (!peer || !frame.candidate) return; // (null: the end of their candidates)
        if (!peer.pc.remoteDescription) peer.queued.push(frame.candidate);
        else await peer.pc.addIceCandidate(frame.candidate);
        break;
      }
      case "rtc.leave":
        this.drop(user);
        break;
      default:
        break;
    }
  }

  async flush(peer) {
    const queued = peer.queued.splice(0);
    for (const candidate of queued) await peer.pc.addIceCandidate(candidate);
  }

  /** Levels for the speaking indicators, from each connection's statistics (no audio graph needed). */
  async measure() {
    let mine = 0;
    for (const peer of this.peers.values()) {
      let level = 0;
      const stats = await peer.pc.getStats();
      stats.forEach((report) => {
        if (report.type === "inbound-rtp" && report.kind === "audio") {
          level = report.audioLevel || 0;
          peer.bytes = report.bytesReceived || 0;
        }
        if (report.type === "media-source" && report.kind === "audio") mine = Math.max(mine, report.audioLevel || 0);
      });
      peer.level = level;
    }
    this.level = this.muted ? 0 : mine;
    this.changed("levels");
  }

  speaking(user) {
    if (user === this.me) return this.active && this.level > SPEAKING;
    const peer = this.peers.get(user);
    return !!peer && peer.level > SPEAKING;
  }
}
