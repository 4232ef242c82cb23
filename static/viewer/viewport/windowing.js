// Window (VOI) helpers, pure (no DOM): the window a URL is rendered with, and the linear map that
// previews one window on an image rendered with another (applied by the viewport as an SVG
// feComponentTransfer on its canvas until the server's render arrives).

/** The URL form of a window, {center, width}, or "" for the file's own (as acquired). */
export function windowKey(w) {
  return w ? `${Math.round(w.center * 100) / 100},${Math.round(Math.max(1, w.width) * 100) / 100}` : "";
}

/** The window of a rendered URL; null for the file's own. */
export function windowOfUrl(url) {
  const match = /[?&]window=([^&]+)/.exec(url);
  if (!match) return null;
  const [center, width] = decodeURIComponent(match[1]).split(",").map(Number);
  return { center, width };
}

/** The window the server renders with for `window` (null: the file's, from `meta`, else `auto`: the
 * one the server chose from the frame's values, X-Crossread-Window), for client previews and drags. */
export function effectiveWindow(meta, window, auto = null) {
  if (window) return window;
  return (meta && meta.window) || auto || null;
}

/**
 * The linear map {slope, intercept} of display values in 0..1 that turns an image rendered with
 * window `from` into the same image under window `to` (MONOCHROME1 and invert included);
 * {slope: 1, intercept: 0} when there is nothing to preview.
 */
export function previewTransfer(from, to, meta, invert) {
  let slope = 1;
  let intercept = 0;
  if (meta && !meta.color && from && to && windowKey(from) !== windowKey(to)) {
    // Display value y in 0..1 rendered with window `from`; the same pixel under `to`:
    slope = from.width / to.width;
    intercept = (from.center - from.width / 2 - to.center + to.width / 2) / to.width;
    if (meta.monochrome1) intercept = 1 - slope - intercept;
  }
  if (invert) { slope = -slope; intercept = 1 - intercept; }
  return { slope, intercept };
}
