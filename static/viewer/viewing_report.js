// What this reader looked at, for the audit trail ("who saw this study, and which images"): the
// viewer's viewport events are folded into one record per series (first and last slice seen, seconds
// on screen) and sent in batches to /api/projects/<slug>/audit/views/ (docs/governance.md).

import { csrfToken } from "./api.js";
import { on } from "./bus.js";

const FLUSH_MS = 30_000;
const MAX_PER_REPORT = 100; // the server's MAX_VIEWS_PER_REPORT (audit/api.py)
const MAX_PENDING = 1000; // what waits while the server says "too many" (429); older entries go first

/** Slice numbers (1-based, frames counted through) of every image in the page's outlines. */
function sliceNumbers(outlines) {
  const numbers = new Map();
  for (const outline of outlines) {
    for (const series of outline.series) {
      let n = 0;
      for (const [sop, frames] of series.instances) {
        for (let frame = 1; frame <= (frames || 1); frame += 1) numbers.set(`${sop}|${frame}`, (n += 1));
      }
    }
  }
  return numbers;
}

export function startViewingReport(boot) {
  const url = `/api/projects/${encodeURIComponent(boot.project)}/audit/views/`;
  const slices = sliceNumbers([boot.outline, ...(boot.related || [])]);
  const pending = [{ study: boot.outline.study, opened: true }];
  const seen = new Map(); // series uid -> {study, series, first, last, seconds, since}
  let focus = null; // the series shown last

  function stopClock(entry, now) {
    if (entry && entry.since) {
      entry.seconds += (now - entry.since) / 1000;
      entry.since = 0;
    }
  }

  on("viewport", (state) => {
    if (!state.series || !(state.instance || state.mpr) || state.remote) return; // (MPR: the series, without slices)
    const now = performance.now();
    if (focus && focus !== state.series) stopClock(seen.get(focus), now);
    let entry = seen.get(state.series);
    if (!entry) {
      entry = { study: state.study, series: state.series, first: null, last: null, seconds: 0, since: 0 };
      seen.set(state.series, entry);
    }
    if (!entry.since) entry.since = now;
    const slice = slices.get(`${state.instance}|${state.frame || 1}`);
    if (slice) {
      entry.first = entry.first === null ? slice : Math.min(entry.first, slice);
      entry.last = entry.last === null ? slice : Math.max(entry.last, slice);
    }
    focus = state.series;
  });

  function flush(keepalive) {
    const now = performance.now();
    for (const entry of seen.values()) {
      stopClock(entry, now);
      const view = { study: entry.study, series: entry.series, seconds: Math.round(entry.seconds * 10) / 10 };
      if (entry.first !== null) Object.assign(view, { first_slice: entry.first, last_slice: entry.last });
      pending.push(view);
    }
    seen.clear();
    focus = null;
    if (!pending.length) return;
    const views = pending.splice(0, MAX_PER_REPORT);
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      keepalive,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ views }),
    }).then((response) => {
      if (response.status === 429) { // over this user's budget: send them with the next flush
        pending.unshift(...views);
        pending.splice(0, Math.max(0, pending.length - MAX_PENDING));
      }
    }).catch(() => {}); // the audit trail must never break reading
  }

  setInterval(() => flush(false), FLUSH_MS);
  addEventListener("pagehide", () => flush(true));
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") flush(true); });
}
