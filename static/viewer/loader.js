// Image loading for the viewports: one priority queue of HTTP requests with a bounded number in
// flight, a byte-bounded cache of the encoded images (rendered URLs are immutable), and a small
// cache of decoded bitmaps for the frames around the ones on screen.
//
// Each viewport states its plan: the URLs it wants with a priority (0 = the frame to show now,
// then its neighbours, nearest first). A new plan withdraws the owner's queued requests that are
// no longer wanted (their promises reject with a Cancelled error); requests in flight finish.

const MAX_IN_FLIGHT = 6;              // the browser's connections per host (HTTP/1.1)
const ENCODED_BUDGET = 256 * 2 ** 20; // bytes of JPEG kept
const DECODED_BUDGET = 64;            // bitmaps kept

export class Cancelled extends Error {}

const encoded = new Map(); // url -> Blob (LRU order: oldest first)
let encodedBytes = 0;
const decoded = new Map(); // url -> ImageBitmap (LRU)
const decoding = new Map(); // url -> Promise<ImageBitmap>
const inflight = new Map(); // url -> Promise<Blob>
const autoWindows = new Map(); // url -> {center, width}: the window the server chose (X-Crossread-Window)
const queue = new Map(); // url -> {url, priority, owner, promise, resolve, reject}

export const stats = { requests: 0, bytes: 0, cancelled: 0 };

function touch(map, key) {
  const found = map.get(key);
  if (found !== undefined) { map.delete(key); map.set(key, found); }
  return found;
}

function keepEncoded(url, blob) {
  encoded.set(url, blob);
  encodedBytes += blob.size;
  for (const [key, old] of encoded) {
    if (encodedBytes <= ENCODED_BUDGET) break;
    encoded.delete(key);
    autoWindows.delete(key);
    encodedBytes -= old.size;
  }
}

function keepDecoded(url, bitmap) {
  decoded.set(url, bitmap);
  for (const key of decoded.keys()) {
    if (decoded.size <= DECODED_BUDGET) break;
    decoded.delete(key); // not closed: a viewport may still be showing it
  }
}

async function download(url) {
  stats.requests += 1;
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
    throw new Error(detail);
  }
  const blob = await response.blob();
  const chosen = response.headers.get("X-Crossread-Window"); // no window asked for, none in the file
  if (chosen) {
    const [center, width] = chosen.split(",").map(Number);
    if (Number.isFinite(center) && width > 0) autoWindows.set(url, { center, width });
  }
  stats.bytes += blob.size;
  keepEncoded(url, blob);
  return blob;
}

function pump() {
  while (inflight.size < MAX_IN_FLIGHT && queue.size) {
    let best = null;
    for (const job of queue.values()) if (!best || job.priority < best.priority) best = job;
    // Prefetches leave one connection free, so the frame to show now never waits behind them.
    if (best.priority > 0 && inflight.size >= MAX_IN_FLIGHT - 1) break;
    queue.delete(best.url);
    const running = download(best.url).finally(() => { inflight.delete(best.url); pump(); });
    inflight.set(best.url, running);
    running.then(best.resolve, best.reject);
  }
}

/** The encoded image of `url`: cached, in flight, or queued with `priority` for `owner`. */
export function load(url, priority = 0, owner = null) {
  const cached = touch(encoded, url);
  if (cached) return Promise.resolve(cached);
  if (inflight.has(url)) return inflight.get(url);
  let job = queue.get(url);
  if (job) {
    job.priority = Math.min(job.priority, priority);
    job.owner = owner;
  } else {
    job = { url, priority, owner };
    job.promise = new Promise((resolve, reject) => { job.resolve = resolve; job.reject = reject; });
    job.promise.catch(() => {}); // a withdrawn prefetch nobody waits for is not an error
    queue.set(url, job);
  }
  pump();
  return job.promise;
}

/** Replace `owner`'s queued requests by `wanted` ([url, priority] pairs). */
export function plan(owner, wanted) {
  const keep = new Map(wanted);
  for (const [url, job] of queue) {
    if (job.owner === owner && !keep.has(url)) {
      queue.delete(url);
      stats.cancelled += 1;
      job.reject(new Cancelled(url));
    }
  }
  for (const [url, priority] of keep) {
    if (encoded.has(url) || inflight.has(url)) continue;
    const job = queue.get(url);
    if (job) { job.priority = priority; job.owner = owner; } else load(url, priority, owner);
  }
  pump();
}

/** Requests queued or running (the benchmark waits for 0: prefetch has warmed). */
export function pending() { return queue.size + inflight.size; }

export function isEncoded(url) { return encoded.has(url); }

/** The window the server rendered `url` with when it chose one itself (the frame's range of values:
 * no window asked for and none in the file), else null. */
export function autoWindow(url) { return autoWindows.get(url) || null; }

/** A decoded bitmap if one is ready (synchronous, for drawing at once). */
export function bitmapNow(url) { return touch(decoded, url) || null; }

/** Decode (or return) the bitmap of `url`, loading it first (with `priority`) if needed. */
export function bitmap(url, priority = 0, owner = null) {
  const ready = touch(decoded, url);
  if (ready) return Promise.resolve(ready);
  if (decoding.has(url)) return decoding.get(url);
  const promise = load(url, priority, owner)
    .then((blob) => createImageBitmap(blob))
    .then((image) => { keepDecoded(url, image); return image; })
    .finally(() => decoding.delete(url));
  decoding.set(url, promise);
  return promise;
}

/** Decode ahead if the encoded bytes are already here (no network). */
export function predecode(url) {
  if (!decoded.has(url) && !decoding.has(url) && encoded.has(url)) bitmap(url).catch(() => {});
}
