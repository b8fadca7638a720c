"""Which tracing backend a proxy uses, and the typed form of a backend's free-form `conf`.

Kuma's rules (reference/kuma-tracing.md §2.4): no matching TrafficTrace means no tracing even when the mesh
has a default backend; an empty `conf.backend` falls back to `defaultBackend`; a named backend that does not
exist means no tracing, with no fallback. The reason is returned as data, not logged, so the reconciler and
`inspect` can report it (this package does no I/O).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from google.protobuf import json_format

from controlplane.resources.generated import mesh_pb2
from controlplane.resources.model import Resource

ZIPKIN: Final = "zipkin"
DATADOG: Final = "datadog"


class ResolutionReason(enum.Enum):
    """Why a proxy ended up without tracing."""

    NO_MATCHING_POLICY = "no_matching_policy"
    NO_BACKEND_NAMED_AND_NO_DEFAULT = "no_backend_named_and_no_default"
    BACKEND_NOT_FOUND = "backend_not_found"


@dataclass(frozen=True, slots=True)
class TracingResolution:
    """Effective tracing for one proxy.

    `backend` is set exactly when `reason` is None. `traffic_trace` is the matched policy's name even when
    its backend was not found (Kuma still shows it as matched). `backend_name` is the name that was looked
    up ("" when the policy named none and the mesh has no default).
    """

    backend: mesh_pb2.TracingBackend | None
    traffic_trace: str | None
    backend_name: str
    reason: ResolutionReason | None

    @property
    def enabled(self) -> bool:
        return self.backend is not None


def resolve_tracing(mesh: Resource, traffic_trace: Resource | None) -> TracingResolution:
    """Resolve the backend for the (already selected) TrafficTrace of a proxy in `mesh`."""
    if traffic_trace is None:
        return TracingResolution(None, None, "", ResolutionReason.NO_MATCHING_POLICY)
    tracing = mesh.spec.tracing
    name = traffic_trace.spec.conf.backend or tracing.default_backend
    if not name:
        return TracingResolution(
            None, traffic_trace.name, "", ResolutionReason.NO_BACKEND_NAMED_AND_NO_DEFAULT
        )
    # The last backend with the name wins, as in Kuma's map lookup; validation forbids duplicates anyway.
    found = None
    for backend in tracing.backends:
        if backend.name == name:
            found = backend
    if found is None:
        return TracingResolution(None, traffic_trace.name, name, ResolutionReason.BACKEND_NOT_FOUND)
    return TracingResolution(found, traffic_trace.name, name, None)


def zipkin_config(backend: mesh_pb2.TracingBackend) -> mesh_pb2.ZipkinTracingBackendConfig:
    """Typed zipkin `conf`. Unknown keys raise: input was validated upstream, so one here is a bug."""
    config = mesh_pb2.ZipkinTracingBackendConfig()
    json_format.ParseDict(json_format.MessageToDict(backend.conf), config, ignore_unknown_fields=False)
    return config


def datadog_config(backend: mesh_pb2.TracingBackend) -> mesh_pb2.DatadogTracingBackendConfig:
    """Typed datadog `conf` (Struct numbers are doubles; ParseDict accepts integral ones for `port`)."""
    config = mesh_pb2.DatadogTracingBackendConfig()
    json_format.ParseDict(json_format.MessageToDict(backend.conf), config, ignore_unknown_fields=False)
    return config
