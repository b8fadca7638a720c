"""OTLP intake (controlplane/demo/otlp.py): an `ExportTraceServiceRequest` built with the official messages,
flattened and drawn; the demo's option rules and MeshTrace YAML. Pure: no servers (the e2e tests run Envoy
against the same code)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from controlplane.demo.meshtrace import meshtrace_yaml, option_problem
from controlplane.demo.otlp import PROTOBUF, decode_http, spans_of, zipkin_view
from controlplane.demo.tree import render_trace
from controlplane.resources.codec import decode_resource
from controlplane.resources.yaml_loader import load_documents

TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")


def _kv(key: str, value: common_pb2.AnyValue) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=value)


def _span(span_id: str, parent: str, kind: int, name: str, start_us: int, duration_us: int,
          **attributes: str) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=TRACE, span_id=bytes.fromhex(span_id), parent_span_id=bytes.fromhex(parent), name=name, kind=kind,
        start_time_unix_nano=start_us * 1000, end_time_unix_nano=(start_us + duration_us) * 1000,
        attributes=[_kv(k, common_pb2.AnyValue(string_value=v)) for k, v in attributes.items()])


def _request(*services: tuple[str, list[trace_pb2.Span]]) -> trace_service_pb2.ExportTraceServiceRequest:
    """What Envoy sends: one ResourceSpans per proxy (its `service.name`), spans under the `envoy` scope."""
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=[
                _kv("service.name", common_pb2.AnyValue(string_value=service)),
                _kv("telemetry.sdk.name", common_pb2.AnyValue(string_value="envoy"))]),
            instrumentation_library_spans=[trace_pb2.InstrumentationLibrarySpans(
                instrumentation_library=common_pb2.InstrumentationLibrary(name="envoy"), spans=spans)])
        for service, spans in services])


SERVER, CLIENT = trace_pb2.Span.SPAN_KIND_SERVER, trace_pb2.Span.SPAN_KIND_CLIENT
CHAIN = _request(
    ("db", [_span("0000000000000005", "0000000000000004", SERVER, "ingress", 1_000_300, 400,
                  **{"http.status_code": "200"})]),
    ("backend", [_span("0000000000000004", "0000000000000003", CLIENT, "egress db:80", 1_000_200, 900),
                 _span("0000000000000003", "0000000000000002", SERVER, "ingress", 1_000_100, 1_500)]),
    ("frontend", [_span("0000000000000002", "0000000000000001", CLIENT, "egress backend:80", 1_000_050, 2_100),
                  _span("0000000000000001", "", SERVER, "ingress", 1_000_000, 3_250, team="core")]),
)


def test_spans_are_flattened_with_their_resource_and_scope() -> None:
    spans = spans_of(CHAIN, "grpc")
    assert len(spans) == 5
    assert spans[-1] == {
        "transport": "grpc", "traceId": TRACE.hex(), "spanId": "0000000000000001", "parentSpanId": "",
        "name": "ingress", "kind": "SERVER", "startTimeUnixNano": 1_000_000_000, "endTimeUnixNano": 1_003_250_000,
        "attributes": {"team": "core"}, "resource": {"service.name": "frontend", "telemetry.sdk.name": "envoy"},
        "scope": "envoy", "service": "frontend",
    }


def test_attribute_values_keep_their_types() -> None:
    span = trace_pb2.Span(trace_id=TRACE, span_id=b"\x01" * 8, attributes=[
        _kv("s", common_pb2.AnyValue(string_value="x")), _kv("b", common_pb2.AnyValue(bool_value=True)),
        _kv("i", common_pb2.AnyValue(int_value=7)), _kv("d", common_pb2.AnyValue(double_value=0.5)),
        _kv("a", common_pb2.AnyValue(array_value=common_pb2.ArrayValue(
            values=[common_pb2.AnyValue(string_value="y")]))),
        _kv("none", common_pb2.AnyValue())])
    request = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        instrumentation_library_spans=[trace_pb2.InstrumentationLibrarySpans(spans=[span])])])
    (flat,) = spans_of(request, "http")
    assert flat["attributes"] == {"s": "x", "b": True, "i": 7, "d": 0.5,
                                  "a": {"arrayValue": {"values": [{"stringValue": "y"}]}}, "none": None}
    assert (flat["kind"], flat["service"], flat["scope"]) == ("UNSPECIFIED", "", "")


def test_otlp_spans_draw_the_same_trace_tree_as_zipkin_ones() -> None:
    """OTLP spans never share ids: each SERVER span's parent is the caller's CLIENT span."""
    views = [zipkin_view(span) for span in spans_of(CHAIN, "grpc")]
    assert render_trace(views).splitlines() == [
        f"trace {TRACE.hex()}  3 services (backend, db, frontend), 5 spans, 3.2 ms",
        "└─ frontend  server ingress  3.2 ms  -",
        "   └─ frontend  client egress backend:80  2.1 ms  -",
        "      └─ backend  server ingress  1.5 ms  -",
        "         └─ backend  client egress db:80  0.9 ms  -",
        "            └─ db  server ingress  0.4 ms  200",
    ]


def test_http_body_must_be_binary_otlp() -> None:
    assert decode_http(PROTOBUF, CHAIN.SerializeToString()) == CHAIN
    with pytest.raises(ValueError, match="unsupported content type 'application/json'"):
        decode_http("application/json", b"{}")
    with pytest.raises(ValueError, match="not an ExportTraceServiceRequest"):
        decode_http(PROTOBUF, b"\xff\xff\xff")


@pytest.mark.parametrize(("options", "problem"), [
    (("traffictrace", "zipkin", None, None, False), None),
    (("meshtrace", "opentelemetry", None, None, True), None),
    (("meshtrace", "opentelemetry", None, "127.0.0.1:4317", False), None),
    (("meshtrace", "opentelemetry", None, "http://jaeger:4318/v1/traces", False), None),
    (("traffictrace", "opentelemetry", None, None, False),
     ("--backend opentelemetry needs --policy meshtrace: a TrafficTrace traces with the Mesh's backends, "
     "which are zipkin or datadog")),
    (("meshtrace", "opentelemetry", "http://z:9411/api/v2/spans", None, False),
     "--zipkin-url goes with --backend zipkin"),
    (("meshtrace", "zipkin", None, "127.0.0.1:4317", False), "--otel-endpoint goes with --backend opentelemetry"),
    (("traffictrace", "zipkin", None, None, True), "--otlp-http goes with --backend opentelemetry"),
    (("meshtrace", "opentelemetry", None, "http://a:4318", True),
     "--otlp-http is for the built-in receiver; give an http:// --otel-endpoint instead"),
    (("meshtrace", "opentelemetry", None, "collector:99999", False),
     "--otel-endpoint 'collector:99999': must be host:port, or an http:// or https:// URL"),
], ids=lambda value: str(value)[:40])
def test_option_rules(options: tuple[Any, ...], problem: str | None) -> None:
    assert option_problem(*options) == problem


@pytest.mark.parametrize(("backend", "address"), [("zipkin", "http://127.0.0.1:9411/api/v2/spans"),
                                                  ("opentelemetry", "127.0.0.1:4317"),
                                                  ("opentelemetry", "http://127.0.0.1:4318/v1/traces")])
def test_demo_meshtrace_is_valid_and_has_the_docs_tags(backend: str, address: str) -> None:
    mesh, meshtrace = (decode_resource(doc) for doc in load_documents(meshtrace_yaml(backend, address)))
    assert (mesh.kind.name, meshtrace.kind.name, meshtrace.name) == ("Mesh", "MeshTrace", "default")
    default = load_documents(meshtrace_yaml(backend, address))[1]["spec"]["default"]
    assert [tag["name"] for tag in default["tags"]] == ["team", "env", "version"]
    assert address in str(default["backends"])
