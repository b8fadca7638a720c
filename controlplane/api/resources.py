"""Kuma's resource routes (reference kuma-tracing.md §5): list, get, put, delete per kind.

Handlers are plain functions; errors are raised and turned into Kuma bodies by `errors.error_middleware`.
"""

from __future__ import annotations

import json
from typing import Final

import structlog
from aiohttp import web

from controlplane.api import dry_run as dry_run_module
from controlplane.api.errors import ApiError
from controlplane.api.keys import STORE
from controlplane.api.service import Outcome, apply_resource, get_or_none
from controlplane.errors import ValidationError, Violation
from controlplane.resources.codec import decode_resource, encode_resource
from controlplane.resources.kind import Kind
from controlplane.resources.mesh import MESH
from controlplane.resources.model import ResourceKey
from controlplane.resources.registry import KINDS

log = structlog.get_logger(__name__)

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
_PROCESS: Final = "Could not process a resource"


def _kind(request: web.Request) -> Kind:
    ws = request.match_info.get("ws", MESH.ws_path)
    try:
        return KINDS.by_ws_path(ws)
    except ValueError:
        raise web.HTTPNotFound(text=f"unknown resource type {ws}") from None


def _key(request: web.Request) -> ResourceKey:
    kind = _kind(request)
    mesh = request.match_info.get("mesh", "") if kind.mesh_scoped else ""
    return ResourceKey(kind, mesh, request.match_info["name"])


def paging(request: web.Request) -> tuple[int, int]:
    """`?size=&offset=` of a list request (Kuma's defaults and bounds), or Kuma's 400."""
    try:
        size = int(request.query.get("size", DEFAULT_PAGE_SIZE))
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValueError
    except ValueError:
        raise ApiError(400, "Could not list resources", "Invalid page size",
                       [Violation("size", f"must be an integer in the range [1, {MAX_PAGE_SIZE}]")]) from None
    try:
        offset = int(request.query.get("offset", 0))
        if offset < 0:
            raise ValueError
    except ValueError:
        raise ApiError(400, "Could not list resources", "Invalid offset",
                       [Violation("offset", "must be a non-negative integer")]) from None
    return size, offset


async def list_resources(request: web.Request) -> web.Response:
    kind = _kind(request)
    size, offset = paging(request)
    mesh = request.match_info.get("mesh")
    page = await request.app[STORE].list(kind, mesh, offset=offset, size=size)
    next_url = page_url(request, page.total, size, offset)
    return web.json_response(
        {"total": page.total, "items": [encode_resource(r) for r in page.items], "next": next_url}
    )


def page_url(request: web.Request, total: int, size: int, offset: int) -> str | None:
    """Kuma's `next`: this request's absolute URL at the next offset, None on the last page."""
    if offset + size >= total:
        return None
    return str(request.url.update_query(offset=offset + size, size=size))


async def get_resource(request: web.Request) -> web.Response:
    resource = await request.app[STORE].get(_key(request))
    return web.json_response(encode_resource(resource))


async def delete_resource(request: web.Request) -> web.Response:
    key = _key(request)
    await request.app[STORE].delete(key)
    log.info("resource_deleted", type=key.kind.value, mesh=key.mesh, name=key.name)
    return web.json_response({})


async def put_resource(request: web.Request) -> web.Response:
    key = _key(request)
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the decoder's stack
        raise ApiError(400, _PROCESS, f"invalid JSON: {exc}") from None
    if isinstance(body, dict):
        _check_url_matches_body(body, key)
    dry_run = request.query.get("dryRun", "false").lower() in ("1", "true", "yes")
    store = request.app[STORE]
    try:
        result = await apply_resource(store, decode_resource(body), dry_run=dry_run)
    except ValidationError as exc:
        exists = await get_or_none(store, key) is not None
        title = "Could not update a resource" if exists else "Could not create a resource"
        raise ApiError(400, title, exc.details, exc.violations) from None
    log.info("resource_applied", type=key.kind.value, mesh=key.mesh, name=key.name,
             outcome=result.outcome.value, dry_run=dry_run, warnings=list(result.warnings))
    payload: dict[str, object] = {"result": result.outcome.value}
    if result.warnings:
        payload["warnings"] = list(result.warnings)
    if dry_run:
        payload["dryRun"] = True
        (effect,) = await dry_run_module.effects_of(request, [result.resource])
        if effect is not None:
            payload["changes"] = dry_run_module.changes_body(effect.changes)
    return web.json_response(payload, status=201 if result.outcome is Outcome.CREATED else 200)


def _check_url_matches_body(body: dict[str, object], key: ResourceKey) -> None:
    """Fill type/name/mesh from the URL when the body omits them; a disagreement is Kuma's 400."""
    expected = {"type": key.kind.value, "name": key.name}
    if key.kind.mesh_scoped:
        expected["mesh"] = key.mesh
    causes = []
    for fld, value in expected.items():
        body.setdefault(fld, value)
        if body[fld] != value:
            causes.append(Violation(fld, f"{fld} from the URL has to be the same as in body"))
    if causes:
        raise ApiError(400, _PROCESS, "Resource is not valid", causes)


def add_routes(app: web.Application) -> None:
    """Kuma's routes for every kind of the registry: the global Mesh, and each mesh-scoped kind."""
    ws = "{ws:" + "|".join(kind.ws_path for kind in KINDS if kind.mesh_scoped) + "}"
    app.router.add_get("/meshes", list_resources)
    app.router.add_get("/meshes/{name}", get_resource)
    app.router.add_put("/meshes/{name}", put_resource)
    app.router.add_delete("/meshes/{name}", delete_resource)
    app.router.add_get(f"/meshes/{{mesh}}/{ws}", list_resources)
    app.router.add_get(f"/meshes/{{mesh}}/{ws}/{{name}}", get_resource)
    app.router.add_put(f"/meshes/{{mesh}}/{ws}/{{name}}", put_resource)
    app.router.add_delete(f"/meshes/{{mesh}}/{ws}/{{name}}", delete_resource)
    app.router.add_get(f"/{ws}", list_resources)
