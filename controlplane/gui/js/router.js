// URLs of the GUI: one per view, mesh, dataplane and policy, below /gui/ (the server answers the page for
// every such path, so a deep link or a reload opens the same view). Links are ordinary <a href> elements;
// clicks on them are turned into history.pushState so the page is not reloaded.

export const BASE = "/gui/";

/** The route of a location: {view, mesh, name, ws, query}. */
export function parse(location) {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : "";
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(location.search);
  const route = { view: "overview", mesh: "", name: "", ws: "", query };
  if (parts[0] !== "meshes" || parts.length < 2) return parts.length ? { ...route, view: "missing" } : route;
  route.mesh = parts[1];
  const [, , section, first, second] = parts;
  if (section === undefined) return route;
  if (section === "dataplanes") return first ? { ...route, view: "dataplane", name: first } : { ...route, view: "dataplanes" };
  if (section === "policies") {
    return first && second ? { ...route, view: "policy", ws: first, name: second } : { ...route, view: "policies" };
  }
  if (section === "graph") return { ...route, view: "graph" };
  return { ...route, view: "missing" };
}

/** The href (relative to the page's <base>) of a view. */
export function href(view, { mesh = "", name = "", ws = "", query = null } = {}) {
  const m = mesh ? `meshes/${encodeURIComponent(mesh)}` : "";
  const paths = {
    overview: m || "./",
    dataplanes: `${m}/dataplanes`,
    dataplane: `${m}/dataplanes/${encodeURIComponent(name)}`,
    policies: `${m}/policies`,
    policy: `${m}/policies/${encodeURIComponent(ws)}/${encodeURIComponent(name)}`,
    graph: `${m}/graph`,
  };
  const search = query && [...new URLSearchParams(query)].length ? `?${new URLSearchParams(query)}` : "";
  return paths[view] + search;
}

/** Follow link clicks and back/forward; `onRoute(route)` runs for each new location. */
export function start(onRoute) {
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey
        || event.altKey || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href, document.baseURI);
    if (url.origin !== location.origin || !url.pathname.startsWith(BASE)) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener("popstate", () => onRoute(parse(location), { focus: true }));
  start.onRoute = onRoute;
}

/** Go to `path` (absolute, or relative to /gui/) without reloading; `replace` keeps history as is. */
export function navigate(path, { replace = false, focus = true } = {}) {
  const url = new URL(path, document.baseURI);
  if (url.pathname + url.search === location.pathname + location.search) return;
  history[replace ? "replaceState" : "pushState"](null, "", url.pathname + url.search);
  start.onRoute(parse(location), { focus });
}
