"""Kuma-style inspection routes; they answer 503 until the xDS side provides an Inspector."""

from __future__ import annotations

from aiohttp import web

from controlplane.api.errors import ApiError
from controlplane.api.inspection import Inspector
from controlplane.api.keys import INSPECTOR


def _inspector(request: web.Request) -> Inspector:
    inspector = request.app.get(INSPECTOR)
    if inspector is None:
        raise ApiError(503, "Could not inspect", "the xDS server is not running in this process")
    return inspector


async def dataplane_policies(request: web.Request) -> web.Response:
    m = request.match_info
    return web.json_response(await _inspector(request).dataplane_policies(m["mesh"], m["name"]))


async def traffic_trace_dataplanes(request: web.Request) -> web.Response:
    m = request.match_info
    return web.json_response(await _inspector(request).traffic_trace_dataplanes(m["mesh"], m["name"]))


async def dataplane_xds(request: web.Request) -> web.Response:
    m = request.match_info
    return web.json_response(await _inspector(request).dataplane_xds(m["mesh"], m["name"]))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/meshes/{mesh}/dataplanes/{name}/policies", dataplane_policies)
    app.router.add_get("/meshes/{mesh}/dataplanes/{name}/xds", dataplane_xds)
    app.router.add_get("/meshes/{mesh}/traffic-traces/{name}/dataplanes", traffic_trace_dataplanes)
