"""Backend modules on their own: each parses its Mesh `conf` once into its typed conf (or violations)."""

from __future__ import annotations

from builders import datadog_backend, zipkin_backend

from controlplane.errors import Violation
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


def test_a_type_error_in_a_zipkin_conf_hides_no_other_violation() -> None:
    """Each field is judged on its own: the wrong type is reported, and so are the other fields' problems."""
    conf = {"traceId128bit": "yes", "url": "", "apiVersion": "grpc"}
    assert ZIPKIN_TYPE.parse_mesh_conf(conf, "config") == (None, [
        Violation("config.traceId128bit", "must be a boolean"),
        Violation("config.apiVersion", "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto"),
        Violation("config.url", "cannot be empty"),
    ])


def test_a_rejected_field_is_not_judged_again() -> None:
    """`url: 5` is "must be a string", not also "cannot be empty" for the unset value left in its place."""
    assert ZIPKIN_TYPE.parse_mesh_conf({"url": 5, "apiVersion": "x"}, "config") == (None, [
        Violation("config.url", "must be a string"),
        Violation("config.apiVersion", "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto"),
    ])
    assert DATADOG_TYPE.parse_mesh_conf({"address": 5, "port": 0, "splitService": "no"}, "config") == (None, [
        Violation("config.address", "must be a string"),
        Violation("config.splitService", "must be a boolean"),
        Violation("config.port", "port must be in the range [1, 65535]"),
    ])
    assert DATADOG_TYPE.parse_mesh_conf({"address": "", "port": "x"}, "config") == (None, [
        Violation("config.port", "must be an integer in the range [0, 4294967295]"),
        Violation("config.address", "cannot be empty"),
    ])


def test_an_unknown_conf_key_hides_no_missing_field() -> None:
    """Kuma ignores an unknown conf key and reports the missing url; we report both."""
    assert ZIPKIN_TYPE.parse_mesh_conf({"urll": "http://z:1/p"}, "config") == (None, [
        Violation("config.urll", 'unknown field "urll". Valid fields: url, traceId128bit, apiVersion, sharedSpanContext'),
        Violation("config.url", "cannot be empty"),
    ])


def test_a_port_written_as_a_string_parses() -> None:
    """protojson (Kuma) takes `port: "8126"`; the typed conf holds the number."""
    assert DATADOG_TYPE.parse_mesh_conf({"address": "agent", "port": "8126"}, "config") == (
        DatadogConf(address="agent", port=8126), []
    )
