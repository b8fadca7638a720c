"""HTTP API application (Kuma's routes on :5681), plus /metrics and health.

`create_app` only wires things; the store, metrics, inspector and auth are built by `cli/run.py` and passed
in. Without `auth` (the API tests' bare app) every request is allowed and there are no token routes. The
browser guard (origin.py: Host, Origin, Content-Type) runs in every app, before auth; `allowed_hosts`
defaults to what an API bound to 127.0.0.1 answers.
`/gui` serves the web GUI's files (gui.py) and `/events` the live change notifications it follows (sse.py);
without `events` (the API tests' bare app) the stream has a hub of its own that nothing feeds.
`/ready` means "can serve config" (what a load balancer or a Kubernetes readiness probe asks): 503 with a
short reason until `readiness` says the first full generation has published, 200 after. The API itself
answers from the first moment, so an operator can apply resources while the control plane still loads.
"""

from __future__ import annotations

import time
import uuid
from typing import Final

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from controlplane.api import auth as auth_routes
from controlplane.api import dry_run, fleet, gui, inspect_routes, mesh_insights, meta, resources, sse
from controlplane.api.errors import Handler, error_middleware
from controlplane.api.events import EventHub
from controlplane.api.inspection import Inspector
from controlplane.api.keys import AUTH, INSPECTOR, MAX_BODY, METRICS, READINESS, STORE, ApiAuth, Readiness
from controlplane.api.meta import INFO, ServerInfo
from controlplane.api.origin import ALLOWED_HOSTS, LOOPBACK_ONLY, AllowedHosts, browser_guard_middleware
from controlplane.observability import Metrics
from controlplane.store.base import Store

log = structlog.get_logger(__name__)

DEFAULT_MAX_BODY: Final = 1024 * 1024


@web.middleware
async def logging_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id for every log line of the request, and count requests by route and status."""
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:16]
    started = time.perf_counter()
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        response = await handler(request)
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        request.app[METRICS].api_requests.labels(request.method, route, str(response.status)).inc()
        log.debug("api_request", method=request.method, path=request.path, status=response.status,
                  duration_ms=round((time.perf_counter() - started) * 1000, 2))
        response.headers["X-Request-Id"] = request_id
        return response


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def ready(request: web.Request) -> web.Response:
    reason = request.app[READINESS]()
    if reason is not None:
        return web.json_response({"status": "not ready", "reason": reason}, status=503)
    return web.json_response({"status": "ok"})


def _always_ready() -> str | None:
    return None


def create_app(
    store: Store, metrics_: Metrics, inspector: Inspector | None = None, *, max_body: int = DEFAULT_MAX_BODY,
    auth: ApiAuth | None = None, allowed_hosts: AllowedHosts = LOOPBACK_ONLY, readiness: Readiness = _always_ready,
    info: ServerInfo | None = None, events: sse.LiveEvents | None = None, gui_files: gui.GuiFiles | None = None,
) -> web.Application:
    # Inside error_middleware, so refusals get Kuma bodies; the browser guard before auth, so a cross-site
    # request is refused as such even from loopback, where auth would let it through.
    middlewares = [logging_middleware, error_middleware, browser_guard_middleware]
    if auth is not None:
        middlewares.append(auth_routes.auth_middleware)
    app = web.Application(client_max_size=max_body, middlewares=middlewares)
    app[ALLOWED_HOSTS] = allowed_hosts
    app[STORE] = store
    app[METRICS] = metrics_
    app[MAX_BODY] = max_body
    app[READINESS] = readiness
    app[INFO] = info if info is not None else ServerInfo()
    if inspector is not None:
        app[INSPECTOR] = inspector
    meta.add_routes(app)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/ready", ready)
    resources.add_routes(app)
    mesh_insights.add_routes(app)
    if auth is not None:
        app[AUTH] = auth
        auth_routes.add_routes(app)
    inspect_routes.add_routes(app)
    fleet.add_routes(app)
    dry_run.add_routes(app)
    sse.add_routes(app, events if events is not None else sse.LiveEvents(EventHub()))
    gui.add_routes(app, gui_files if gui_files is not None else gui.load_gui())
    return app
