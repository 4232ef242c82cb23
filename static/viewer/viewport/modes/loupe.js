// The magnifier loupe (U): a circle that follows the pointer and shows the image under it LOUPE_ZOOM
// times larger than on screen. It is drawn from the server's full-resolution render with the
// viewport's window (the frame on the canvas is the rendered frame at its native size; a large image
// drawn from Deep Zoom tiles asks the render endpoint for the region under the loupe,
// `viewport=vw,vh,sx,sy,sw,sh`, PS3.18 8.3.5.1.3), never a downsampled picture scaled up. The
// viewport's window preview and invert apply to it as to the canvas. exit() removes it all.
import { windowKey } from "../windowing.js";
import { listeners } from "./gesture.js";

export const LOUPE_SIZE = 200; // CSS pixels across
export const LOUPE_ZOOM = 3; // times the viewport's display scale
const REGION_INTERVAL = 100; // ms between region requests for tiled images

/** The image rectangle the loupe shows around image point (x, y), for a viewport at `scale` CSS px
 * per image pixel: [sx, sy, sw, sh] in image pixels. Pure. */
export function loupeSource(x, y, scale, size = LOUPE_SIZE, zoom = LOUPE_ZOOM) {
  const side = size / (scale * zoom);
  return [x - side / 2, y - side / 2, side, side];
}

export function loupeMode(vp, { button = 0 } = {}) {
  const on = listeners();
  let box = null;
  let canvas = null;
  let region = null; // {key, bitmap, rect} of the last region fetched (tiled images)
  let regionTimer = null;
  let last = null;

  const ensure = () => {
    if (box) return;
    box = document.createElement("div");
    box.className = "loupe";
    box.setAttribute("aria-hidden", "true");
    box.style.width = box.style.height = `${LOUPE_SIZE}px`;
    canvas = document.createElement("canvas");
    const dpr = window.devicePixelRatio || 1;
    canvas.width = canvas.height = Math.round(LOUPE_SIZE * dpr);
    box.append(canvas);
    vp.root.append(box);
  };

  const hide = () => { if (box) box.hidden = true; };

  const draw = () => {
    if (!last || !vp.shown || !box) return;
    const { clientX, clientY } = last;
    const item = vp.item;
    const [x, y] = vp.toImage(clientX, clientY);
    if (!item || x < 0 || y < 0 || x > item.columns || y > item.rows) { hide(); return; }
    const rect = vp.root.getBoundingClientRect();
    box.hidden = false;
    box.style.left = `${clientX - rect.left - LOUPE_SIZE / 2}px`;
    box.style.top = `${clientY - rect.top - LOUPE_SIZE / 2}px`;
    canvas.style.filter = vp.canvas.style.filter; // the window preview and invert, as on the canvas
    const ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = false; // magnified pixels stay pixels
    const [sx, sy, sw, sh] = loupeSource(x, y, vp.scale);
    const scale = canvas.width / sw;
    if (vp.shown.kind === "tiles") {
      requestRegion(item, sx, sy, sw, sh);
      if (region && region.sop === item.sop) {
        const r = region.rect;
        ctx.drawImage(region.bitmap, (r[0] - sx) * scale, (r[1] - sy) * scale, r[2] * scale, r[3] * scale);
      }
    } else {
      ctx.drawImage(vp.shown.bitmap, sx, sy, sw, sh, 0, 0, canvas.width, canvas.height);
    }
    box.dataset.zoom = String(LOUPE_ZOOM);
    box.dataset.source = `${Math.round(sx)},${Math.round(sy)},${Math.round(sw)},${Math.round(sh)}`;
  };

  /** A large image: the region under the loupe (twice its side, to move a little without a request) at native size. */
  const requestRegion = (item, sx, sy, sw, sh) => {
    const side = Math.ceil(sw * 2);
    const x0 = Math.max(0, Math.floor(sx - sw / 2));
    const y0 = Math.max(0, Math.floor(sy - sh / 2));
    const w = Math.min(side, item.columns - x0);
    const h = Math.min(side, item.rows - y0);
    if (w <= 0 || h <= 0) return;
    if (region && region.sop === item.sop && sx >= region.rect[0] && sy >= region.rect[1]
      && sx + sw <= region.rect[0] + region.rect[2] && sy + sh <= region.rect[1] + region.rect[3]) return;
    if (regionTimer) return;
    regionTimer = setTimeout(async () => {
      regionTimer = null;
      const { stack } = vp;
      const params = { viewport: `${w},${h},${x0},${y0},${w},${h}`, accept: "image/jpeg" };
      if (vp.window) params.window = windowKey(vp.window);
      const url = vp.app.web.frameRendered(stack.study, stack.series, item.sop, item.frame, params);
      try {
        const response = await fetch(url, { credentials: "same-origin" });
        if (!response.ok) return;
        region = { sop: item.sop, rect: [x0, y0, w, h], bitmap: await createImageBitmap(await response.blob()) };
        draw();
      } catch { /* the next move asks again */ }
    }, REGION_INTERVAL);
  };

  const move = (event) => {
    if (!vp.stack || !vp.shown) { hide(); return; }
    ensure();
    last = { clientX: event.clientX, clientY: event.clientY };
    draw();
  };
  const down = (event) => { if (event.button === button) move(event); };

  return {
    name: "loupe",
    enter() {
      on.add(vp.overlay, "pointermove", move);
      on.add(vp.overlay, "pointerdown", down);
      on.add(vp.overlay, "pointerleave", hide);
      vp.overlay.style.cursor = "none";
    },
    exit() {
      on.removeAll();
      vp.overlay.style.cursor = "";
      clearTimeout(regionTimer);
      regionTimer = null;
      if (box) box.remove();
      box = canvas = region = last = null;
    },
  };
}
