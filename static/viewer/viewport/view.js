// The view transform of a viewport, pure (no DOM): `scale` is CSS pixels per image pixel and
// `centre` the image point at the middle of a viewport of `size` [width, height] CSS pixels.
// Image points are [x, y] with x the column and y the row, (0, 0) the top-left corner of the
// top-left pixel. A view is {scale, centre, rotation, flipH, flipV}; the functions return new views.
//
// Orientation: `rotation` (0, 90, 180 or 270 degrees, clockwise as seen) turns the image, then
// `flipH` mirrors it left-right and `flipV` top-bottom *as seen on screen*. Screen offset from the
// viewport's middle = scale * M * (p - centre), M = F * R. Marks stay in image coordinates: only
// toScreen/toImage (and the canvas transform) know the orientation.

export const MIN_SCALE = 0.02;
export const MAX_SCALE = 40;
export const ROTATIONS = [0, 90, 180, 270];

/** The 2x2 matrix [[a, b], [c, d]] (screen = M * image offset) of an orientation. */
export function orientationMatrix({ rotation = 0, flipH = false, flipV = false } = {}) {
  const r = ((Math.round(rotation / 90) % 4) + 4) % 4;
  const rot = [[[1, 0], [0, 1]], [[0, -1], [1, 0]], [[-1, 0], [0, -1]], [[0, 1], [-1, 0]]][r]; // clockwise, y down
  const fx = flipH ? -1 : 1;
  const fy = flipV ? -1 : 1;
  return [[fx * rot[0][0], fx * rot[0][1]], [fy * rot[1][0], fy * rot[1][1]]];
}

function orientationOf(view) {
  return { rotation: view.rotation || 0, flipH: !!view.flipH, flipV: !!view.flipV };
}

/** The width and height the image takes on screen (in image pixels) under the view's rotation. */
export function turnedSize([columns, rows], rotation = 0) {
  return (((rotation % 180) + 180) % 180) === 90 ? [rows, columns] : [columns, rows];
}

/** The whole image in the viewport, centred (keeping the orientation of `orientation`). */
export function fitView([width, height], [columns, rows], orientation = {}) {
  const o = orientationOf(orientation);
  const [w, h] = turnedSize([columns, rows], o.rotation);
  return { scale: Math.max(1e-3, Math.min(width / w, height / h)), centre: [columns / 2, rows / 2], ...o };
}

/** Zoom by `factor` keeping the image point `anchor` (default: the centre) where it is. */
export function zoomView(view, factor, anchor = view.centre) {
  const { scale, centre } = view;
  const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale * factor));
  const k = scale / next;
  return { ...view, scale: next, centre: [anchor[0] + (centre[0] - anchor[0]) * k, anchor[1] + (centre[1] - anchor[1]) * k] };
}

/** Move the picture by dx, dy CSS pixels (on screen, whatever the orientation). */
export function panView(view, dx, dy) {
  const [[a, b], [c, d]] = orientationMatrix(view); // orthogonal: the inverse is the transpose
  const { scale, centre } = view;
  return { ...view, centre: [centre[0] - (a * dx + c * dy) / scale, centre[1] - (b * dx + d * dy) / scale] };
}

/** Turn the view 90 degrees clockwise (`turns` = 1) or counter-clockwise (-1) as seen on screen. */
export function rotateView(view, turns = 1) {
  const o = orientationOf(view);
  const mirrored = o.flipH !== o.flipV; // a mirror reverses the sense of a rotation behind it
  const rotation = ((((o.rotation + (mirrored ? -90 : 90) * turns) % 360) + 360) % 360);
  return { ...view, rotation };
}

/** Mirror the view as seen on screen: `axis` "h" (left-right) or "v" (top-bottom). */
export function flipView(view, axis) {
  const o = orientationOf(view);
  return axis === "h" ? { ...view, flipH: !o.flipH } : { ...view, flipV: !o.flipV };
}

/** Image point -> viewport (CSS pixel) coordinates. */
export function toScreen(view, [width, height], p) {
  const { scale, centre } = view;
  const [[a, b], [c, d]] = orientationMatrix(view);
  const dx = p[0] - centre[0];
  const dy = p[1] - centre[1];
  return [width / 2 + (a * dx + b * dy) * scale, height / 2 + (c * dx + d * dy) * scale];
}

/** Viewport (CSS pixel) coordinates -> image point. */
export function toImage(view, [width, height], [x, y]) {
  const { scale, centre } = view;
  const [[a, b], [c, d]] = orientationMatrix(view);
  const sx = (x - width / 2) / scale;
  const sy = (y - height / 2) / scale;
  return [centre[0] + a * sx + c * sy, centre[1] + b * sx + d * sy];
}

/** The canvas transform (setTransform's a..f) drawing image pixels on a canvas of `dpr` device pixels per CSS pixel. */
export function canvasTransform(view, [width, height], dpr) {
  const { scale, centre } = view;
  const [[a, b], [c, d]] = orientationMatrix(view);
  const k = dpr * scale;
  return [k * a, k * c, k * b, k * d,
    dpr * (width / 2 - scale * (a * centre[0] + b * centre[1])),
    dpr * (height / 2 - scale * (c * centre[0] + d * centre[1]))];
}

/** The image points at the top-left and bottom-right corners of the part of the image in view
 * (the bounding box of the viewport's corners in image coordinates). */
export function visibleRect(view, size) {
  const [width, height] = size;
  const corners = [[0, 0], [width, 0], [0, height], [width, height]].map((p) => toImage(view, size, p));
  const xs = corners.map((p) => p[0]);
  const ys = corners.map((p) => p[1]);
  return [[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]];
}

/**
 * The orientation letters of the screen's edges, {top, bottom, left, right}, from the image's own
 * edges' letters (`letters`, e.g. orientationLetters of stack.js) under the view's orientation.
 */
export function screenLetters(letters, view) {
  if (!letters) return null;
  const [[a, b], [c, d]] = orientationMatrix(view);
  // the image direction that points to each screen edge (M is orthogonal: M^T * screen direction)
  const edge = ([ix, iy]) => (ix > 0.5 ? letters.right : ix < -0.5 ? letters.left : iy > 0.5 ? letters.bottom : letters.top);
  return {
    right: edge([a, b]),
    left: edge([-a, -b]),
    bottom: edge([c, d]),
    top: edge([-c, -d]),
  };
}
