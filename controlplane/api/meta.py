"""What the API says about the control plane itself: Kuma's index (`GET /`), the resource type descriptors
(`GET /_resources`) and the effective configuration (`GET /config`).

Shapes are Kuma's (`pkg/api-server/index_endpoints.go`, `mappers/resource_type_description.go`,
`config_ws.go`). The descriptors come from the kind registry, so a kind added there (MeshTrace) is listed
without an edit here; a policy's `isTargetRef`/`hasToTargetRef`/`hasFromTargetRef` are read from its spec's
fields (`targetRef`, `to`, `from`), which is what they mean in Kuma. The configuration is built and redacted by
whoever runs the process (`cli/config_view.py`): this module only serves it. Must not: read the environment
or any file.
"""

from __future__ import annotations

import secrets
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from controlplane import __version__
from controlplane.resources.kind import Kind
from controlplane.resources.registry import KINDS
from controlplane.resources.schema import json_field_names

PRODUCT: Final = "controlplane"
TAGLINE: Final = "Kuma-compatible tracing control plane"
GUI_PATH: Final = "/gui"
"""Where the web GUI is served (api/gui.py); Kuma's index names its GUI's base path the same way."""
MESH_INSIGHT: Final = {
    "includeInFederation": False, "name": "MeshInsight", "path": "mesh-insights",
    "pluralDisplayName": "Mesh Insights", "readOnly": True, "scope": "Global",
    "singularDisplayName": "Mesh Insight",
}
"""Served by `api/mesh_insights.py`: computed on request, not a stored kind, but a type Kuma lists."""


def new_instance_id() -> str:
    """Kuma's form: the host name and a short random suffix, new for every process."""
    return f"{socket.gethostname()}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """Identity and effective configuration of the running control plane, for `GET /` and `GET /config`.

    `cluster_id` is the same for every replica of one store (cli/config_view.py derives it from the store's
    identity); `config` returns the configuration in force, already redacted (a function: the API's own port
    is known only once it listens)."""

    instance_id: str = field(default_factory=new_instance_id)
    cluster_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    config: Callable[[], Mapping[str, object]] = dict


INFO: Final = web.AppKey("server_info", ServerInfo)


def index_body(info: ServerInfo) -> dict[str, object]:
    return {"hostname": socket.gethostname(), "tagline": TAGLINE, "product": PRODUCT, "version": __version__,
            "instanceId": info.instance_id, "clusterId": info.cluster_id, "gui": GUI_PATH}


def descriptor(kind: Kind) -> dict[str, object]:
    """Kuma's `ResourceTypeDescription` of one kind (keys sorted, as Kuma's golden files show them)."""
    body: dict[str, object] = {
        # Kuma's KDS flag: what an operator defines (meshes, policies) is synced from global to zones;
        # dataplanes belong to their zone.
        "includeInFederation": kind.policy or not kind.mesh_scoped,
        "name": kind.name,
        "path": kind.ws_path,
        "pluralDisplayName": kind.plural_display_name,
        "readOnly": False,
        "scope": "Mesh" if kind.mesh_scoped else "Global",
        "singularDisplayName": kind.singular_display_name,
    }
    if kind.policy:
        fields = set(json_field_names(kind.spec_type.DESCRIPTOR))
        body["policy"] = {"hasFromTargetRef": "from" in fields, "hasToTargetRef": "to" in fields,
                          "isFromAsRules": False, "isTargetRef": kind.target_ref or "targetRef" in fields}
    return dict(sorted(body.items()))


async def index(request: web.Request) -> web.Response:
    return web.json_response(index_body(request.app[INFO]))


async def resource_types(request: web.Request) -> web.Response:
    resources = [descriptor(kind) for kind in KINDS] + [MESH_INSIGHT]
    return web.json_response({"resources": sorted(resources, key=lambda r: str(r["name"]))})


async def effective_config(request: web.Request) -> web.Response:
    return web.json_response(dict(request.app[INFO].config()))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/_resources", resource_types)
    app.router.add_get("/config", effective_config)
