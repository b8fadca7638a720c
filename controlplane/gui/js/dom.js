// Building DOM nodes without innerHTML: every string becomes a text node, so names and messages from the API
// can never inject markup (the page's Content-Security-Policy forbids inline script as well).

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

function assign(element, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(key === "className" ? "class" : key, value === true ? "" : String(value));
    }
  }
  return element;
}

/** An HTML element: h("a", {href: "x", class: "y"}, "text", child, [more]). */
export function h(tag, props, ...children) {
  return append(assign(document.createElement(tag), props), children);
}

/** An SVG element, same calling convention. */
export function s(tag, props, ...children) {
  return append(assign(document.createElementNS(SVG_NS, tag), props), children);
}

/** Replace the children of `parent`, keeping the focused control focused when it is re-created with the same
 * id (a live update re-renders a view while someone types in its filter). */
export function replaceChildren(parent, ...children) {
  const active = document.activeElement;
  const id = active && parent.contains(active) ? active.id : "";
  const selection = id && "selectionStart" in active ? [active.selectionStart, active.selectionEnd] : null;
  parent.replaceChildren();
  append(parent, children);
  if (id) {
    const again = document.getElementById(id);
    if (again) {
      again.focus({ preventScroll: true });
      if (selection && "setSelectionRange" in again) {
        try { again.setSelectionRange(...selection); } catch { /* not a text input */ }
      }
    }
  }
}

/** A definition list from [term, value] pairs (values may be nodes). */
export function facts(pairs, props) {
  return h("dl", { class: "facts", ...props }, pairs.filter(Boolean).map(([term, value]) => [h("dt", null, term), h("dd", null, value)]));
}

/** A table with a caption, column headers and rows of cells (strings or nodes). */
export function table(caption, headers, rows, props) {
  return h("table", props,
    h("caption", null, caption),
    h("thead", null, h("tr", null, headers.map((header) => h("th", { scope: "col" }, header)))),
    h("tbody", null, rows.map((cells) => h("tr", null, cells.map((cell) => h("td", null, cell))))));
}
