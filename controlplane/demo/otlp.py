"""OTLP trace intake: what Envoy's OpenTelemetry tracer sends, read with the official OTLP messages.

Shared by the demo's built-in receiver (`controlplane/demo/otlp_receiver.py`) and the end-to-end tests' fake
collector (`tests/e2e/support/collectors.py`), so both read the wire exactly the same way. Envoy exports
either over gRPC (unary `opentelemetry.proto.collector.trace.v1.TraceService/Export` on an HTTP/2 cluster)
or, with `http_service`, as `POST <path>` with an `application/x-protobuf` body (chunked); both carry an
`ExportTraceServiceRequest` (reference kuma-meshtrace.md §7).

The messages are xds-protos' `opentelemetry.proto.*` modules: an older OTLP whose spans sit in
`resource_spans[].instrumentation_library_spans[]` (today's `scope_spans` is wire-compatible, same field
number) and which ships no `_grpc` module, hence the generic handler below. PyPI's `opentelemetry-proto`
installs into the very same paths, so it is deliberately not a dependency (DESIGN.md, OTLP row).

Responsible for: decoding and flattening spans into plain dicts (ids as lowercase hex, attributes as
values), the gRPC handler, and the zipkin-v2 view of a span the demo's tree renderer draws. Must not: keep
state, or accept anything but the real wire format (a lenient intake would hide wiring mistakes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

SERVICE: Final = "opentelemetry.proto.collector.trace.v1.TraceService"
EXPORT_METHOD: Final = f"/{SERVICE}/Export"
HTTP_PATH: Final = "/v1/traces"
PROTOBUF: Final = "application/x-protobuf"

OtlpSpan = dict[str, Any]
"""One span, flattened: `transport` (grpc|http), `traceId`, `spanId`, `parentSpanId` (hex, "" for a root),
`name`, `kind` (SERVER, CLIENT, ...), `startTimeUnixNano`, `endTimeUnixNano`, `attributes` and `resource`
(key → value), `scope` (instrumentation library name) and `service` (the resource's `service.name`)."""
ExportCallback = Callable[[trace_service_pb2.ExportTraceServiceRequest, Mapping[str, str]], Awaitable[None]]


def decode_http(content_type: str, body: bytes) -> trace_service_pb2.ExportTraceServiceRequest:
    """An OTLP/HTTP body; ValueError with the reason for anything but binary protobuf OTLP."""
    if content_type != PROTOBUF:
        raise ValueError(f"unsupported content type {content_type!r}: OTLP/HTTP here is {PROTOBUF}")
    try:
        return trace_service_pb2.ExportTraceServiceRequest.FromString(body)
    except DecodeError as error:
        raise ValueError(f"not an ExportTraceServiceRequest: {error}") from None


def export_handler(on_export: ExportCallback) -> grpc.GenericRpcHandler:
    """The gRPC `TraceService` with its one method, `Export`: hands each request (and its metadata) to
    ``on_export`` and answers an empty `ExportTraceServiceResponse` (full success)."""

    async def export(
        request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        metadata = {str(key): str(value) for key, value in context.invocation_metadata() or ()}
        await on_export(request, metadata)
        return trace_service_pb2.ExportTraceServiceResponse()

    handler = grpc.unary_unary_rpc_method_handler(
        export, request_deserializer=trace_service_pb2.ExportTraceServiceRequest.FromString,
        response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString)
    generic: grpc.GenericRpcHandler = grpc.method_handlers_generic_handler(SERVICE, {"Export": handler})
    return generic


def spans_of(request: trace_service_pb2.ExportTraceServiceRequest, transport: str) -> list[OtlpSpan]:
    """Every span of a request, each with its resource and scope (see `OtlpSpan`)."""
    spans: list[OtlpSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for library_spans in resource_spans.instrumentation_library_spans:
            scope = str(library_spans.instrumentation_library.name)
            spans.extend(_span(span, resource, scope, transport) for span in library_spans.spans)
    return spans


def _span(span: trace_pb2.Span, resource: Mapping[str, object], scope: str, transport: str) -> OtlpSpan:
    return {
        "transport": transport,
        "traceId": bytes(span.trace_id).hex(),
        "spanId": bytes(span.span_id).hex(),
        "parentSpanId": bytes(span.parent_span_id).hex(),
        "name": str(span.name),
        "kind": trace_pb2.Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        "startTimeUnixNano": int(span.start_time_unix_nano),
        "endTimeUnixNano": int(span.end_time_unix_nano),
        "attributes": _attributes(span.attributes),
        "resource": dict(resource),
        "scope": scope,
        "service": str(resource.get("service.name", "")),
    }


def _attributes(pairs: Any) -> dict[str, object]:
    return {str(pair.key): _value(pair.value) for pair in pairs}


def _value(value: common_pb2.AnyValue) -> object:
    """A scalar as itself; arrays and key-value lists in their protobuf JSON form."""
    which = value.WhichOneof("value")
    if which in ("string_value", "bool_value", "int_value", "double_value", "bytes_value"):
        return getattr(value, which)
    return json_format.MessageToDict(value) if which else None


def zipkin_view(span: OtlpSpan) -> dict[str, object]:
    """The span as a zipkin v2 JSON span (what `controlplane.demo.tree` draws): ids, kind, name, service,
    microsecond timestamp and duration, string tags. OTLP spans never share ids, so parents nest as is."""
    start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
    view: dict[str, object] = {
        "traceId": span["traceId"], "id": span["spanId"], "kind": span["kind"], "name": span["name"],
        "localEndpoint": {"serviceName": span["service"]}, "timestamp": start // 1000,
        "duration": max(0, end - start) // 1000,
        "tags": {key: str(value) for key, value in span["attributes"].items()},
    }
    if span["parentSpanId"]:
        view["parentId"] = span["parentSpanId"]
    return view
