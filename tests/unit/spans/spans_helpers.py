"""Building stats-sink reports and policy decisions for the span-flow unit tests."""

from __future__ import annotations

from collections.abc import Mapping

from builders import dataplane, inbound, mesh, traffic_trace, zipkin_backend

from controlplane.policies.plugins import ProxyPolicies, decide, prepare_policies
from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.resources.generated import envoy_metrics_pb2 as em

GAUGES = frozenset({"membership_healthy", "membership_total", "downstream_rq_active"})


def families(stats: Mapping[str, float]) -> list[bytes]:
    """One report as Envoy's metrics service sends it: a family per stat, one metric, no labels (serialised,
    as the stats sink hands them on)."""
    out = []
    for name, value in stats.items():
        gauge = name.rpartition(".")[2] in GAUGES
        metric = em.Metric(gauge=em.Gauge(value=value)) if gauge else em.Metric(counter=em.Counter(value=value))
        family = em.MetricFamily(name=name, type=em.GAUGE if gauge else em.COUNTER, metric=[metric])
        out.append(family.SerializeToString())
    return out


def traced(sampling: float | None = None, backend: str = "jaeger", mesh_backend: str | None = None) -> ProxyPolicies:
    """The real plugins' decisions for web-1 under a mesh-wide TrafficTrace to `backend` (the mesh defines
    `mesh_backend`, by default the same)."""
    the_mesh = mesh(backends=[zipkin_backend(mesh_backend or backend, sampling=sampling)])
    prepared = prepare_policies(the_mesh, {TRAFFIC_TRACE: [traffic_trace(backend=backend)]})
    return decide(prepared, dataplane("web-1", inbounds=[inbound(service="web")]))


def untraced() -> ProxyPolicies:
    """No policy of any kind (TrafficTrace, MeshTrace) targets web-1."""
    the_mesh = mesh(backends=[zipkin_backend("jaeger")])
    prepared = prepare_policies(the_mesh, {TRAFFIC_TRACE: []})
    return decide(prepared, dataplane("web-1", inbounds=[inbound(service="web")]))
