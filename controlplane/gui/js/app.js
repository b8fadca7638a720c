// The GUI's shell: navigation, the mesh picker, the live connection, the token form, and the loop that loads
// and renders the current view. A view is {title, load(route, ctx), render(data, route, ctx), relevant(event,
// route)}; live events that concern the current view refetch it (one refetch at a time, the next one queued),
// so the page follows the control plane without reloads. `window.controlplaneGui` counts renders and keeps
// the time of the last one (performance.now()) for the browser tests and the benchmark.

import { AuthError, ApiError, get, setToken, token } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { follow } from "./live.js";
import { href, navigate, parse, start } from "./router.js";
import { heading } from "./ui.js";
import { dataplane } from "./views/dataplane.js";
import { dataplanes } from "./views/dataplanes.js";
import { graph } from "./views/graph.js";
import { overview } from "./views/overview.js";
import { policies, policy } from "./views/policies.js";

const missing = {
  title: () => "Not found",
  load: async () => null,
  render: () => h("div", null, heading("Not found"), h("p", null, "No view has this address. ", h("a", { href: "./" }, "Overview"))),
};
const VIEWS = { overview, dataplanes, dataplane, policies, policy, graph, missing };
const NAV = [["overview", "Overview"], ["dataplanes", "Dataplanes"], ["policies", "Policies"], ["graph", "Service graph"]];

const main = document.getElementById("main");
const state = {
  route: parse(location), data: null, dataKey: "", meshes: [], policyKinds: [], uis: new Map(),
  loading: false, again: false, seq: 0, timer: 0, lastLoadStart: 0,
};
const stats = { renders: 0, lastRender: 0, events: 0, firstRender: 0, loads: 0, lastLoadMs: 0 };
const MIN_GAP_MS = 200;
window.controlplaneGui = stats;

function routeKey(route) {
  return `${route.view}|${route.mesh}|${route.ws}|${route.name}`;
}

function ui(route) {
  const key = routeKey(route);
  if (!state.uis.has(key)) state.uis.set(key, {});
  return state.uis.get(key);
}

function defaultMesh() {
  return state.route.mesh || (state.meshes.includes("default") ? "default" : state.meshes[0] || "");
}

function drawNav() {
  const mesh = defaultMesh();
  const current = state.route.view === "dataplane" ? "dataplanes" : state.route.view === "policy" ? "policies" : state.route.view;
  replaceChildren(document.getElementById("nav"), h("ul", null, NAV.map(([view, text]) => {
    const target = view === "overview" ? href("overview", { mesh: state.route.mesh }) : mesh ? href(view, { mesh }) : null;
    return h("li", null, target ? h("a", { href: target, "aria-current": current === view ? "page" : null }, text)
      : h("span", { class: "muted" }, text));
  })));
  const select = document.getElementById("mesh-select");
  replaceChildren(select, h("option", { value: "" }, "all meshes"),
    state.meshes.map((m) => h("option", { value: m, selected: m === state.route.mesh }, m)));
}

function showAuth(error) {
  const panel = document.getElementById("auth");
  document.getElementById("auth-message").textContent = token()
    ? `The token given was not accepted: ${error.message}.`
    : `The control plane protects this read (per-dataplane configuration needs an admin token or that dataplane's own token): ${error.message}.`;
  panel.hidden = false;
}

function hideAuth() {
  document.getElementById("auth").hidden = true;
}

function errorView(error) {
  if (error instanceof AuthError) {
    showAuth(error);
    return h("div", null, heading("A token is needed"), h("p", { class: "needs-token" }, "Give a token above to see this view."));
  }
  const status = error instanceof ApiError ? error.status : 0;
  return h("div", null, heading(status === 404 ? "Not found" : "Could not load this view"),
    h("p", { class: "problem", role: "alert" }, error.message), h("p", null, h("a", { href: "./" }, "Overview")));
}

async function loadMeshes() {
  try {
    const [meshes, resources] = await Promise.all([get("/meshes?size=1000"), get("/_resources")]);
    state.meshes = meshes.items.map((m) => m.name);
    state.policyKinds = resources.resources.filter((r) => r.policy && r.scope === "Mesh");
  } catch (error) {
    state.meshes = [];
  }
  drawNav();
}

function context(route) {
  let authError = null;
  return {
    ui: ui(route), policyKinds: state.policyKinds, meshes: state.meshes,
    needToken: (error) => { authError = error; },
    rerender: () => render(false),
    authError: () => authError,
  };
}

