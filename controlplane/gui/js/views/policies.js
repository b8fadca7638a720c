// Policies (issue 15 §4): every TrafficTrace and MeshTrace of a mesh (every policy kind of the control
// plane, from GET /_resources), and one policy with its YAML and the proxies it applies to, is displaced on
// (another kind decides) or is outranked on (another policy of its kind ranks higher).

import { get, getAll, seg } from "../api.js";
import { h, table } from "../dom.js";
import { href } from "../router.js";
import { badge, heading, plural } from "../ui.js";
import { toYaml } from "../yaml.js";
import { policySummary } from "./overview.js";

const ROLES = {
  applied: { css: "good", symbol: "✓", label: "applies" },
  displaced: { css: "warn", symbol: "!", label: "displaced" },
  outranked: { css: "off", symbol: "–", label: "outranked" },
};

export const policies = {
  title: (route) => `Policies of ${route.mesh}`,
  async load(route, ctx) {
    const lists = await Promise.all(ctx.policyKinds.map((kind) => getAll(`/meshes/${seg(route.mesh)}/${kind.path}`)));
    return ctx.policyKinds.map((kind, i) => ({ kind, items: lists[i] }));
  },
  render(data, route) {
    return h("div", null, heading(`Policies of ${route.mesh}`, "Tracing policies of every kind, and what each targets."),
      data.map(({ kind, items }) => h("section", { class: "card", dataset: { kind: kind.name }, "aria-labelledby": `kind-${kind.path}` },
        h("h2", { id: `kind-${kind.path}` }, `${kind.pluralDisplayName} (${items.length})`),
        items.length ? h("ul", { class: "plain" }, items.map((item) => h("li", { dataset: { policy: item.name } },
          h("a", { href: href("policy", { mesh: route.mesh, ws: kind.path, name: item.name }) }, item.name), " ",
          h("span", { class: "muted" }, policySummary(item))))) : h("p", { class: "muted" }, "none"))));
  },
  relevant: (event, route) => !event.mesh || event.mesh === route.mesh,
};

function attachmentRows(route, items) {
  return items.map((a) => {
    const role = ROLES[a.role] || { css: "idle", symbol: "?", label: a.role };
    const detail = a.role === "applied" ? (a.position ? `position ${a.position}` : "")
      : a.by ? `${a.by.type} ${a.by.name} decides instead` : "";
    return [h("a", { href: href("dataplane", { mesh: route.mesh, name: a.name }) }, a.name),
      badge(role.css, role.symbol, role.label), detail];
  });
}

export const policy = {
  title: (route, kinds) => `${(kinds.find((k) => k.path === route.ws) || { singularDisplayName: "Policy" }).singularDisplayName} ${route.name}`,
  async load(route, ctx) {
    const kind = ctx.policyKinds.find((k) => k.path === route.ws);
    if (!kind) throw new Error(`no policy kind ${route.ws}`);
    const base = `/meshes/${seg(route.mesh)}/${seg(route.ws)}/${seg(route.name)}`;
    const [resource, attachments] = await Promise.all([get(base), get(`${base}/_attachments`)]);
    return { kind, resource, attachments };
  },
  render(data, route) {
    const { kind, resource, attachments } = data;
    const count = (role) => attachments.items.filter((a) => a.role === role).length;
    return h("div", null,
      heading(`${kind.singularDisplayName} ${route.name}`, `Mesh ${route.mesh}: ${policySummary(resource)}`),
      h("section", { class: "card", id: "policy-yaml", "aria-labelledby": "policy-yaml-title" },
        h("h2", { id: "policy-yaml-title" }, "YAML"), h("pre", { class: "yaml", tabindex: "0" }, toYaml(resource))),
      h("section", { class: "card", id: "policy-proxies", "aria-labelledby": "policy-proxies-title" },
        h("h2", { id: "policy-proxies-title" }, "Proxies"),
        h("p", { id: "policy-counts" }, `Applies to ${plural(count("applied"), "proxy", "proxies")}`,
          `; displaced on ${count("displaced")}; outranked on ${count("outranked")}.`),
        attachments.items.length
          ? table("Where it applies, and where something else decides", ["Dataplane", "Role", "Detail"],
            attachmentRows(route, attachments.items), { id: "policy-table" })
          : h("p", { class: "muted" }, "It selects no proxy.")));
  },
  relevant: (event, route) => !event.mesh || event.mesh === route.mesh,
};
