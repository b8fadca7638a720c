"""Kuma-style inspection routes; they answer 503 until the xDS side provides an Inspector.

A policy's dataplanes are routed for every policy kind (`/meshes/{mesh}/{ws}/{name}/dataplanes`, Kuma's
legacy path that `kumactl inspect <policy>` reads), and so are its attachments (`.../{name}/_attachments`,
this control plane's: the dataplanes it applies to, is displaced on or is outranked on, for the GUI).
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from controlplane.api import insights_views, inspect_views
from controlplane.api.errors import ApiError
from controlplane.api.inspection import Inspector
from controlplane.api.keys import INSPECTOR
from controlplane.resources.registry import KINDS
from controlplane.xds.admin_tunnel import VIEWS, TunnelTimeout, TunnelUnavailable


def inspector_of(request: web.Request) -> Inspector:
    inspector = request.app.get(INSPECTOR)
    if inspector is None:
        raise ApiError(503, "Could not inspect", "the xDS server is not running in this process")
    return inspector


async def dataplane_policies(request: web.Request) -> web.Response:
    m = request.match_info
    return web.json_response(inspect_views.policies_body(inspector_of(request).dataplane(m["mesh"], m["name"])))


async def dataplane_rules(request: web.Request) -> web.Response:
    m = request.match_info
    return web.json_response(inspect_views.rules_body(inspector_of(request).dataplane(m["mesh"], m["name"])))


async def policy_dataplanes(request: web.Request) -> web.Response:
    """Kuma's legacy `/meshes/{mesh}/{policies}/{name}/dataplanes` (what `kumactl inspect <policy>` reads)."""
    m = request.match_info
    kind = KINDS.by_ws_path(m["ws"])
    names = inspector_of(request).policy_dataplanes(kind, m["mesh"], m["name"])
    return web.json_response({"total": len(names), "items": [{"mesh": m["mesh"], "name": n} for n in names]})


async def policy_resources_dataplanes(request: web.Request) -> web.Response:
    """Kuma 2.x's `/meshes/{mesh}/{policies}/{name}/_resources/dataplanes`."""
    m = request.match_info
    kind = KINDS.by_ws_path(m["ws"])
    names = inspector_of(request).policy_dataplanes(kind, m["mesh"], m["name"])
    items = [{"type": "Dataplane", "mesh": m["mesh"], "name": n, "labels": {}} for n in names]
    return web.json_response({"items": items, "total": len(items)})


async def policy_attachments(request: web.Request) -> web.Response:
    """Where the policy applies, and where it selects a proxy but is displaced or outranked (GUI)."""
    m = request.match_info
    kind = KINDS.by_ws_path(m["ws"])
    attachments = inspector_of(request).policy_attachments(kind, m["mesh"], m["name"])
    return web.json_response(insights_views.attachments_body(m["mesh"], attachments))


async def dataplane_xds(request: web.Request) -> web.Response:
    m = request.match_info
    view = inspector_of(request).dataplane_xds(m["mesh"], m["name"])
    # Rendering every resource of a big proxy takes long; off the loop, so ADS and /ready keep their latency.
    body = await asyncio.to_thread(lambda: json.dumps(inspect_views.xds_body(view)))
    return web.Response(text=body, content_type="application/json")


async def envoy_view(request: web.Request) -> web.Response:
    """The Envoy's own view (`config-dump`, `stats`, `clusters`, as kumactl's `inspect dataplane --type`),
    passed through from its runner; 502 when no runner serves it, 504 when it does not answer."""
    m = request.match_info
    try:
        answer = await inspector_of(request).envoy_admin(m["mesh"], m["name"], m["view"])
    except TunnelUnavailable as exc:
        raise ApiError(502, "Could not reach the Envoy", str(exc)) from None
    except TunnelTimeout as exc:
        raise ApiError(504, "Could not reach the Envoy", str(exc)) from None
    if answer.status != 200:
        raise ApiError(502, "Could not read the Envoy", f"its admin answered HTTP {answer.status}")
    return web.Response(body=answer.body, content_type=answer.content_type or "text/plain")


def add_routes(app: web.Application) -> None:
    policies = "|".join(kind.ws_path for kind in KINDS.policies())
    app.router.add_get("/meshes/{mesh}/dataplanes/{name}/policies", dataplane_policies)
    app.router.add_get("/meshes/{mesh}/dataplanes/{name}/xds", dataplane_xds)
    app.router.add_get("/meshes/{mesh}/dataplanes/{name}/_rules", dataplane_rules)
    app.router.add_get(f"/meshes/{{mesh}}/dataplanes/{{name}}/{{view:{'|'.join(VIEWS)}}}", envoy_view)
    app.router.add_get(f"/meshes/{{mesh}}/{{ws:{policies}}}/{{name}}/dataplanes", policy_dataplanes)
    app.router.add_get(f"/meshes/{{mesh}}/{{ws:{policies}}}/{{name}}/_resources/dataplanes", policy_resources_dataplanes)
    app.router.add_get(f"/meshes/{{mesh}}/{{ws:{policies}}}/{{name}}/_attachments", policy_attachments)
