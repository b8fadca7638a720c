"""The tracing backend types, keyed by `type`, and the two generic operations that need all of them.

Adding a backend type is one module implementing `BackendType` plus its entry in `BACKEND_TYPES` (and in
`MESH_BACKEND_TYPES` if a Mesh may declare it; docs/architecture.md, "Adding a tracing backend"). The order
of the Mesh entries is the order in Kuma's "Available backends" message.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from envoy.config.trace.v3 import http_tracer_pb2

from controlplane.tracing.backend import BackendType, MeshBackendType
from controlplane.tracing.datadog import DATADOG
from controlplane.tracing.opentelemetry import OPENTELEMETRY
from controlplane.tracing.zipkin import ZIPKIN

MESH_BACKEND_TYPES: Final[Mapping[str, MeshBackendType]] = MappingProxyType(
    {b.type_name: b for b in (ZIPKIN, DATADOG)})
"""What a Mesh's `tracing.backends[].type` may be (Kuma's TrafficTrace era)."""
BACKEND_TYPES: Final[Mapping[str, BackendType]] = MappingProxyType(
    {b.type_name: b for b in (ZIPKIN, DATADOG, OPENTELEMETRY)})
_BY_TRACER: Final[Mapping[str, BackendType]] = MappingProxyType({b.tracer_name: b for b in BACKEND_TYPES.values()})


def unknown_type_message() -> str:
    """Kuma's `unknown backend type. Available backends: "zipkin", "datadog"`, from the registry."""
    return "unknown backend type. Available backends: " + ", ".join(f'"{name}"' for name in MESH_BACKEND_TYPES)


def provider_clusters(provider: http_tracer_pb2.Tracing.Http) -> tuple[str, ...]:
    """Clusters an HCM tracing provider references; () for a provider no registered type generates."""
    backend = _BY_TRACER.get(str(provider.name))
    if backend is None or not provider.HasField("typed_config"):
        return ()
    return backend.referenced_clusters(provider.typed_config)
