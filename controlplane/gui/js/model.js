// What the views show, derived from API bodies in one place: a dataplane's row (from Kuma's
// DataplaneOverview, `GET /meshes/{mesh}/dataplanes+insights`), its overview category, and how states read.
// Every state has a text label and a symbol as well as a colour: state is never shown by colour alone.

export const SERVICE_TAG = "kuma.io/service";

/** Span-flow verdicts (controlplane/spans/verdict.py) and how each reads; `rank` orders worst first. */
export const VERDICTS = {
  "collector unreachable": { css: "bad", symbol: "✕", label: "collector unreachable", rank: 0 },
  "collector rejecting": { css: "bad", symbol: "✕", label: "collector rejecting", rank: 1 },
  "no stats": { css: "unknown", symbol: "?", label: "no stats yet", rank: 2 },
  "no sampled requests": { css: "warn", symbol: "!", label: "no sampled requests", rank: 3 },
  "no traffic": { css: "idle", symbol: "○", label: "no traffic", rank: 4 },
  flowing: { css: "good", symbol: "✓", label: "spans flowing", rank: 5 },
  "not traced": { css: "off", symbol: "–", label: "not traced", rank: 6 },
};

/** Overview categories, in display order (issue 15 §1); `offline` wins over any verdict. */
export const CATEGORIES = [
  { id: "flowing", label: "traced, spans flowing", css: "good", symbol: "✓" },
  { id: "unreachable", label: "traced, collector unreachable", css: "bad", symbol: "✕" },
  { id: "rejecting", label: "traced, collector rejecting", css: "bad", symbol: "✕" },
  { id: "no-sampled", label: "traced, no sampled requests", css: "warn", symbol: "!" },
  { id: "no-traffic", label: "traced, no traffic", css: "idle", symbol: "○" },
  { id: "no-stats", label: "traced, no stats yet", css: "unknown", symbol: "?" },
  { id: "not-traced", label: "not traced", css: "off", symbol: "–" },
  { id: "offline", label: "offline", css: "offline", symbol: "⊘" },
];

const CATEGORY_OF_VERDICT = {
  flowing: "flowing", "collector unreachable": "unreachable", "collector rejecting": "rejecting",
  "no sampled requests": "no-sampled", "no traffic": "no-traffic", "no stats": "no-stats", "not traced": "not-traced",
};

export function verdictInfo(verdict) {
  return VERDICTS[verdict] || { css: "unknown", symbol: "?", label: verdict || "unknown", rank: 2 };
}

function tagsOf(dataplane) {
  const tags = {};
  for (const inbound of (dataplane.networking && dataplane.networking.inbound) || []) {
    for (const [key, value] of Object.entries(inbound.tags || {})) {
      (tags[key] = tags[key] || new Set()).add(value);
    }
  }
  return Object.fromEntries(Object.entries(tags).sort().map(([key, values]) => [key, [...values].sort()]));
}

/** One dataplane as the table and the overview use it. */
export function dataplaneRow(item) {
  const insight = item.dataplaneInsight || {};
  const subscriptions = insight.subscriptions || [];
  const metadata = insight.metadata || {};
  const tracing = metadata.tracing || { verdict: "not traced", message: "unknown" };
  const xds = metadata.xds || { state: "offline" };
  const tags = tagsOf(item.dataplane || {});
  const last = subscriptions[subscriptions.length - 1] || {};
  const online = subscriptions.some((s) => !s.disconnectTime);
  const row = {
    mesh: item.mesh, name: item.name, tags, services: tags[SERVICE_TAG] || [], online, xds, tracing,
    envoy: (((last.version || {}).envoy) || {}).version || "",
    outbounds: ((item.dataplane || {}).networking || {}).outbound || [],
  };
  row.category = online ? (CATEGORY_OF_VERDICT[tracing.verdict] || "no-stats") : "offline";
  row.search = [row.name, ...row.services, ...Object.entries(tags).map(([k, v]) => `${k}=${v.join(",")}`),
    online ? "online" : "offline", xds.state, tracing.verdict, tracing.message || "", tracing.backend || "",
    tracing.policyKind || ""].join(" ").toLowerCase();
  return row;
}

/** How the applied tracing reads in one line: "TrafficTrace → zipkin jaeger-collector", or why not. */
export function tracingText(tracing) {
  if (tracing.verdict === "not traced") return `not traced: ${tracing.message}`;
  const backend = tracing.backend && tracing.backend !== tracing.type ? ` ${tracing.backend}` : "";
  return `${tracing.policyKind || "traced"} → ${tracing.type || tracing.backend || "?"}${backend}`;
}

/** The xDS state in words: acked / pending ACK / NACKed (types) / offline. */
export function xdsText(xds) {
  if (xds.state === "nacked") {
    return `NACKed: ${(xds.nacked || []).map((n) => `${n.type} ${n.version}`).join(", ")}`;
  }
  return { acked: "ACKed", pending: "pending ACK", offline: "not connected" }[xds.state] || xds.state;
}

/** Counts per category (and, for not traced, per reason) of a mesh's rows. */
export function countCategories(rows) {
  const counts = Object.fromEntries(CATEGORIES.map((c) => [c.id, 0]));
  const reasons = new Map();
  for (const row of rows) {
    counts[row.category] += 1;
    if (row.category === "not-traced") {
      const reason = row.tracing.message || "unknown";
      reasons.set(reason, (reasons.get(reason) || 0) + 1);
    }
  }
  return { counts, reasons: [...reasons.entries()].sort((a, b) => a[0].localeCompare(b[0])) };
}
