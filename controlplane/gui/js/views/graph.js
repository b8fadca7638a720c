// Service graph (issue 15 §5): services as nodes, outbound dependencies as edges, laid out by dependency
// depth (layout.js), each node coloured and labelled with its proxies' span-flow state, each edge with
// whether its outbound listeners are traced. A node is a link: it opens the service's proxies below the
// graph (`?service=NAME`). The same facts are in the two tables under it, for readers who do not see the
// drawing and for anyone who wants the numbers.

import { getAll, get, seg } from "../api.js";
import { h, s, table } from "../dom.js";
import { layout, NODE } from "../layout.js";
import { dataplaneRow, tracingText, verdictInfo } from "../model.js";
import { href } from "../router.js";
import { badge, heading, plural } from "../ui.js";

const LABEL_ALL_UP_TO = 12;

/** How a service reads: its proxies' worst verdict, with how many share it; or offline; or no proxies. */
export function nodeState(node) {
  const total = node.dataplanes.length;
  if (!total) return { css: "idle", symbol: "◌", label: "no proxy in the mesh serves it" };
  if (!node.online) return { css: "offline", symbol: "⊘", label: total === 1 ? "offline" : `offline (${total} proxies)` };
  const [worst] = Object.keys(node.verdicts).sort((a, b) => verdictInfo(a).rank - verdictInfo(b).rank);
  const info = verdictInfo(worst);
  const n = node.verdicts[worst] || 0;
  return { css: info.css, symbol: info.symbol, label: n === total ? info.label : `${info.label} (${n} of ${total})` };
}

/** How a dependency reads: traced, not traced (why), or partly. */
export function edgeState(edge) {
  if (edge.traced === edge.outbounds) return { css: "good", label: "traced" };
  if (!edge.traced) return { css: "off", label: "not traced", why: edge.notTraced.map((r) => r.reason).join("; ") };
  return { css: "warn", label: `${edge.traced} of ${edge.outbounds} traced`, why: edge.notTraced.map((r) => r.reason).join("; ") };
}

