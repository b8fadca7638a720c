// Dataplane detail (issue 15 §3): tags; listeners (inbounds, outbounds) traced or not and why; matched
// policies in ranking or merge order and the effective tracing; xDS per type with ACK/NACK and Envoy's error;
// span flow per backend; the generated configuration as a searchable tree; the Envoy's own config dump on
// request. Per-dataplane routes may need a token (--api-read-auth): those sections say so, the rest shows.

import { AuthError, get, getText, seg } from "../api.js";
import { facts, h, table } from "../dom.js";
import { jsonTree, treeState } from "../jsontree.js";
import { dataplaneRow, tracingText, verdictInfo, xdsText } from "../model.js";
import { href } from "../router.js";
import { attempt, badge, heading, problem } from "../ui.js";

const POLICIES = 0, XDS = 1, SPANS = 2;

function section(id, title, ...content) {
  return h("section", { class: "card", id, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), content);
}

function tagsSection(item) {
  const inbounds = ((item.dataplane || {}).networking || {}).inbound || [];
  const outbounds = ((item.dataplane || {}).networking || {}).outbound || [];
  const tagList = (tags) => h("span", { class: "tags" }, Object.entries(tags || {}).map(([k, v]) => `${k}=${v}`).join(" "));
  return section("dp-tags", "Tags",
    table("Inbounds", ["Port", "Service port", "Tags"], inbounds.map((i) => [String(i.port), String(i.servicePort || ""), tagList(i.tags)])),
    outbounds.length ? table("Outbounds", ["Port", "Tags"], outbounds.map((o) => [String(o.port), tagList(o.tags)])) : null);
}

function listenersSection(result) {
  if (result.error) return section("dp-listeners", "Inbounds and outbounds", problem(result.error, "The listeners"));
  const rows = result.value.listeners.map((l) => [h("code", null, l.listener), l.service, l.protocol,
    l.traced ? badge("good", "✓", "traced") : badge("off", "–", "not traced"), l.reason || ""]);
  return section("dp-listeners", "Inbounds and outbounds",
    rows.length ? table("Generated listeners", ["Listener", "Service", "Protocol", "Tracing", "Why not"], rows, { id: "dp-listener-table" })
      : h("p", { class: "muted" }, "No listeners generated yet."));
}

function samplingText(tracing) {
  const all = tracing.samplingAll;
  if (all) return Object.entries(all).map(([k, v]) => `${k} ${v}%`).join(", ") || "Envoy's default (100%)";
  return tracing.samplingSet ? `${tracing.sampling}%` : `${tracing.sampling}% (Envoy's default)`;
}

function policiesSection(result, mesh, kinds) {
  if (result.error) return section("dp-policies", "Policies and effective tracing", problem(result.error, "The matched policies"));
  const body = result.value;
  const t = body.tracing;
  const wsOf = (kind) => (kinds.find((k) => k.name === kind) || { path: "" }).path;
  const matched = Object.entries(body.matchedPolicies).map(([kind, names]) => h("li", { dataset: { kind } },
    `${kind} (${kind === "MeshTrace" ? "merge order" : "ranking"}): `,
    names.map((n, i) => [i ? " → " : "", h("a", { href: href("policy", { mesh, ws: wsOf(kind), name: n }) }, n)])));
  const effective = t.enabled ? facts([["Tracing", badge("good", "✓", "on")], ["Decided by", t.policy || "TrafficTrace"],
    ["Backend", `${t.type} ${t.backend}`], ["Sampling", samplingText(t)],
    t.tags ? ["Tags", t.tags.map((tag) => tag.name).join(", ") || "none"] : null], { id: "dp-effective" })
    : facts([["Tracing", badge("off", "–", "off")], ["Why", t.message || t.reason || ""]], { id: "dp-effective" });
  return section("dp-policies", "Policies and effective tracing",
    matched.length ? h("ul", { class: "plain", id: "dp-matched" }, matched) : h("p", { class: "muted" }, "No policy targets this proxy."),
    (t.notApplied || []).map((n) => h("p", { class: "note" }, badge("warn", "!", "not applied"), ` ${n.message}`)),
    effective);
}

function xdsSection(result) {
  if (result.error) return section("dp-xds", "xDS", problem(result.error, "The xDS status"));
  const body = result.value;
  const rows = Object.entries(body.types).map(([type, e]) => {
    const state = !("versionSent" in e) ? badge("idle", "…", "not sent")
      : e.lastNackVersion && e.lastNackVersion === e.versionSent ? badge("bad", "✕", "NACKed")
        : e.versionAcked === e.versionSent ? badge("good", "✓", "ACKed") : badge("idle", "…", "pending ACK");
    return [type, h("code", null, e.version || ""), h("code", null, e.versionSent || ""), h("code", null, e.versionAcked || ""),
      state, String(e.nacks || 0), e.lastNackMessage ? h("span", { class: "nack" }, e.lastNackMessage) : ""];
  });
  return section("dp-xds", "xDS",
    facts([["Connected", body.connected ? `yes (${body.variant}${body.envoyVersion ? `, Envoy ${body.envoyVersion}` : ""})` : "no"]]),
    table("Per type", ["Type", "Version", "Sent", "ACKed", "State", "NACKs", "Envoy's last error"], rows, { id: "dp-xds-table" }));
}

