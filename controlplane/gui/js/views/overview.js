// Overview (issue 15 §1): every mesh (or the one in the URL) with its tracing backends, its policies of every
// kind the control plane has, and its proxies counted by state.

import { get, getAll, seg } from "../api.js";
import { h } from "../dom.js";
import { CATEGORIES, countCategories, dataplaneRow } from "../model.js";
import { href } from "../router.js";
import { badge, heading, plural } from "../ui.js";

async function loadMesh(mesh, kinds) {
  const base = `/meshes/${seg(mesh.name)}`;
  const [items, ...policies] = await Promise.all([getAll(`${base}/dataplanes+insights`),
    ...kinds.map((kind) => getAll(`${base}/${kind.path}`))]);
  return { mesh, rows: items.map(dataplaneRow), policies: kinds.map((kind, i) => ({ kind, items: policies[i] })) };
}

/** One line about a policy: its backend (TrafficTrace) or its target and backends (MeshTrace). */
export function policySummary(item) {
  if (item.spec) {
    const target = item.spec.targetRef || { kind: "Mesh" };
    const backends = ((item.spec.default || {}).backends || []).map((b) => b.type);
    const to = backends.length ? backends.join(", ") : "no backend (tracing off)";
    return `targets ${target.kind}${target.name ? ` ${target.name}` : ""} → ${to}`;
  }
  const backend = (item.conf && item.conf.backend) || "the mesh's default backend";
  const selectors = (item.selectors || []).map((s) => Object.entries(s.match || {}).map(([k, v]) => `${k}=${v}`).join(","));
  return `selects ${selectors.join(" or ") || "nothing"} → ${backend}`;
}

function backendsList(mesh, policies) {
  const tracing = mesh.tracing || {};
  const items = (tracing.backends || []).map((b) => h("li", { dataset: { backend: b.name } },
    h("strong", null, b.name), ` (${b.type}`, b.sampling !== undefined ? `, sampling ${b.sampling}%` : "",
    tracing.defaultBackend === b.name ? ", default" : "", ") ",
    h("span", { class: "muted" }, (b.conf && (b.conf.url || b.conf.address)) || "")));
  for (const { kind, items: list } of policies) {
    for (const item of list) {
      for (const b of ((item.spec || {}).default || {}).backends || []) {
        const conf = b[b.type.charAt(0).toLowerCase() + b.type.slice(1)] || {};
        items.push(h("li", null, h("strong", null, b.type), ` (${kind.singularDisplayName} ${item.name}) `,
          h("span", { class: "muted" }, conf.url || conf.endpoint || "")));
      }
    }
  }
  return items.length ? h("ul", { class: "plain" }, items) : h("p", { class: "muted" }, "none");
}

function countsTable(data) {
  const { counts, reasons } = countCategories(data.rows);
  const link = (id) => href("dataplanes", { mesh: data.mesh.name, query: { state: id } });
  return h("table", { class: "counts", dataset: { mesh: data.mesh.name } },
    h("caption", null, `Proxies of mesh ${data.mesh.name} by state (${plural(data.rows.length, "dataplane")})`),
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Proxies"))),
    h("tbody", null, CATEGORIES.flatMap((c) => [
      h("tr", { dataset: { category: c.id } }, h("th", { scope: "row" }, badge(c.css, c.symbol, c.label)),
        h("td", { class: "count" }, counts[c.id] ? h("a", { href: link(c.id) }, String(counts[c.id])) : "0")),
      ...(c.id === "not-traced" ? reasons.map(([reason, n]) => h("tr", { class: "reason", dataset: { reason } },
        h("th", { scope: "row" }, h("span", { class: "indent" }, reason)), h("td", { class: "count" }, String(n)))) : []),
    ])));
}

function meshCard(data) {
  const name = data.mesh.name;
  return h("section", { class: "card", "aria-labelledby": `mesh-${name}`, dataset: { mesh: name } },
    h("h2", { id: `mesh-${name}` }, h("a", { href: href("overview", { mesh: name }) }, `Mesh ${name}`)),
    h("div", { class: "cols" },
      h("div", null, countsTable(data)),
      h("div", null,
        h("h3", null, "Tracing backends"), backendsList(data.mesh, data.policies),
        h("h3", null, "Policies"),
        data.policies.map(({ kind, items }) => h("div", { class: "policy-kind", dataset: { kind: kind.name } },
          h("h4", null, `${kind.pluralDisplayName} (${items.length})`),
          items.length ? h("ul", { class: "plain" }, items.map((item) => h("li", { dataset: { policy: item.name } },
            h("a", { href: href("policy", { mesh: name, ws: kind.path, name: item.name }) }, item.name), " ",
            h("span", { class: "muted" }, policySummary(item))))) : h("p", { class: "muted" }, "none"))))),
    h("p", { class: "links" }, h("a", { href: href("dataplanes", { mesh: name }) }, "Dataplanes"), " · ",
      h("a", { href: href("graph", { mesh: name }) }, "Service graph"), " · ",
      h("a", { href: href("policies", { mesh: name }) }, "Policies")));
}

export const overview = {
  title: (route) => (route.mesh ? `Mesh ${route.mesh}` : "Overview"),
  async load(route, ctx) {
    const meshes = route.mesh ? [await get(`/meshes/${seg(route.mesh)}`)] : await getAll("/meshes");
    return Promise.all(meshes.map((mesh) => loadMesh(mesh, ctx.policyKinds)));
  },
  render(data, route) {
    const head = heading(route.mesh ? `Mesh ${route.mesh}` : "Overview",
      "Where tracing works: proxies by span-flow state, the backends they report to and the policies that decide.");
    if (!data.length) {
      return h("div", null, head, h("p", null, "No meshes yet. Apply one: ", h("code", null, "controlplane apply -f examples/zipkin-mesh.yaml")));
    }
    return h("div", null, head, data.map(meshCard));
  },
  relevant: (event, route) => !route.mesh || !event.mesh || event.mesh === route.mesh,
};
