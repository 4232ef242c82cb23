// The view transform of a viewport, pure (no DOM): `scale` is CSS pixels per image pixel and
// `centre` the image point at the middle of a viewport of `size` [width, height] CSS pixels.
// Image points are [x, y] with x the column and y the row, (0, 0) the top-left corner of the
// top-left pixel. A view is {scale, centre}; the functions return new views.

export const MIN_SCALE = 0.02;
export const MAX_SCALE = 40;

/** The whole image in the viewport, centred. */
export function fitView([width, height], [columns, rows]) {
  return { scale: Math.max(1e-3, Math.min(width / columns, height / rows)), centre: [columns / 2, rows / 2] };
}

/** Zoom by `factor` keeping the image point `anchor` (default: the centre) where it is. */
export function zoomView({ scale, centre }, factor, anchor = centre) {
  const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale * factor));
  const k = scale / next;
  return { scale: next, centre: [anchor[0] + (centre[0] - anchor[0]) * k, anchor[1] + (centre[1] - anchor[1]) * k] };
}

/** Move the picture by dx, dy CSS pixels. */
export function panView({ scale, centre }, dx, dy) {
  return { scale, centre: [centre[0] - dx / scale, centre[1] - dy / scale] };
}

/** Image point -> viewport (CSS pixel) coordinates. */
export function toScreen({ scale, centre }, [width, height], p) {
  return [width / 2 + (p[0] - centre[0]) * scale, height / 2 + (p[1] - centre[1]) * scale];
}

/** Viewport (CSS pixel) coordinates -> image point. */
export function toImage({ scale, centre }, [width, height], [x, y]) {
  return [centre[0] + (x - width / 2) / scale, centre[1] + (y - height / 2) / scale];
}

/** The canvas transform (setTransform's a..f) drawing image pixels on a canvas of `dpr` device pixels per CSS pixel. */
export function canvasTransform({ scale, centre }, [width, height], dpr) {
  return [dpr * scale, 0, 0, dpr * scale, dpr * (width / 2 - centre[0] * scale), dpr * (height / 2 - centre[1] * scale)];
}

/** The image points at the top-left and bottom-right corners of the viewport. */
export function visibleRect({ scale, centre }, [width, height]) {
  return [
    [centre[0] - width / 2 / scale, centre[1] - height / 2 / scale],
    [centre[0] + width / 2 / scale, centre[1] + height / 2 / scale],
  ];
}