function spansSection(result) {
  if (result.error) return section("dp-spans", "Span flow", problem(result.error, "The span flow"));
  return section("dp-spans", "Span flow", result.value.spans.map((s) => {
    const v = verdictInfo(s.verdict);
    const rate = s.perMinute ? `${s.perMinute.spansSent} spans, ${s.perMinute.accepted} reports accepted, ${s.perMinute.dropped} dropped, `
      + `${s.perMinute.failed} failed; ${s.perMinute.requests} requests, ${s.perMinute.sampled} sampled` : "no numbers yet";
    const totals = s.totals ? `${s.totals.spansSent} spans, ${s.totals.accepted} accepted, ${s.totals.dropped} dropped, ${s.totals.failed} failed` : "—";
    return h("div", { class: "spans", dataset: { backend: s.backend || "" } }, facts([
      ["Backend", s.backend ? `${s.type} ${s.backend}` : "none"], ["Verdict", badge(v.css, v.symbol, v.label)],
      ["Why", s.message], ["Per minute", rate], ["Totals", totals],
      ["Last accepted", s.lastSeen || "never"], ["Last report", s.lastReport || "never"]]));
  }));
}

function configSection(result, ui) {
  if (result.error) return section("dp-config", "Generated configuration", problem(result.error, "The generated configuration"));
  const resources = Object.fromEntries(Object.entries(result.value.types).map(([type, e]) => [type, e.resources || []]));
  ui.config = ui.config || treeState();
  return section("dp-config", "Generated configuration", jsonTree(resources, ui.config, "dp-config-search", "the configuration"));
}

function dumpSection(route, ui, rerender) {
  const body = [];
  if (ui.dump && ui.dump.error) body.push(problem(ui.dump.error, "The Envoy's config dump"));
  else if (ui.dump && ui.dump.value) body.push(jsonTree(ui.dump.value, ui.dumpTree, "dp-dump-search", "the config dump"));
  const fetchDump = async () => {
    ui.dumpTree = ui.dumpTree || treeState();
    try {
      const text = await getText(`/meshes/${seg(route.mesh)}/dataplanes/${seg(route.name)}/config-dump`);
      ui.dump = { value: JSON.parse(text) };
    } catch (error) {
      ui.dump = { error };
    }
    rerender();
  };
  return section("dp-dump", "Envoy config dump",
    h("p", null, "What the Envoy itself holds, through its runner (", h("code", null, "controlplane dataplane run"), "). ",
      h("button", { type: "button", id: "dp-dump-load", onclick: fetchDump }, ui.dump ? "Fetch again" : "Fetch the config dump")),
    body);
}

export const dataplane = {
  title: (route) => `Dataplane ${route.name}`,
  async load(route) {
    const base = `/meshes/${seg(route.mesh)}/dataplanes/${seg(route.name)}`;
    const [overview, ...results] = await Promise.all([get(`/meshes/${seg(route.mesh)}/dataplanes+insights/${seg(route.name)}`),
      attempt(get(`${base}/policies`)), attempt(get(`${base}/xds`)), attempt(get(`${base}/spans`))]);
    return { overview, results };
  },
  render(data, route, ctx) {
    const row = dataplaneRow(data.overview);
    const v = verdictInfo(row.tracing.verdict);
    const auth = data.results.map((r) => r.error).find((e) => e instanceof AuthError);
    if (auth) ctx.needToken(auth);
    return h("div", null,
      heading(`Dataplane ${route.name}`, `Mesh ${route.mesh}, service ${row.services.join(", ") || "—"}`),
      facts([["Status", row.online ? badge("good", "●", "online") : badge("offline", "⊘", "offline")],
        ["Envoy", row.envoy || "—"], ["xDS", xdsText(row.xds)], ["Tracing", tracingText(row.tracing)],
        ["Span verdict", badge(v.css, v.symbol, v.label)], ["Why", row.tracing.message || ""]], { id: "dp-summary" }),
      tagsSection(data.overview),
      listenersSection(data.results[POLICIES]),
      policiesSection(data.results[POLICIES], route.mesh, ctx.policyKinds),
      xdsSection(data.results[XDS]),
      spansSection(data.results[SPANS]),
      configSection(data.results[XDS], ctx.ui),
      dumpSection(route, ctx.ui, ctx.rerender));
  },
  relevant: (event, route) => !event.mesh || (event.mesh === route.mesh
    && (event.type === "resource" || event.type === "snapshot" || event.name === route.name)),
};
