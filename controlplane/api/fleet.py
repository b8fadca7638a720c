"""Fleet and span-flow routes: Kuma's `dataplanes+insights`, the Envoys without a Dataplane, the span-flow
verdicts of a dataplane and of a mesh, and the mesh's service graph (services, their dependencies and where
tracing works: what the GUI draws). 503 until the xDS side provides an Inspector.

`GET /meshes/{mesh}/dataplanes/{name}/spans` is below a dataplane, so `--api-read-auth` protects it like
every per-dataplane inspection route (api/auth.py); the others show no more than `GET /dataplanes` does.
Lists page like every list (`size`, `offset`, `next`); `?tag=KEY:VALUE` (repeatable) keeps the Dataplanes
with an inbound carrying every given tag, as Kuma's `dataplanes+insights` does.
"""

from __future__ import annotations

from aiohttp import web

from controlplane.api import insights_views
from controlplane.api.errors import ApiError
from controlplane.api.inspect_routes import inspector_of
from controlplane.api.resources import paging
from controlplane.errors import Violation
from controlplane.xds.inspect import DataplaneOverview


async def list_overviews(request: web.Request) -> web.Response:
    size, offset = paging(request)
    tags = _tags(request)
    overviews = [o for o in inspector_of(request).dataplane_overviews(request.match_info.get("mesh"))
                 if _has_tags(o, tags)]
    page = overviews[offset:offset + size]
    next_url = str(request.url.update_query(offset=offset + size, size=size)) if offset + size < len(overviews) else None
    return web.json_response({"total": len(overviews), "items": [insights_views.overview_body(o) for o in page],
                              "next": next_url})


async def get_overview(request: web.Request) -> web.Response:
    m = request.match_info
    return web.json_response(insights_views.overview_body(inspector_of(request).dataplane_overview(m["mesh"], m["name"])))


async def unknown_dataplanes(request: web.Request) -> web.Response:
    return web.json_response(insights_views.ghosts_body(inspector_of(request).ghosts()))


async def dataplane_spans(request: web.Request) -> web.Response:
    m = request.match_info
    verdict = inspector_of(request).spans(m["mesh"], m["name"])
    return web.json_response(insights_views.dataplane_spans_body(m["mesh"], m["name"], verdict))


async def mesh_spans(request: web.Request) -> web.Response:
    return web.json_response(insights_views.mesh_spans_body(inspector_of(request).mesh_spans(request.match_info["mesh"])))


async def service_graph(request: web.Request) -> web.Response:
    graph = inspector_of(request).service_graph(request.match_info["mesh"])
    return web.json_response(insights_views.service_graph_body(graph))


def _tags(request: web.Request) -> list[tuple[str, str]]:
    tags = []
    for raw in request.query.getall("tag", []):
        key, sep, value = raw.partition(":")
        if not sep or not key:
            raise ApiError(400, "Could not list resources", "Invalid tag filter",
                           [Violation("tag", f"expected KEY:VALUE, got {raw!r}")])
        tags.append((key, value))
    return tags


def _has_tags(overview: DataplaneOverview, tags: list[tuple[str, str]]) -> bool:
    if not tags:
        return True
    inbounds = overview.dataplane.spec.networking.inbound
    return any(all(inbound.tags.get(k) == v for k, v in tags) for inbound in inbounds)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/dataplanes+insights", list_overviews)
    app.router.add_get("/meshes/{mesh}/dataplanes+insights", list_overviews)
    app.router.add_get("/meshes/{mesh}/dataplanes+insights/{name}", get_overview)
    app.router.add_get("/unknown-dataplanes", unknown_dataplanes)
    app.router.add_get("/meshes/{mesh}/dataplanes/{name}/spans", dataplane_spans)
    app.router.add_get("/meshes/{mesh}/spans", mesh_spans)
    app.router.add_get("/meshes/{mesh}/service-graph", service_graph)
