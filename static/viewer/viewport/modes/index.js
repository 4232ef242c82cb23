// The interaction modes of a viewport, loaded together after the viewer's first image: none of them
// is needed to show it, and every module less in the page's first import graph is one round trip less
// on a long link (see docs/viewer.md, "Modules").

import { TOOLS } from "../../tools.js";
import { angleMode } from "./angle.js";
import { crosshairMode } from "./crosshair.js";
import { hoverMode } from "./hover.js";
import { labelMode } from "./label.js";
import { loupeMode } from "./loupe.js";
import { measureMode } from "./measure.js";
import { panMode } from "./pan.js";
import { scrollMode } from "./scroll.js";
import { selectMode } from "./select.js";
import { windowLevelMode } from "./windowlevel.js";
import { zoomMode } from "./zoom.js";

/** The mode of the primary button for each tool of the toolbar. */
const TOOL_MODES = { pointer: selectMode, wl: windowLevelMode, pan: panMode, zoom: zoomMode, crosshair: crosshairMode, loupe: loupeMode };

/** The primary button's mode for `tool` (the toolbar's: pointer, wl, pan, zoom, crosshair, or a measurement tool). */
export function toolMode(viewport, tool) {
  if (TOOLS[tool]) return (TOOLS[tool].steps ? angleMode : measureMode)(viewport, TOOLS[tool], { button: 0 });
  return (TOOL_MODES[tool] || selectMode)(viewport, { button: 0 });
}

/** Always on, whatever the tool: the wheel, hover, double-click; the right button sets the window, the middle one pans. */
export function alwaysOn(viewport) {
  return [scrollMode(viewport), hoverMode(viewport), labelMode(viewport),
    windowLevelMode(viewport, { button: 2 }), panMode(viewport, { button: 1 })];
}
