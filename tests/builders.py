"""Keyword-default fixtures: Resources for unit tests, and a minimal loader for Kuma-format YAML inputs.

The loader understands only the canonical form (spec fields inline next to type/name/mesh); the real codec
with Kuma's short forms lives in controlplane/resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.kind import Kind
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.resources.registry import KINDS

T0 = datetime(2024, 1, 1, tzinfo=UTC)
_META_KEYS = ("type", "name", "mesh", "creationTime", "modificationTime")


def resource(kind: Kind, name: str, spec: Any, mesh: str = "default", created: datetime = T0) -> Resource:
    key = ResourceKey(kind, "" if kind is MESH else mesh, name)
    return Resource(key=key, spec=spec, version=1, creation_time=created, modification_time=created)


def zipkin_backend(
    name: str = "zipkin",
    url: str = "http://zipkin.us:9090/v2/spans",
    sampling: float | None = None,
    **conf: Any,
) -> mesh_pb2.TracingBackend:
    """A zipkin backend; extra keyword arguments are conf keys in Kuma's camelCase (traceId128bit=True)."""
    return _backend(name, "zipkin", sampling, {"url": url, **conf})


def datadog_backend(
    name: str = "datadog",
    address: str = "1.1.1.1",
    port: int = 1111,
    sampling: float | None = None,
    **conf: Any,
) -> mesh_pb2.TracingBackend:
    return _backend(name, "datadog", sampling, {"address": address, "port": port, **conf})


def _backend(
    name: str, type_: str, sampling: float | None, conf: Mapping[str, Any]
) -> mesh_pb2.TracingBackend:
    data: dict[str, Any] = {"name": name, "type": type_, "conf": dict(conf)}
    if sampling is not None:
        data["sampling"] = sampling
    return json_format.ParseDict(data, mesh_pb2.TracingBackend())


def mesh(
    name: str = "default",
    backends: Sequence[mesh_pb2.TracingBackend] = (),
    default_backend: str = "",
    created: datetime = T0,
) -> Resource:
    spec = mesh_pb2.Mesh()
    if backends or default_backend:
        spec.tracing.default_backend = default_backend
        spec.tracing.backends.extend(backends)
    return resource(MESH, name, spec, created=created)


def traffic_trace(
    name: str = "trace-all",
    selectors: Sequence[Mapping[str, str]] = ({"kuma.io/service": "*"},),
    backend: str = "",
    mesh: str = "default",
    created: datetime = T0,
) -> Resource:
    spec = mesh_pb2.TrafficTrace()
    for match in selectors:
        spec.selectors.add().match.update(match)
    if backend:
        spec.conf.backend = backend
    return resource(TRAFFIC_TRACE, name, spec, mesh=mesh, created=created)


def inbound(
    port: int = 8080, service: str = "web", protocol: str | None = "http", **fields: Any
) -> dict[str, Any]:
    """An inbound in Kuma JSON form; `tags` in fields are merged over the service/protocol tags."""
    tags = {"kuma.io/service": service}
    if protocol is not None:
        tags["kuma.io/protocol"] = protocol
    tags.update(fields.pop("tags", {}))
    return {"port": port, "tags": tags, **fields}


def outbound(port: int = 10001, service: str = "backend", address: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {"port": port, "tags": {"kuma.io/service": service}}
    if address:
        data["address"] = address
    return data


def dataplane(
    name: str = "web-1",
    address: str = "127.0.0.1",
    inbounds: Iterable[Mapping[str, Any]] = (),
    outbounds: Iterable[Mapping[str, Any]] = (),
    mesh: str = "default",
    created: datetime = T0,
) -> Resource:
    networking = {"address": address, "inbound": list(inbounds), "outbound": list(outbounds)}
    spec = json_format.ParseDict({"networking": networking}, mesh_pb2.Dataplane())
    return resource(DATAPLANE, name, spec, mesh=mesh, created=created)


def load_resources(path: Path | str) -> list[Resource]:
    """Multi-document YAML in Kuma's format → Resources (creationTime optional; default T0 + document index)."""
    documents = [doc for doc in yaml.safe_load_all(Path(path).read_text()) if doc]
    return [_from_document(doc, T0 + timedelta(seconds=index)) for index, doc in enumerate(documents)]


def _from_document(document: Mapping[str, Any], default_created: datetime) -> Resource:
    kind = KINDS.by_type(document["type"])
    spec = json_format.ParseDict(
        {key: value for key, value in document.items() if key not in _META_KEYS}, kind.new_spec()
    )
    created = document.get("creationTime")
    if isinstance(created, str):
        created = datetime.fromisoformat(created)
    return resource(
        kind, document["name"], spec, mesh=document.get("mesh", ""), created=created or default_created
    )
