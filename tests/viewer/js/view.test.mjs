// The pure view transform (static/viewer/viewport/view.js) under every rotation and flip; run by
// tests/viewer/test_view_js.py with node. Prints "ok <count>" or throws.
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";

const source = readFileSync(new URL("../../../static/viewer/viewport/view.js", import.meta.url), "utf8");
const view = await import(`data:text/javascript,${encodeURIComponent(source)}`);
const { canvasTransform, fitView, flipView, panView, rotateView, screenLetters, toImage, toScreen, visibleRect, zoomView } = view;

const close = (a, b, what) => assert.ok(a.every((x, i) => Math.abs(x - b[i]) < 1e-9), `${what}: ${a} != ${b}`);
const size = [800, 600];
const image = [512, 400];
let checks = 0;
const orientations = [];
for (const rotation of [0, 90, 180, 270]) for (const flipH of [false, true]) for (const flipV of [false, true]) orientations.push({ rotation, flipH, flipV });

for (const o of orientations) {
  const v = { ...fitView(size, image, o), centre: [200.25, 150.5], scale: 1.7 };
  for (const p of [[0, 0], [511.5, 3.25], [123.4, 399], [256, 200]]) {
    close(toImage(v, size, toScreen(v, size, p)), p, `round trip ${JSON.stringify(o)}`);
    // the canvas transform puts image pixels where toScreen puts the marks
    const [a, b, c, d, e, f] = canvasTransform(v, size, 2);
    const s = toScreen(v, size, p);
    close([(a * p[0] + c * p[1] + e) / 2, (b * p[0] + d * p[1] + f) / 2], s, "canvas transform");
    checks += 2;
  }
  // the centre stays in the middle; zoom keeps its anchor; a pan moves the picture as seen
  close(toScreen(v, size, v.centre), [400, 300], "centre");
  const anchor = [300, 100];
  close(toScreen(zoomView(v, 2, anchor), size, anchor), toScreen(v, size, anchor), "zoom anchor");
  const p = [250, 190];
  const before = toScreen(v, size, p);
  close(toScreen(panView(v, 30, -12), size, p), [before[0] + 30, before[1] - 12], "pan");
  // the visible rectangle holds the image points at the viewport's corners
  const [tl, br] = visibleRect(v, size);
  for (const corner of [[0, 0], [800, 0], [0, 600], [800, 600]]) {
    const q = toImage(v, size, corner);
    assert.ok(q[0] >= tl[0] - 1e-9 && q[0] <= br[0] + 1e-9 && q[1] >= tl[1] - 1e-9 && q[1] <= br[1] + 1e-9);
  }
  // rotating turns the picture clockwise as seen, whatever the flips: the point right of the
  // centre goes below it; four turns and two flips give the view back
  const right = toImage(v, size, [500, 300]);
  close(toScreen(rotateView(v, 1), size, right), [400, 400], `clockwise ${JSON.stringify(o)}`);
  close(toScreen(rotateView(v, -1), size, right), [400, 200], "counter-clockwise");
  const turned = [1, 2, 3, 4].reduce((w) => rotateView(w, 1), v);
  close(toScreen(turned, size, right), [500, 300], "four turns");
  close(toScreen(flipView(v, "h"), size, right), [300, 300], "flip h as seen");
  close(toScreen(flipView(flipView(v, "v"), "v"), size, right), [500, 300], "two flips");
  checks += 7;
}

// fit: a turned image fits by its turned size
assert.equal(fitView([800, 600], [400, 1200], { rotation: 90 }).scale, 2 / 3);
assert.equal(fitView([800, 600], [400, 1200], {}).scale, 0.5);
// a 90-degree turn: image x (columns) points down, image y points left
close(toScreen({ scale: 1, centre: [0, 0], rotation: 90 }, [0, 0], [1, 0]), [0, 1], "rot 90 x");
close(toScreen({ scale: 1, centre: [0, 0], rotation: 90 }, [0, 0], [0, 1]), [-1, 0], "rot 90 y");
// orientation letters turn with the picture: an axial slice (patient's left on the image's right)
const axial = { right: "L", left: "R", bottom: "P", top: "A" };
assert.deepEqual(screenLetters(axial, { rotation: 0 }), axial);
assert.deepEqual(screenLetters(axial, { rotation: 90 }), { right: "A", left: "P", bottom: "L", top: "R" });
assert.deepEqual(screenLetters(axial, { rotation: 0, flipH: true }), { right: "R", left: "L", bottom: "P", top: "A" });
assert.deepEqual(screenLetters(axial, { rotation: 180, flipV: true }), { right: "R", left: "L", bottom: "P", top: "A" });
assert.equal(screenLetters(null, {}), null);
console.log(`ok ${checks + 9}`);
