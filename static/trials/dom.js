// Small DOM helpers the trial panels share (read_panel.js, adjudicate_panel.js).

/** An element with attributes (`on`: event listeners; true: an empty attribute) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "on") for (const [name, fn] of Object.entries(value)) node.addEventListener(name, fn);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

/** Millimetres with one decimal, or a dash for no value. */
export const mm = (value) => (value === null || value === undefined ? "–" : Number(value).toFixed(1));
