// Pure: where the text of each mark goes on a viewport's overlay so that no two overlap. Greedy, in
// screen space (CSS pixels), in the order given: each label tries a few places around its anchor
// (beside the mark first, as before), takes the first free one inside the viewport, else is pushed
// from its preferred place along a direction away from the mark until it is free. A label that
// ended up away from its mark gets a leader line to it. Dozens of labels cost well under a
// millisecond: each try is tested against the boxes already placed.

const GAP = 8; // px between a mark and its text
const STEP = 6; // px a pushed label moves at a time
const MAX_STEPS = 80;
const LEADER_DISTANCE = 12; // px: a label farther than this from its mark's box gets a leader line

export function overlaps(a, b, margin = 0) {
  return a.x < b.x + b.w + margin && b.x < a.x + a.w + margin && a.y < b.y + b.h + margin && b.y < a.y + a.h + margin;
}

function inside(box, width, height) {
  return box.x >= 0 && box.y >= 0 && box.x + box.w <= width && box.y + box.h <= height;
}

/** The distance from point p to box b (0 inside it), and the point of b nearest to p. */
export function nearestOnBox(b, p) {
  const x = Math.min(Math.max(p[0], b.x), b.x + b.w);
  const y = Math.min(Math.max(p[1], b.y), b.y + b.h);
  return { point: [x, y], distance: Math.hypot(p[0] - x, p[1] - y) };
}

/** The candidate boxes of a label of size [w, h] beside `bounds` (the mark's screen box), best first. */
function candidates(bounds, [w, h]) {
  const { x0, y0, x1, y1 } = bounds;
  const cy = (y0 + y1) / 2;
  const cx = (x0 + x1) / 2;
  return [
    { x: x1 + GAP, y: cy - h / 2 }, // right, middle (the viewer's place for text since the start)
    { x: x0 - GAP - w, y: cy - h / 2 }, // left, middle
    { x: x1 + GAP, y: y0 - h }, // right, above
    { x: x1 + GAP, y: y1 }, // right, below
    { x: cx - w / 2, y: y0 - GAP - h }, // above
    { x: cx - w / 2, y: y1 + GAP }, // below
    { x: x0 - GAP - w, y: y0 - h }, // left, above
    { x: x0 - GAP - w, y: y1 }, // left, below
  ].map((c) => ({ ...c, w, h }));
}

/**
 * Place labels. `labels`: [{bounds: {x0, y0, x1, y1} (the mark's screen box), size: [w, h],
 * points: [[x, y], ...] (the mark's screen points, for the leader)}]; `width`, `height`: the
 * viewport; `obstacles`: boxes to keep clear of as well. Returns, in the same order,
 * [{x, y, w, h, leader: null | [[x1, y1], [x2, y2]]}] (leader from the label's edge to the mark).
 */
export function placeLabels(labels, { width, height, obstacles = [] }) {
  const placed = [...obstacles];
  return labels.map((label) => {
    const options = candidates(label.bounds, label.size);
    const free = (box) => !placed.some((other) => overlaps(box, other, 1));
    let box = options.find((c) => inside(c, width, height) && free(c))
      || options.find((c) => free(c) && overlapsArea(c, width, height));
    if (!box) box = push(options, label.bounds, free, width, height);
    placed.push(box);
    return { ...box, leader: leaderOf(box, label) };
  });
}

function overlapsArea(box, width, height) {
  return box.x + box.w > 0 && box.y + box.h > 0 && box.x < width && box.y < height;
}

/** No candidate is free: push the first ones that fit the viewport down (then up) until free. */
function push(options, bounds, free, width, height) {
  const start = options.find((c) => inside(c, width, height)) || options[0];
  const centre = [(bounds.x0 + bounds.x1) / 2, (bounds.y0 + bounds.y1) / 2];
  // away from the mark vertically: down if the label starts below its middle, else up; then the other way
  const first = start.y + start.h / 2 >= centre[1] ? 1 : -1;
  for (const direction of [first, -first]) {
    for (let i = 1; i <= MAX_STEPS; i += 1) {
      const box = { ...start, y: start.y + direction * i * STEP };
      if (box.y < 0 || box.y + box.h > height) break;
      if (free(box)) return box;
    }
  }
  return start; // crowded beyond help: it overlaps rather than leaves the screen
}

function leaderOf(box, label) {
  const { x0, y0, x1, y1 } = label.bounds;
  const away = Math.max(box.x - x1, x0 - (box.x + box.w), box.y - y1, y0 - (box.y + box.h));
  if (away <= LEADER_DISTANCE) return null; // beside its mark
  const points = label.points && label.points.length ? label.points : [[x1, (y0 + y1) / 2]];
  let best = null;
  for (const p of points) {
    const near = nearestOnBox(box, p);
    if (!best || near.distance < best.distance) best = { ...near, to: p };
  }
  return [best.point, best.to];
}
