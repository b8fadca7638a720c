"""Kuma's mesh insights: `GET /mesh-insights` and `GET /mesh-insights/{mesh}` (what `kumactl inspect meshes`
and kuma-gui's mesh overview read).

Kuma keeps a `MeshInsight` resource that a resyncer recomputes in the background; here it is computed on
request, which is cheap: every count is a `list(size=0)` (the stores answer with a COUNT, no row is decoded)
and "online" is a look-up in the ADS status registry through the Inspector (a dataplane is online while it
has an open ADS stream, Kuma's definition). Without an Inspector (an API with no xDS side) every dataplane
is offline. Shape as Kuma's (`api/mesh/v1alpha1/mesh_insight.proto`, golden
`app/kumactl/cmd/inspect/testdata/inspect-meshes.golden.json`): `policies` and `resources` list only kinds
with at least one resource, as Kuma's resyncer does; unlike protojson we write zero counts instead of
omitting them. Policy kinds come from the registry, so MeshTrace is counted once it is registered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from aiohttp import web

from controlplane.api.keys import INSPECTOR, STORE
from controlplane.api.resources import page_url, paging
from controlplane.resources.codec import format_time
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.resources.registry import KINDS
from controlplane.store.base import Store
from controlplane.xds.envoy_version import EnvoyVersion

UNKNOWN_VERSION = "unknown"  # Kuma's getOrDefault for a proxy that never reported one


def stat(total: int, online: int) -> dict[str, int]:
    return {"total": total, "online": online, "offline": total - online}


def insight_body(mesh: Resource, counts: Mapping[str, int], online: Mapping[str, EnvoyVersion | None]) -> dict[
        str, object]:
    """One MeshInsight: `counts` by Kuma type name (every mesh-scoped kind), `online` the connected
    dataplanes with their Envoy versions."""
    total = counts.get(DATAPLANE.name, 0)
    dataplanes = stat(total, len(online))
    versions = Counter(str(v) if v is not None else UNKNOWN_VERSION for v in online.values())
    envoy = {version: stat(n, n) for version, n in sorted(versions.items())}
    offline = total - len(online)
    if offline:  # we know the version of connected Envoys only
        known = envoy.get(UNKNOWN_VERSION, stat(0, 0))
        envoy[UNKNOWN_VERSION] = stat(known["total"] + offline, known["online"])
    empty = stat(0, 0)
    body: dict[str, object] = {"type": "MeshInsight", "name": mesh.name}
    if mesh.creation_time is not None and mesh.modification_time is not None:
        body["creationTime"] = format_time(mesh.creation_time)
        body["modificationTime"] = format_time(mesh.modification_time)
    body |= {
        "dataplanes": dataplanes,
        "dataplanesByType": {"standard": dataplanes, "gateway": empty, "gatewayBuiltin": empty,
                             "gatewayDelegated": empty},
        "policies": {kind.name: {"total": counts[kind.name]}
                     for kind in sorted(KINDS.policies(), key=lambda k: k.name) if counts.get(kind.name)},
        "dpVersions": {"kumaDp": {}, "envoy": envoy},
        "resources": {name: {"total": n} for name, n in sorted(counts.items()) if n},
    }
    return body


async def _insight(request: web.Request, mesh: Resource) -> dict[str, object]:
    store: Store = request.app[STORE]
    counts = {kind.name: (await store.list(kind, mesh.name, size=0)).total for kind in KINDS if kind.mesh_scoped}
    inspector = request.app.get(INSPECTOR)
    online = inspector.connected_dataplanes(mesh.name) if inspector is not None else {}
    return insight_body(mesh, counts, online)


async def list_mesh_insights(request: web.Request) -> web.Response:
    size, offset = paging(request)
    page = await request.app[STORE].list(MESH, offset=offset, size=size)
    items = [await _insight(request, mesh) for mesh in page.items]
    return web.json_response({"total": page.total, "items": items, "next": page_url(request, page.total, size, offset)})


async def get_mesh_insight(request: web.Request) -> web.Response:
    mesh = await request.app[STORE].get(ResourceKey(MESH, "", request.match_info["mesh"]))  # NotFound → 404
    return web.json_response(await _insight(request, mesh))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/mesh-insights", list_mesh_insights)
    app.router.add_get("/mesh-insights/{mesh}", get_mesh_insight)