function render(focus) {
  const view = VIEWS[state.route.view];
  const ctx = context(state.route);
  let node;
  try {
    node = state.data && state.data.error ? errorView(state.data.error) : view.render(state.data.value, state.route, ctx);
  } catch (error) {
    node = errorView(error);
  }
  if (ctx.authError()) showAuth(ctx.authError());
  else if (!(state.data && state.data.error instanceof AuthError)) hideAuth();
  replaceChildren(main, node);
  document.title = `${view.title(state.route, state.policyKinds)} · controlplane`;
  stats.renders += 1;
  stats.lastRender = performance.now();
  document.documentElement.dataset.renders = String(stats.renders);
  if (!stats.firstRender) {
    stats.firstRender = stats.lastRender;
    performance.mark("gui:first-render");
  }
  if (focus) {
    const title = document.getElementById("view-title");
    if (title) title.focus({ preventScroll: false });
  }
}

/** Load the current route's data and render it; a call while one runs queues exactly one more. */
async function refresh(focus = false) {
  if (state.loading) {
    state.again = true;
    return;
  }
  state.loading = true;
  const seq = ++state.seq;
  const route = state.route;
  const view = VIEWS[route.view];
  const started = performance.now();
  state.lastLoadStart = started;
  try {
    await kindsLoaded; // views read the policy kinds; the first load waits for them once
    state.data = { value: await view.load(route, context(route)) };
  } catch (error) {
    state.data = { error };
  } finally {
    state.loading = false;
    stats.loads += 1;
    stats.lastLoadMs = performance.now() - started;
  }
  if (seq === state.seq && route === state.route) {
    state.dataKey = routeKey(route) + (view.reloadOnQuery ? `?${route.query}` : "");
    render(focus);
  }
  if (state.again || route !== state.route) {
    state.again = false;
    refresh(false);
  }
}

function onRoute(route, { focus } = { focus: true }) {
  const view = VIEWS[route.view];
  const sameData = routeKey(route) + (view.reloadOnQuery ? `?${route.query}` : "") === state.dataKey;
  state.route = route;
  drawNav();
  if (sameData && state.data) render(focus); // only the query changed (filter, sort, page): no refetch
  else {
    state.data = null;
    replaceChildren(main, h("p", { class: "loading" }, "Loading…"));
    refresh(focus);
  }
}

/** A live refetch, at most one per max(MIN_GAP_MS, twice the last load's time) so a big mesh's view (a
 * thousand proxies: a 1.5 MB body) is not reloaded five times a second while a mesh-wide change is ACKed. */
function scheduleRefresh() {
  if (state.timer) return;
  const gap = Math.max(MIN_GAP_MS, 2 * stats.lastLoadMs);
  const wait = Math.max(0, (state.lastLoadStart || 0) + gap - performance.now());
  state.timer = setTimeout(() => {
    state.timer = 0;
    refresh(false);
  }, wait);
}

function onChanges(batch) {
  stats.events += batch.events.length;
  const view = VIEWS[state.route.view];
  if (batch.events.some((e) => e.type === "resource" && e.kind === "Mesh")) loadMeshes();
  if (batch.resync || !view.relevant || batch.events.some((e) => view.relevant(e, state.route))) scheduleRefresh();
}

document.getElementById("mesh-select").addEventListener("change", (event) => {
  const mesh = event.target.value;
  const view = { dataplane: "dataplanes", policy: "policies" }[state.route.view] || state.route.view;
  navigate(mesh ? href(view === "missing" ? "overview" : view, { mesh }) : href("overview"));
});
document.getElementById("auth-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("auth-token");
  setToken(input.value.trim());
  input.value = "";
  hideAuth();
  refresh(false);
});
document.getElementById("auth-forget").addEventListener("click", () => {
  setToken("");
  refresh(false);
});

// The first load waits for the event stream's hello (so nothing that changes after it is missed, and it is
// not loaded twice), but not longer than a second: without live updates the page still shows the data.
start(onRoute);
drawNav();
const kindsLoaded = loadMeshes();
let hellos = 0;
const fallback = setTimeout(() => { if (!hellos) refresh(false); }, 1000);
follow({
  onHello: () => {
    hellos += 1;
    clearTimeout(fallback);
    if (hellos > 1) loadMeshes();
    refresh(false);
  },
  onChanges,
  indicator: document.getElementById("live"),
  text: document.getElementById("live-text"),
});
