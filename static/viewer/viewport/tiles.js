// Deep Zoom tiles for large images (CR, DX, microscopy): the .dzi description, which tiles of which
// levels cover the viewport (pure), and their drawing: the single-tile level of the whole image
// first, then the tiles of the level that matches the zoom, fetched when they come into view.
import * as loader from "../loader.js";
import { visibleRect } from "./view.js";
import { effectiveWindow, windowKey } from "./windowing.js";

export const TILE_THRESHOLD = 1024; // larger images (either side) are drawn from Deep Zoom tiles

/** Whether a stack item (rows, columns) is drawn from tiles. */
export function isLarge(item) {
  return !!item && !item.plane && Math.max(item.rows, item.columns) > TILE_THRESHOLD; // (planes are rendered whole)
}

/** The levels to draw at `zoom` (device pixels per image pixel): {maxLevel, levels}. Pure. */
export function tileLevels(dzi, zoom) {
  const maxLevel = Math.ceil(Math.log2(Math.max(dzi.width, dzi.height)));
  const wanted = Math.min(maxLevel, Math.max(0, maxLevel + Math.ceil(Math.log2(Math.max(zoom, 1e-6)))));
  let base = maxLevel;
  while (base > 0 && Math.ceil(Math.max(dzi.width, dzi.height) / 2 ** (maxLevel - base)) > dzi.tileSize) base -= 1;
  return { maxLevel, levels: wanted > base ? [base, wanted] : [base] };
}

/**
 * The tiles of `level` that intersect the image rectangle topLeft..bottomRight, as
 * {col, row, x, y, width, height} with x, y, width, height in image pixels. Pure.
 */
export function visibleTiles(dzi, level, maxLevel, topLeft, bottomRight) {
  const factor = 2 ** (maxLevel - level);
  const levelWidth = Math.ceil(dzi.width / factor);
  const levelHeight = Math.ceil(dzi.height / factor);
  const size = dzi.tileSize;
  const overlap = dzi.overlap;
  const first = (v) => Math.max(0, Math.floor(v / factor / size));
  const lastCol = Math.min(Math.ceil(levelWidth / size) - 1, Math.floor(Math.min(bottomRight[0], dzi.width - 1) / factor / size));
  const lastRow = Math.min(Math.ceil(levelHeight / size) - 1, Math.floor(Math.min(bottomRight[1], dzi.height - 1) / factor / size));
  const tiles = [];
  for (let row = first(topLeft[1]); row <= lastRow; row += 1) {
    for (let col = first(topLeft[0]); col <= lastCol; col += 1) {
      const x = col * size - (col ? overlap : 0);
      const y = row * size - (row ? overlap : 0);
      const width = Math.min(size + (col ? overlap : 0) + overlap, levelWidth - x);
      const height = Math.min(size + (row ? overlap : 0) + overlap, levelHeight - y);
      tiles.push({
        col, row,
        x: x * factor, y: y * factor,
        width: Math.min((x + width) * factor, dzi.width) - x * factor,
        height: Math.min((y + height) * factor, dzi.height) - y * factor,
      });
    }
  }
  return tiles;
}

const dziCache = new Map();
function loadDzi(url) {
  if (!dziCache.has(url)) {
    dziCache.set(url, fetch(url, { credentials: "same-origin" }).then(async (response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const xml = new DOMParser().parseFromString(await response.text(), "application/xml");
      const image = xml.documentElement;
      const size = image.getElementsByTagName("Size")[0];
      return {
        tileSize: Number(image.getAttribute("TileSize")), overlap: Number(image.getAttribute("Overlap")),
        width: Number(size.getAttribute("Width")), height: Number(size.getAttribute("Height")),
      };
    }));
  }
  return dziCache.get(url);
}

/** The tiled image of one viewport: {sop, frame, dzi, window} of the image whose tiles are drawn. */
export class Tiles {
  constructor(viewport) {
    this.viewport = viewport;
    this.current = null;
  }

  clear() { this.current = null; }

  /** Show slice `index` from its tiles (its .dzi first, once). */
  async show(index) {
    const vp = this.viewport;
    const item = vp.stack.items[index];
    vp.root.classList.add("loading");
    if (!this.current || this.current.sop !== item.sop || this.current.frame !== item.frame) {
      let dzi;
      try {
        dzi = await loadDzi(vp.app.web.dzi(item.sop, item.frame));
      } catch (error) {
        vp.app.toast(`Image ${index + 1} could not be loaded: ${error.message}`);
        return;
      }
      if (vp.target !== index) return;
      this.current = { sop: item.sop, frame: item.frame, dzi, window: vp.window };
    }
    vp.shown = { index, kind: "tiles", renderWindow: effectiveWindow(item.meta, this.current.window) };
    vp.frames.lastUrl.set(index, "");
    if (!vp.app.firstImageAt) vp.app.firstImageWhenTiles = vp;
    vp.draw();
    vp.announce();
  }

  url(level, col, row, window) {
    const params = window ? { window: windowKey(window) } : null;
    return this.viewport.app.web.tile(this.current.sop, this.current.frame, level, col, row, params);
  }

  /** Draw the visible tiles on `ctx`, already set to the view transform (image pixels). */
  draw(ctx) {
    const vp = this.viewport;
    const tiled = this.current;
    const { dzi } = tiled;
    const { maxLevel, levels } = tileLevels(dzi, vp.zoom);
    const [topLeft, bottomRight] = visibleRect(vp.view, vp.size);
    // Tiles of the window being asked for; until all visible ones are here, the previous window's.
    const asked = vp.window;
    let complete = true;
    const plan = (window) => levels.map((level) => ({
      level,
      tiles: visibleTiles(dzi, level, maxLevel, topLeft, bottomRight).map((tile) => ({ ...tile, url: this.url(level, tile.col, tile.row, window) })),
    }));
    const askedPlan = plan(asked);
    for (const { tiles } of askedPlan) for (const tile of tiles) {
      if (!loader.bitmapNow(tile.url)) {
        complete = false;
        loader.bitmap(tile.url).then(() => vp.scheduleDraw()).catch(() => {});
      }
    }
    if (complete && windowKey(tiled.window) !== windowKey(asked)) {
      tiled.window = asked;
      vp.shown.renderWindow = effectiveWindow(vp.meta, asked);
    }
    if (complete) vp.root.classList.remove("loading");
    const drawPlan = windowKey(tiled.window) === windowKey(asked) ? askedPlan : plan(tiled.window);
    for (const { tiles } of drawPlan) for (const tile of tiles) {
      const bitmap = loader.bitmapNow(tile.url);
      // Tiles without overlap get a hair more than their size, or smoothing leaves seams.
      const pad = dzi.overlap ? 0 : 0.6 / vp.scale;
      if (bitmap) ctx.drawImage(bitmap, tile.x, tile.y, tile.width + pad, tile.height + pad);
      else if (drawPlan !== askedPlan) loader.bitmap(tile.url).then(() => vp.scheduleDraw()).catch(() => {});
    }
    if (!vp.app.firstImageAt && complete && vp.app.firstImageWhenTiles === vp) vp.app.firstImage(vp);
  }
}
