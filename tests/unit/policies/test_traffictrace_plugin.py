"""TrafficTrace plugin: backend resolution (reference/kuma-tracing.md §2.4) and typed `conf` parsing."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from builders import datadog_backend, dataplane, inbound, mesh, traffic_trace, zipkin_backend

from controlplane.policies.traffictrace.plugin import PLUGIN
from controlplane.policies.traffictrace.plugin import Reason as ResolutionReason
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.mesh import conf_dict
from controlplane.resources.model import Resource
from controlplane.tracing.datadog import DATADOG as DATADOG_TYPE
from controlplane.tracing.datadog import DatadogConf
from controlplane.tracing.zipkin import ZIPKIN as ZIPKIN_TYPE
from controlplane.tracing.zipkin import ZipkinConf, parse_collector_url

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


def test_zipkin_config_parses_every_field() -> None:
    backend = zipkin_backend(
        url="https://z:1/p", traceId128bit=True, apiVersion="httpProto", sharedSpanContext=False
    )
    expected = ZipkinConf(parse_collector_url("https://z:1/p"), trace_id_128bit=True, api_version="httpProto",
                          shared_span_context=False)
    assert ZIPKIN_TYPE.parse_mesh_conf(conf_dict(backend), "config") == (expected, [])


def test_datadog_config_parses_struct_number_port() -> None:
    backend = datadog_backend(address="agent", port=8126, splitService=True)
    assert DATADOG_TYPE.parse_mesh_conf(conf_dict(backend), "config") == (
        DatadogConf(address="agent", port=8126, split_service=True), []
    )


def test_unknown_conf_key_is_rejected() -> None:
    conf, violations = ZIPKIN_TYPE.parse_mesh_conf(conf_dict(zipkin_backend(bogus=1)), "config")
    assert conf is None
    assert [v.field for v in violations] == ["config.bogus"]
