// A JSON value as a tree of <details> elements (native, keyboard-operable disclosure widgets) with a search
// box: matching keys and values are highlighted and their branches opened. Children are built only when a
// branch is opened, so a large Envoy config dump costs nothing until someone looks into it.

import { h } from "./dom.js";

function label(value) {
  if (Array.isArray(value)) return `[${value.length}]`;
  return `{${Object.keys(value).length}}`;
}

function isBranch(value) {
  return value !== null && typeof value === "object";
}

function marked(text, term) {
  if (!term) return text;
  const at = text.toLowerCase().indexOf(term);
  if (at < 0) return text;
  return [text.slice(0, at), h("mark", null, text.slice(at, at + term.length)), text.slice(at + term.length)];
}

/** Paths (joined with "/") of the branches to open so every match of `term` is visible; and the match count. */
export function matches(value, term) {
  const open = new Set();
  let count = 0;
  function walk(node, path, key) {
    const hit = term && String(key).toLowerCase().includes(term);
    if (!isBranch(node)) {
      const found = hit || (term && String(node).toLowerCase().includes(term));
      if (found) count += 1;
      return found;
    }
    if (hit) count += 1;
    let any = hit;
    for (const [k, child] of Object.entries(node)) any = walk(child, `${path}/${k}`, k) || any;
    if (any) open.add(path);
    return any;
  }
  if (term) walk(value, "", "");
  return { open, count };
}

function leaf(key, value, term) {
  const css = value === null ? "null" : typeof value;
  const shown = typeof value === "string" ? JSON.stringify(value) : String(value);
  return h("div", { class: "jt-leaf" }, key !== null ? [h("span", { class: "jt-key" }, marked(String(key), term)), ": "] : null,
    h("span", { class: `jt-${css}` }, marked(shown, term)));
}

function branch(key, value, path, state) {
  const summary = h("summary", null, key !== null ? h("span", { class: "jt-key" }, marked(String(key), state.term)) : "value",
    " ", h("span", { class: "jt-count" }, label(value)));
  const details = h("details", { class: "jt-branch", dataset: { path } }, summary);
  const fill = () => {
    if (details.childElementCount > 1) return;
    for (const [k, child] of Object.entries(value)) {
      const childPath = `${path}/${k}`;
      details.append(isBranch(child) ? branch(Array.isArray(value) ? Number(k) : k, child, childPath, state)
        : leaf(Array.isArray(value) ? Number(k) : k, child, state.term));
    }
  };
  if (state.open.has(path)) {
    details.open = true;
    fill();
  }
  details.addEventListener("toggle", () => {
    if (details.open) {
      state.open.add(path);
      fill();
    } else {
      state.open.delete(path);
    }
  });
  return details;
}

/** A searchable tree of `value`. `state` ({term, open}) survives re-renders, so a live update keeps what
 * the reader opened and searched for; `id` names the search box (also for focus restoring). */
export function jsonTree(value, state, id, caption) {
  const tree = h("div", { class: "jt" });
  const status = h("span", { class: "jt-status", role: "status" });
  const draw = () => {
    const term = state.term.trim().toLowerCase();
    const found = matches(value, term);
    const drawState = { term, open: term ? new Set([...state.open, ...found.open]) : state.open };
    tree.replaceChildren(isBranch(value) ? branch(null, value, "", drawState) : leaf(null, value, term));
    status.textContent = term ? `${found.count} match${found.count === 1 ? "" : "es"}` : "";
  };
  const input = h("input", { id, type: "search", value: state.term, autocomplete: "off", spellcheck: "false" });
  input.addEventListener("input", () => {
    state.term = input.value;
    draw();
  });
  state.open.add("");
  draw();
  return h("div", { class: "jt-wrap" }, h("label", { class: "jt-search", for: id }, `Search ${caption}`), " ", input, " ",
    status, tree);
}

/** Fresh tree state. */
export function treeState() {
  return { term: "", open: new Set() };
}
