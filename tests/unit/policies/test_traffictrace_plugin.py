"""TrafficTrace plugin: backend resolution (reference/kuma-tracing.md §2.4) and typed `conf` parsing."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from builders import datadog_backend, dataplane, inbound, mesh, traffic_trace, zipkin_backend

from controlplane.policies.traffictrace.plugin import PLUGIN
from controlplane.policies.traffictrace.plugin import Reason as ResolutionReason
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.model import Resource

ZIPKIN = zipkin_backend("zipkin")
DATADOG = datadog_backend("datadog")
MESH = mesh(backends=[ZIPKIN, DATADOG], default_backend="zipkin")
WEB = dataplane("web-1", inbounds=[inbound(service="web")])


class TracingResolution(NamedTuple):
    """The plugin's decision in the terms these cases were written in: the Mesh backend it resolved to,
    the matched TrafficTrace, the backend name looked up, and the reason when there is no tracing."""

    backend: mesh_pb2.TracingBackend | None
    traffic_trace: str | None
    backend_name: str
    reason: ResolutionReason | None

    @property
    def enabled(self) -> bool:
        return self.backend is not None


def resolve_tracing(the_mesh: Resource, policy: Resource | None) -> TracingResolution:
    decision = PLUGIN.decide(PLUGIN.prepare(the_mesh, [policy] if policy else []), WEB)
    assert isinstance(the_mesh.spec, mesh_pb2.Mesh)
    resolved = decision.tracing.backend.name if decision.tracing is not None else None
    backend = next((b for b in the_mesh.spec.tracing.backends if b.name == resolved), None)
    return TracingResolution(backend, decision.matched[-1] if decision.matched else None, decision.backend,
                             ResolutionReason(decision.reason) if decision.reason else None)


def test_no_matching_policy_means_no_tracing_even_with_default() -> None:
    assert resolve_tracing(MESH, None) == TracingResolution(
        None, None, "", ResolutionReason.NO_MATCHING_POLICY
    )


def test_empty_backend_uses_mesh_default() -> None:
    resolution = resolve_tracing(MESH, traffic_trace("t"))
    assert resolution == TracingResolution(ZIPKIN, "t", "zipkin", None)
    assert resolution.enabled


def test_named_backend_wins_over_default() -> None:
    assert resolve_tracing(MESH, traffic_trace("t", backend="datadog")) == TracingResolution(
        DATADOG, "t", "datadog", None
    )


def test_no_backend_named_and_no_default() -> None:
    resolution = resolve_tracing(mesh(backends=[ZIPKIN]), traffic_trace("t"))
    assert resolution == TracingResolution(None, "t", "", ResolutionReason.NO_BACKEND_NAMED_AND_NO_DEFAULT)
    assert not resolution.enabled


@pytest.mark.parametrize(
    "the_mesh", [MESH, mesh()], ids=["backend-missing-no-fallback-to-default", "mesh-without-tracing"]
)
def test_backend_not_found(the_mesh: object) -> None:
    resolution = resolve_tracing(the_mesh, traffic_trace("t", backend="nope"))  # type: ignore[arg-type]
    assert resolution == TracingResolution(None, "t", "nope", ResolutionReason.BACKEND_NOT_FOUND)
