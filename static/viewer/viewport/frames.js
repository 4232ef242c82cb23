// The frames of a viewport's stack: their rendered URLs (WADO-RS `rendered`, one per slice and
// window), the request of the slice to show, which arriving frame gets drawn, and the prefetch
// plan handed to the loader. Large images go through tiles.js instead.
import * as loader from "../loader.js";
import { effectiveWindow, windowKey, windowOfUrl } from "./windowing.js";

export const PREFETCH_BUDGET = 240; // frames queued per viewport at most (around the current one)
const PREDECODE_AHEAD = 8;

/**
 * Whether a frame that has just arrived should be drawn: the slice asked for (unless something
 * newer of it is on screen), or a slice on the way from the one shown to the one asked for
 * (scrolling faster than frames arrive shows the frames it passes; its label goes with it).
 * `shown` is {index, seq} or null; `currentUrl` the URL the slice `index` has now. Pure.
 */
export function wanted(shown, target, index, url, seq, currentUrl) {
  if (index === target) return !(shown && shown.index === index && shown.seq > seq);
  if (!shown || url !== currentUrl) return false;
  return (shown.index < index && index < target) || (target < index && index < shown.index);
}

/**
 * The neighbours of slice `target` to prefetch, as [index, priority]: nearest first, the direction
 * of travel (+1 or -1) before the other, at most `budget` of them. Pure.
 */
export function prefetchOrder(target, direction, length, budget) {
  const order = [];
  for (let d = 1; order.length < budget && d < length; d += 1) {
    for (const [next, priority] of [[target + d * direction, d], [target - d * direction, d * 2 + 0.5]]) {
      if (next >= 0 && next < length && order.length < budget) order.push([next, priority]);
    }
  }
  return order;
}

export class Frames {
  constructor(viewport) {
    this.viewport = viewport;
    this.seq = 0;
    this.lastUrl = new Map(); // slice index -> last URL shown for it (fallback while another window loads)
    this.urls = new Map(); // "index|window" -> rendered URL of the current stack
  }

  clear() {
    this.lastUrl.clear();
    this.urls.clear();
  }

  url(index, window = this.viewport.window) {
    const key = `${index}|${windowKey(window)}`;
    let url = this.urls.get(key);
    if (!url) {
      url = this.buildUrl(index, window);
      if (this.urls.size > 4000) this.urls.clear();
      this.urls.set(key, url);
    }
    return url;
  }

  buildUrl(index, window) {
    const { app, stack } = this.viewport;
    const item = stack.items[index];
    const params = {};
    if (window) params.window = windowKey(window);
    params.accept = "image/jpeg";
    if (stack.urlOf) return stack.urlOf(index, params); // a reformatted plane (mpr.js)
    return app.web.frameRendered(stack.study, stack.series, item.sop, item.frame, params);
  }

  /** Ask for slice `index` in the viewport's window; show it now if decoded, else when it arrives. */
  request(index) {
    const vp = this.viewport;
    const url = this.url(index);
    const seq = (this.seq += 1);
    const ready = loader.bitmapNow(url);
    if (ready) { this.show(index, url, ready, vp.window, seq); return; }
    const previous = this.lastUrl.get(index);
    const approximate = previous && previous !== url && loader.bitmapNow(previous);
    if (approximate && !(vp.shown && vp.shown.url === previous)) {
      // The same slice rendered with another window: the right pixels, the window previewed.
      this.show(index, previous, approximate, windowOfUrl(previous), seq - 0.5);
    }
    vp.root.classList.add("loading");
    const windowAsked = vp.window;
    const stack = vp.stack;
    loader.bitmap(url, 0, vp).then((bitmap) => {
      if (vp.stack === stack && wanted(vp.shown, vp.target, index, url, seq, this.url(index))) this.show(index, url, bitmap, windowAsked, seq);
    }).catch((error) => {
      if (!(error instanceof loader.Cancelled)) vp.app.toast(`Image ${index + 1} could not be loaded: ${error.message}`);
    });
  }

  show(index, url, bitmap, window, seq = 0) {
    const vp = this.viewport;
    const { app } = vp;
    const auto = window ? null : loader.autoWindow(url);
    vp.shown = { index, url, bitmap, seq, renderWindow: effectiveWindow(vp.stack.items[index].meta, window, auto), kind: "frame" };
    this.lastUrl.set(index, url);
    vp.root.classList.toggle("loading", !(vp.target === index && url === this.url(index)));
    app.framesShown += 1;
    const log = app.frameLog;
    if (!log.length || log[log.length - 1][1] !== index || log[log.length - 1][2] !== vp.index) log.push([performance.now(), index, vp.index]);
    if (log.length > 5000) log.splice(0, 1000);
    if (!app.firstImageAt) app.firstImage(vp);
    vp.draw();
    vp.announce();
    for (let d = 1; d <= PREDECODE_AHEAD; d += 1) {
      const next = index + d * vp.direction;
      if (next >= 0 && next < vp.stack.length) loader.predecode(this.url(next));
    }
  }

  /** Tell the loader what the viewport wants: the current slice, then its neighbours, nearest
   * first and the direction of travel before the other, within a bounded budget. */
  plan() {
    const vp = this.viewport;
    const { app, stack } = vp;
    if (!stack || vp.isTiled()) { loader.plan(vp, []); return; }
    const list = [[this.url(vp.target), 0]];
    if (app.firstImageAt) { // the first image goes alone
      const n = stack.length;
      const budget = Math.min(n - 1, Math.floor(PREFETCH_BUDGET / app.viewports.filter((v) => v.stack).length));
      for (const [next, priority] of prefetchOrder(vp.target, vp.direction, n, budget)) list.push([this.url(next), priority + vp.index * 0.01]);
    }
    loader.plan(vp, list);
  }
}
