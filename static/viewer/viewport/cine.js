// Cine: play the stack at `fps` frames per second (from FrameTime, else 15, editable), never
// skipping past a frame not yet shown. Owns the viewport's play button and fps field.

export class Cine {
  constructor(viewport, button, fpsInput) {
    this.viewport = viewport;
    this.button = button;
    this.fpsInput = fpsInput;
    this.playing = false;
    this.fps = 15;
    this.frame = null;
    button.addEventListener("click", () => this.toggle());
    fpsInput.addEventListener("change", () => { this.fps = Math.min(60, Math.max(1, Number(fpsInput.value) || 15)); });
  }

  /** Take the rate from the stack's FrameTime (`force`: else 15); not while playing unless forced. */
  setRate(meta, { force = false } = {}) {
    if (meta && meta.frameTime) {
      if (!force && this.playing) return;
      this.fps = Math.round(1000 / meta.frameTime);
    } else if (force) this.fps = 15;
    else return;
    this.fpsInput.value = String(this.fps);
  }

  toggle() { if (this.playing) this.stop(); else this.play(); }

  play() {
    const vp = this.viewport;
    if (!vp.stack || vp.stack.length < 2) return;
    this.playing = true;
    this.button.textContent = "❚❚";
    this.button.setAttribute("aria-label", "Pause cine");
    let last = performance.now();
    const tick = (now) => {
      if (!this.playing) return;
      const next = (vp.target + 1) % vp.stack.length;
      const ready = vp.shown && vp.shown.index === vp.target; // never skip past a frame not yet shown
      if (ready && now - last >= 1000 / this.fps) {
        last = now;
        vp.direction = 1;
        vp.setIndex(next);
      }
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  stop() {
    this.playing = false;
    cancelAnimationFrame(this.frame);
    this.button.textContent = "▶";
    this.button.setAttribute("aria-label", "Play cine");
  }
}
