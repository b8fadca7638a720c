"""TrafficTrace plugin: the one TrafficTrace that applies to a proxy, and the Mesh backend it resolves to.

Kuma's rules (reference kuma-tracing.md §2.3–2.4): at most one TrafficTrace applies (`matching.py`); no
matching TrafficTrace means no tracing even when the mesh has a default backend; an empty `conf.backend`
falls back to `defaultBackend`; a named backend that does not exist means no tracing, with no fallback.
The reason is returned as data, so the reconciler and `inspect` can report it. The collector cluster is
`tracing:<backend name>`, sampling is the backend's `sampling` as the HCM's `overall_sampling` (§3.2).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from controlplane.policies.plugin import Decision, Prepared
from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.policies.traffictrace.matching import select_traffic_trace
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.kind import Kind
from controlplane.resources.mesh import conf_dict
from controlplane.resources.model import Resource
from controlplane.tracing.backend import Backend, EffectiveTracing, Sampling
from controlplane.tracing.registry import MESH_BACKEND_TYPES
from controlplane.xds.generate.names import tracing_cluster_name


class Reason(enum.Enum):
    """Why a proxy ended up without tracing from TrafficTrace."""

    NO_MATCHING_POLICY = "no_matching_policy"
    NO_BACKEND_NAMED_AND_NO_DEFAULT = "no_backend_named_and_no_default"
    BACKEND_NOT_FOUND = "backend_not_found"
    BACKEND_INVALID = "backend_invalid"


MESSAGES: Final = {
    Reason.NO_MATCHING_POLICY: "no TrafficTrace selects this dataplane",
    Reason.NO_BACKEND_NAMED_AND_NO_DEFAULT: "the TrafficTrace names no backend and the mesh has no defaultBackend",
    Reason.BACKEND_NOT_FOUND: "backend not found: the TrafficTrace names a backend the mesh does not define",
    Reason.BACKEND_INVALID: "the backend's conf is not valid any more; fix the Mesh",
}


@dataclass(frozen=True, slots=True)
class TrafficTraces(Prepared):
    """A mesh's TrafficTraces by name, and its backends parsed once (None: stored conf no longer valid)."""

    policies: tuple[Resource, ...]
    backends: Mapping[str, EffectiveTracing | None]
    default_backend: str


class TrafficTracePlugin:
    kind: Final[Kind] = TRAFFIC_TRACE

    def prepare(self, mesh: Resource, policies: Sequence[Resource]) -> TrafficTraces:
        assert isinstance(mesh.spec, mesh_pb2.Mesh)
        tracing = mesh.spec.tracing
        # The last backend with a name wins, as in Kuma's map lookup; validation forbids duplicates anyway.
        backends = {backend.name: effective_tracing(backend) for backend in tracing.backends}
        return TrafficTraces(tuple(sorted(policies, key=lambda policy: policy.name)),
                             MappingProxyType(backends), tracing.default_backend)

    def by_tags(self, prepared: Prepared) -> bool:
        return True  # selectors match inbound tags; ranking reads only the policies

    def decide(self, prepared: Prepared, dataplane: Resource) -> Decision:
        assert isinstance(prepared, TrafficTraces)
        policy = select_traffic_trace(dataplane, prepared.policies)
        if policy is None:
            return _off(Reason.NO_MATCHING_POLICY)
        assert isinstance(policy.spec, mesh_pb2.TrafficTrace)
        name = policy.spec.conf.backend or prepared.default_backend
        if not name:
            return _off(Reason.NO_BACKEND_NAMED_AND_NO_DEFAULT, policy.name)
        if name not in prepared.backends:
            return _off(Reason.BACKEND_NOT_FOUND, policy.name, name)
        tracing = prepared.backends[name]
        if tracing is None:
            return _off(Reason.BACKEND_INVALID, policy.name, name)
        return Decision(TRAFFIC_TRACE.name, (policy.name,), tracing, backend=name)


def _off(reason: Reason, policy: str | None = None, backend: str = "") -> Decision:
    return Decision(TRAFFIC_TRACE.name, (policy,) if policy else (), None, reason.value, MESSAGES[reason], backend)


def effective_tracing(backend: mesh_pb2.TracingBackend) -> EffectiveTracing | None:
    """What a Mesh backend traces with: its parsed conf, `tracing:<name>` and its sampling as `overall`;
    None when the stored conf does not parse (validation rejects that on write, but rules may tighten)."""
    backend_type = MESH_BACKEND_TYPES.get(backend.type)
    if backend_type is None:
        return None
    conf, _ = backend_type.parse_mesh_conf(conf_dict(backend), "config")
    if conf is None:
        return None
    sampling = Sampling(overall=backend.sampling.value if backend.HasField("sampling") else None)
    return EffectiveTracing(Backend(backend_type, conf, tracing_cluster_name(backend.name), backend.name), sampling)


PLUGIN: Final = TrafficTracePlugin()
