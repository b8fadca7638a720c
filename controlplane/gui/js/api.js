// The HTTP API as the GUI reads it: same origin, the reader's token (if any) as `Authorization: Bearer`.
// A 401 or 403 is an AuthError, which views show as "a token is needed", never as a broken page.

const TOKEN_KEY = "controlplane.token";
const PAGE = 1000;

export class AuthError extends Error {
  constructor(status, body, path) {
    super((body && body.details) || `HTTP ${status}`);
    this.status = status;
    this.path = path;
  }
}

export class ApiError extends Error {
  constructor(status, body, path) {
    const title = body && body.title ? `${body.title}: ` : "";
    super(`${title}${(body && body.details) || `HTTP ${status}`}`);
    this.status = status;
    this.path = path;
  }
}

export function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
}

export function setToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lives as long as nothing */ }
}

async function request(path, accept) {
  const headers = { Accept: accept };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const response = await fetch(path, { headers, cache: "no-store", credentials: "same-origin" });
  if (response.ok) return response;
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (response.status === 401 || response.status === 403) throw new AuthError(response.status, body, path);
  throw new ApiError(response.status, body, path);
}

/** GET a JSON body. */
export async function get(path) {
  return (await request(path, "application/json")).json();
}

/** GET a text body (an Envoy's own admin output). */
export async function getText(path) {
  return (await request(path, "*/*")).text();
}

/** Every item of a paged list (Kuma's `{total, items, next}`), a thousand at a time. */
export async function getAll(path) {
  const items = [];
  const sep = path.includes("?") ? "&" : "?";
  for (;;) {
    const page = await get(`${path}${sep}size=${PAGE}&offset=${items.length}`);
    items.push(...page.items);
    if (!page.next || page.items.length === 0 || items.length >= page.total) return items;
  }
}

/** A path segment, encoded. */
export function seg(value) {
  return encodeURIComponent(value);
}
