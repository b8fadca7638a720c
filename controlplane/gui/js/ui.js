// Small widgets shared by the views: state badges (symbol + words + colour), messages, section headings.

import { AuthError } from "./api.js";
import { h } from "./dom.js";

/** A state badge; the symbol is decoration, the words carry the state. */
export function badge(css, symbol, label, props) {
  return h("span", { class: `badge badge-${css}`, ...props }, h("span", { class: "sym", "aria-hidden": "true" }, symbol), " ", label);
}

/** A block saying what could not be shown and why (an AuthError reads as "needs a token"). */
export function problem(error, what) {
  if (error instanceof AuthError) {
    return h("p", { class: "needs-token", dataset: { auth: String(error.status) } },
      badge("warn", "!", "needs a token"), ` ${what}: ${error.message}. Give a token above to see it.`);
  }
  return h("p", { class: "problem", role: "alert" }, `${what} could not be read: ${error.message}`);
}

/** The view's heading, focusable so a route change can move focus to it. */
export function heading(text, sub) {
  return h("div", { class: "view-head" }, h("h1", { tabindex: "-1", id: "view-title" }, text), sub ? h("p", { class: "sub" }, sub) : null);
}

/** A promise's outcome as {value} or {error}, so one failing read does not hide the others. */
export function attempt(promise) {
  return promise.then((value) => ({ value }), (error) => ({ error }));
}

export function plural(n, word, many = `${word}s`) {
  return `${n} ${n === 1 ? word : many}`;
}
