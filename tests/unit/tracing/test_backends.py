"""Backend modules on their own: each parses its Mesh `conf` once into its typed conf (or violations)."""

from __future__ import annotations

from builders import datadog_backend, zipkin_backend

from controlplane.resources.mesh import conf_dict
from controlplane.tracing.datadog import DATADOG as DATADOG_TYPE
from controlplane.tracing.datadog import DatadogConf
from controlplane.tracing.registry import BACKEND_TYPES, MESH_BACKEND_TYPES, unknown_type_message
from controlplane.tracing.zipkin import ZIPKIN as ZIPKIN_TYPE
from controlplane.tracing.zipkin import ZipkinConf, parse_collector_url


def test_registry_is_keyed_by_type_in_kumas_order() -> None:
    assert list(MESH_BACKEND_TYPES) == ["zipkin", "datadog"]
    assert list(BACKEND_TYPES) == ["zipkin", "datadog", "opentelemetry"]
    assert unknown_type_message() == 'unknown backend type. Available backends: "zipkin", "datadog"'


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
