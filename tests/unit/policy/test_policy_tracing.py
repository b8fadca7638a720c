"""Backend resolution (reference/kuma-tracing.md §2.4) and typed `conf` parsing."""

from __future__ import annotations

import pytest
from builders import datadog_backend, mesh, traffic_trace, zipkin_backend
from google.protobuf import json_format

from controlplane.policy import (
    ResolutionReason,
    TracingResolution,
    datadog_config,
    resolve_tracing,
    zipkin_config,
)
from controlplane.resources.generated import mesh_pb2

ZIPKIN = zipkin_backend("zipkin")
DATADOG = datadog_backend("datadog")
MESH = mesh(backends=[ZIPKIN, DATADOG], default_backend="zipkin")


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
    expected = mesh_pb2.ZipkinTracingBackendConfig(
        url="https://z:1/p", trace_id128bit=True, api_version="httpProto"
    )
    expected.shared_span_context.value = False
    assert zipkin_config(backend) == expected


def test_datadog_config_parses_struct_number_port() -> None:
    backend = datadog_backend(address="agent", port=8126, splitService=True)
    assert datadog_config(backend) == mesh_pb2.DatadogTracingBackendConfig(
        address="agent", port=8126, split_service=True
    )


def test_unknown_conf_key_is_rejected() -> None:
    with pytest.raises(json_format.ParseError):
        zipkin_config(zipkin_backend(bogus=1))
