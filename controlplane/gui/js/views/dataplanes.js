// Dataplanes (issue 15 §2): every proxy of a mesh in a table with filter, state filter, sort and paging.
// Filter, sort and page live in the URL (a filtered table is a link). Rows are derived once per load and
// only one page (PAGE_SIZE rows) is put in the DOM, so a thousand proxies render as fast as fifty.

import { getAll, seg } from "../api.js";
import { h } from "../dom.js";
import { CATEGORIES, dataplaneRow, tracingText, verdictInfo, xdsText } from "../model.js";
import { href, navigate, parse } from "../router.js";
import { badge, heading, plural } from "../ui.js";

export const PAGE_SIZE = 50;

const COLUMNS = [
  { id: "name", label: "Name", key: (r) => r.name },
  { id: "service", label: "Service", key: (r) => r.services.join(",") },
  { id: "tags", label: "Tags", key: (r) => tagText(r) },
  { id: "status", label: "Status", key: (r) => (r.online ? "0" : "1") },
  { id: "xds", label: "xDS", key: (r) => ({ nacked: "0", pending: "1", acked: "2" }[r.xds.state] || "3") },
  { id: "tracing", label: "Tracing", key: (r) => tracingText(r.tracing) },
  { id: "spans", label: "Span verdict", key: (r) => String(verdictInfo(r.tracing.verdict).rank) },
];

function tagText(row) {
  return Object.entries(row.tags).filter(([k]) => k !== "kuma.io/service").map(([k, v]) => `${k}=${v.join(",")}`).join(" ");
}

/** The rows a query selects, sorted: `q` (words, all must match), `state` (a category), `sort`, `dir`. */
export function selectRows(rows, query) {
  const words = (query.get("q") || "").toLowerCase().split(/\s+/).filter(Boolean);
  const state = query.get("state") || "";
  const column = COLUMNS.find((c) => c.id === query.get("sort")) || COLUMNS[0];
  const dir = query.get("dir") === "desc" ? -1 : 1;
  const picked = rows.filter((r) => (!state || r.category === state) && words.every((w) => r.search.includes(w)));
  return picked.sort((a, b) => dir * (column.key(a).localeCompare(column.key(b)) || a.name.localeCompare(b.name)));
}

function withQuery(route, changes) {
  const query = new URLSearchParams(route.query);
  for (const [key, value] of Object.entries(changes)) {
    if (value) query.set(key, value); else query.delete(key);
  }
  return href("dataplanes", { mesh: route.mesh, query });
}

function cells(row) {
  const verdict = verdictInfo(row.tracing.verdict);
  const xds = row.xds.state === "nacked" ? badge("bad", "✕", xdsText(row.xds))
    : badge(row.xds.state === "acked" ? "good" : "idle", row.xds.state === "acked" ? "✓" : "…", xdsText(row.xds));
  return [
    h("a", { href: href("dataplane", { mesh: row.mesh, name: row.name }) }, row.name),
    row.services.join(", "),
    h("span", { class: "tags" }, tagText(row)),
    row.online ? badge("good", "●", "online") : badge("offline", "⊘", "offline"),
    xds,
    h("span", { class: row.tracing.verdict === "not traced" ? "muted" : "" }, tracingText(row.tracing)),
    h("span", { title: row.tracing.message || "" }, badge(verdict.css, verdict.symbol, verdict.label)),
  ];
}

function header(route, column) {
  const current = route.query.get("sort") || "name";
  const dir = route.query.get("dir") === "desc" ? "desc" : "asc";
  const sorted = current === column.id;
  const next = sorted && dir === "asc" ? "desc" : "";
  return h("th", { scope: "col", "aria-sort": sorted ? (dir === "asc" ? "ascending" : "descending") : "none" },
    h("a", { href: withQuery(route, { sort: column.id === "name" && !next ? "" : column.id, dir: next, page: "" }),
      class: "sort", "aria-label": `Sort by ${column.label}` }, column.label, sorted ? (dir === "asc" ? " ▲" : " ▼") : ""));
}

function controls(route, ui) {
  const input = h("input", { id: "dp-filter", type: "search", value: route.query.get("q") || "", autocomplete: "off",
    placeholder: "name, service, tag, state…" });
  const select = h("select", { id: "dp-state" }, h("option", { value: "" }, "any state"),
    CATEGORIES.map((c) => h("option", { value: c.id, selected: route.query.get("state") === c.id }, c.label)));
  // Both controls write the URL from the current location (not the route this table was drawn for), so a
  // pending filter keystroke and a state change never undo each other.
  const apply = () => {
    clearTimeout(ui.timer);
    navigate(withQuery(parse(location), { q: input.value, state: select.value, page: "" }), { replace: true, focus: false });
  };
  input.addEventListener("input", () => {
    clearTimeout(ui.timer);
    ui.timer = setTimeout(apply, 150);
  });
  select.addEventListener("change", apply);
  return h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
    h("label", { for: "dp-filter" }, "Filter"), input, h("label", { for: "dp-state" }, "State"), select);
}

function pager(route, total, page, pages) {
  if (pages <= 1) return null;
  const link = (n, text) => (n >= 1 && n <= pages && n !== page
    ? h("a", { href: withQuery(route, { page: n === 1 ? "" : String(n) }) }, text) : h("span", { class: "muted" }, text));
  return h("nav", { class: "pager", "aria-label": "Pages" }, link(page - 1, "‹ previous"), ` page ${page} of ${pages} `,
    link(page + 1, "next ›"));
}

export const dataplanes = {
  title: (route) => `Dataplanes of ${route.mesh}`,
  async load(route) {
    const items = await getAll(`/meshes/${seg(route.mesh)}/dataplanes+insights`);
    return items.map(dataplaneRow);
  },
  render(rows, route, ctx) {
    const picked = selectRows(rows, route.query);
    const pages = Math.max(1, Math.ceil(picked.length / PAGE_SIZE));
    const page = Math.min(pages, Math.max(1, Number(route.query.get("page")) || 1));
    const shown = picked.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);
    const summary = picked.length === rows.length ? plural(rows.length, "dataplane")
      : `${picked.length} of ${plural(rows.length, "dataplane")}`;
    return h("div", null,
      heading(`Dataplanes of ${route.mesh}`, "Tracing state, span verdict and xDS status of every proxy."),
      controls(route, ctx.ui),
      h("p", { class: "summary", id: "dp-summary", role: "status" }, `${summary} match`, shown.length < picked.length
        ? `; showing ${(page - 1) * PAGE_SIZE + 1}–${(page - 1) * PAGE_SIZE + shown.length}` : ""),
      h("table", { class: "grid", id: "dp-table", dataset: { total: String(picked.length) } },
        h("caption", { class: "sr-only" }, `Dataplanes of mesh ${route.mesh}`),
        h("thead", null, h("tr", null, COLUMNS.map((c) => header(route, c)))),
        h("tbody", null, shown.map((row) => h("tr", { dataset: { dataplane: row.name, category: row.category } },
          cells(row).map((cell) => h("td", null, cell)))))),
      pager(route, picked.length, page, pages));
  },
  relevant: (event, route) => !event.mesh || event.mesh === route.mesh,
};