function curve(from, to, backwards) {
  if (backwards) {
    const x1 = from.x + NODE.width / 2, y1 = from.y + NODE.height, x2 = to.x + NODE.width / 2, y2 = to.y + NODE.height;
    const dip = Math.max(y1, y2) + 40;
    return { d: `M${x1},${y1} C${x1},${dip} ${x2},${dip} ${x2},${y2}`, mid: { x: (x1 + x2) / 2, y: dip - 8 } };
  }
  const x1 = from.x + NODE.width, y1 = from.y + NODE.height / 2, x2 = to.x, y2 = to.y + NODE.height / 2;
  const bend = Math.max(40, (x2 - x1) / 2);
  return { d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2 - 6},${y2}`,
    mid: { x: (x1 + 3 * (x1 + bend) + 3 * (x2 - bend) + x2) / 8, y: (y1 + 3 * y1 + 3 * y2 + y2) / 8 } };
}

function drawing(graph, route) {
  const { positions, back, width, height } = layout(graph.services.map((n) => n.name), graph.edges);
  const selected = route.query.get("service") || "";
  // With many arrows, words only on those that are not fully traced (the exceptions); every arrow keeps its
  // style (solid: traced, dashed: not) and its title, and the dependency table lists them all.
  const labelled = (state) => graph.edges.length <= LABEL_ALL_UP_TO || state.css !== "good";
  const edges = graph.edges.filter((e) => e.source !== e.destination).map((e) => {
    const state = edgeState(e);
    const { d, mid } = curve(positions.get(e.source), positions.get(e.destination), back.has(`${e.source}\u0000${e.destination}`));
    return s("g", { class: `edge edge-${state.css}`, dataset: { source: e.source, destination: e.destination } },
      s("title", null, `${e.source} → ${e.destination}: ${state.label}${state.why ? ` (${state.why})` : ""}`),
      s("path", { d, "marker-end": `url(#arrow-${state.css})` }),
      labelled(state) ? s("text", { x: mid.x, y: mid.y - 7, "text-anchor": "middle", class: "edge-label" }, state.label) : null);
  });
  const nodes = graph.services.map((n) => {
    const p = positions.get(n.name);
    const state = nodeState(n);
    const label = `Service ${n.name}: ${state.label}; ${n.online} of ${plural(n.dataplanes.length, "proxy", "proxies")} online`;
    return s("a", { href: href("graph", { mesh: route.mesh, query: { service: n.name } }), class: `node node-${state.css}`,
      "aria-label": label, "aria-current": n.name === selected ? "true" : null, dataset: { service: n.name, state: state.label } },
    s("title", null, label),
    s("rect", { x: p.x, y: p.y, width: NODE.width, height: NODE.height, rx: 8 }),
    s("text", { x: p.x + 12, y: p.y + 23, class: "node-name" }, n.name.length > 28 ? `${n.name.slice(0, 27)}…` : n.name),
    s("text", { x: p.x + 12, y: p.y + 44, class: "node-state" }, `${state.symbol} ${state.label}`));
  });
  const markers = ["good", "off", "warn"].map((css) => s("marker", { id: `arrow-${css}`, viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse", class: `arrow-${css}` }, s("path", { d: "M0,0 L10,5 L0,10 z" })));
  return s("svg", { id: "graph", viewBox: `0 0 ${width} ${height}`, width, height, "aria-labelledby": "graph-title",
    class: "graph" }, s("title", { id: "graph-title" }, `Services of mesh ${graph.mesh} and their dependencies`),
  s("defs", null, markers), s("g", { class: "edges" }, edges), s("g", { class: "nodes" }, nodes));
}

function tables(graph, route) {
  return [
    table("Services", ["Service", "Proxies", "Online", "State"], graph.services.map((n) => {
      const state = nodeState(n);
      return [h("a", { href: href("graph", { mesh: route.mesh, query: { service: n.name } }) }, n.name),
        String(n.dataplanes.length), String(n.online), badge(state.css, state.symbol, state.label)];
    }), { id: "graph-services" }),
    table("Dependencies", ["From", "To", "Outbounds", "Tracing", "Why not"], graph.edges.map((e) => {
      const state = edgeState(e);
      return [e.source, e.destination, String(e.outbounds), badge(state.css, state.css === "good" ? "✓" : state.css === "off" ? "–" : "!", state.label),
        state.why || ""];
    }), { id: "graph-edges" }),
  ];
}

function proxiesPanel(selected, rows, route) {
  if (!selected) return h("p", { class: "hint" }, "Select a service (click it, or Tab to it and press Enter) to see its proxies.");
  return h("section", { class: "card", id: "graph-proxies", "aria-labelledby": "graph-proxies-title" },
    h("h2", { id: "graph-proxies-title" }, `Proxies of ${selected}`),
    rows.length ? table(`Proxies of ${selected}`, ["Dataplane", "Status", "Tracing", "Span verdict"], rows.map((r) => {
      const v = verdictInfo(r.tracing.verdict);
      return [h("a", { href: href("dataplane", { mesh: route.mesh, name: r.name }) }, r.name),
        r.online ? badge("good", "●", "online") : badge("offline", "⊘", "offline"), tracingText(r.tracing),
        badge(v.css, v.symbol, v.label)];
    })) : h("p", { class: "muted" }, "No proxy in the mesh serves it."),
    h("p", null, h("a", { href: href("dataplanes", { mesh: route.mesh, query: { q: selected } }) }, "Open in the dataplanes table")));
}

export const graph = {
  title: (route) => `Service graph of ${route.mesh}`,
  async load(route) {
    const selected = route.query.get("service") || "";
    const [body, items] = await Promise.all([get(`/meshes/${seg(route.mesh)}/service-graph`),
      selected ? getAll(`/meshes/${seg(route.mesh)}/dataplanes+insights?tag=${encodeURIComponent(`kuma.io/service:${selected}`)}`)
        : Promise.resolve([])]);
    return { graph: body, rows: items.map(dataplaneRow) };
  },
  reloadOnQuery: true,
  render(data, route) {
    const selected = route.query.get("service") || "";
    return h("div", null,
      heading(`Service graph of ${route.mesh}`, "Where do traces break? Nodes: services and their proxies' span flow; arrows: calls, traced or not."),
      data.graph.services.length ? h("div", { class: "graph-wrap" }, drawing(data.graph, route))
        : h("p", { class: "muted" }, "No services yet: apply Dataplanes."),
      proxiesPanel(selected, data.rows, route),
      tables(data.graph, route));
  },
  relevant: (event, route) => !event.mesh || event.mesh === route.mesh,
};
