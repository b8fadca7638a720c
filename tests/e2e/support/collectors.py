"""Fake trace collectors that speak the real wire formats, for end-to-end tests.

Responsible for: accepting what Envoy's zipkin, datadog and OpenTelemetry tracers send, exactly as a Zipkin
server, a Datadog agent and an OpenTelemetry collector's OTLP receiver would, and keeping it for assertions.
Must not: interpret spans beyond decoding (tests decide what a good span is), nor be lenient about the
format — a collector that accepted anything would hide the very mistakes e2e tests exist to catch.

They run as aiohttp servers on 127.0.0.1, port 0, inside the test's event loop (the OTLP collector also runs a
grpc.aio server on a port of its own)::

    async with ZipkinCollector() as zipkin:
        ...  # point a zipkin cluster at zipkin.host:zipkin.port, path zipkin.path
        spans = await zipkin.wait_for_spans(lambda s: s["kind"] == "SERVER", timeout=10)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import msgpack  # type: ignore[import-untyped]
from aiohttp import web
from multidict import CIMultiDict
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from controlplane.demo.otlp import EXPORT_METHOD, HTTP_PATH, PROTOBUF, decode_http, export_handler, spans_of
from controlplane.demo.serving import LocalServer, Serving

Span = dict[str, Any]
SpanPredicate = Callable[[Span], bool]


@dataclass(frozen=True, slots=True)
class Received:
    """One HTTP request a collector got, kept raw so tests can check the wire format itself."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes
    spans: tuple[Span, ...] = ()


@dataclass
class _Collector(Serving):
    """aiohttp server lifecycle plus span bookkeeping shared by the fake collectors."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    _server: LocalServer | None = field(default=None, repr=False)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(self.routes())
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._server = LocalServer(self.host, self.port)
        self.port = await self._server.start(app)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    @property
    def address(self) -> str:
        """``host:port`` — what Kuma puts in ``collector_hostname`` (kuma-tracing.md §3.2)."""
        return f"{self.host}:{self.port}"

    async def wait_for_spans(
        self, predicate: SpanPredicate = lambda span: True, *, timeout: float = 10.0, count: int = 1
    ) -> list[Span]:
        """Wait until at least ``count`` received spans match ``predicate``; return all matches.

        Woken by arrivals rather than polling, so it returns as soon as the span lands.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            matches = [span for span in self.spans if predicate(span)]
            if len(matches) >= count:
                return matches
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"{type(self).__name__}: {len(matches)}/{count} matching spans after {timeout:.1f}s; "
                    f"received {len(self.spans)} spans in {len(self.requests)} requests: "
                    f"{[(r.method, r.path) for r in self.requests]}"
                )
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass

    def _record(self, request: web.Request, body: bytes, spans: Sequence[Span] = ()) -> None:
        headers = CIMultiDict(request.headers)
        self.requests.append(Received(request.method, request.path, headers, body, tuple(spans)))
        self.spans.extend(spans)
        self._arrived.set()

    async def _unknown(self, request: web.Request) -> web.Response:
        """Record and 404 paths we do not emulate, so tests can see what else Envoy asked for."""
        self._record(request, await request.read())
        return web.Response(status=404, text="not emulated by the fake collector")


@dataclass
class ZipkinCollector(_Collector):
    """A Zipkin server's span intake (``zipkin-server``'s ``/api/v2/spans`` and ``/api/v1/spans``).

    JSON bodies (v2: a list of spans with ``localEndpoint.serviceName``; v1: a list with
    ``annotations``/``binaryAnnotations``) are parsed into ``.spans``; ``application/x-protobuf``
    (Envoy's ``HTTP_PROTO``) is kept raw in ``.requests`` only — decoding it would need zipkin's
    proto, and checking the content type is what a wiring test needs. Answers 202 like Zipkin.
    """

    path: str = "/api/v2/spans"
    status: int = 202
    """What it answers a well-formed report with (a broken collector answers 500)."""

    @property
    def url(self) -> str:
        return f"http://{self.address}{self.path}"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/v2/spans", self._spans), web.post("/api/v1/spans", self._spans)]

    async def _spans(self, request: web.Request) -> web.Response:
        body = await request.read()
        content_type = request.content_type
        spans: list[Span] = []
        if content_type == "application/json":
            try:
                decoded = json.loads(body)
            except ValueError as error:
                self._record(request, body)
                return web.Response(status=400, text=f"malformed JSON: {error}")
            if not isinstance(decoded, list) or not all(isinstance(span, dict) for span in decoded):
                self._record(request, body)
                return web.Response(status=400, text="expected a JSON list of span objects")
            spans = decoded
        elif content_type != "application/x-protobuf":
            self._record(request, body)
            return web.Response(status=415, text=f"unsupported content type {content_type!r}")
        self._record(request, body, spans)
        return web.Response(status=self.status)


TELEMETRY_PATH = "/telemetry/proxy/api/v2/apmtelemetry"
"""The agent's telemetry proxy endpoint (JSON, POST)."""


@dataclass
class DatadogAgent(_Collector):
    """The trace intake of a Datadog agent (``/v0.3/traces`` and ``/v0.4/traces``, msgpack).

    A payload is a list of traces, each a list of span maps (``trace_id``, ``span_id``,
    ``parent_id``, ``name``, ``resource``, ``service``, ``start``, ``duration``, ``meta``, ...).
    The agent answers ``{"rate_by_service": {...}}``, which the tracer uses for sampling; we answer
    with an empty map so the tracer keeps its defaults.
    """

    traces: list[list[Span]] = field(default_factory=list)
    telemetry: list[Received] = field(default_factory=list)
    """The tracer's own instrumentation telemetry (``app-started``, heartbeats), which the agent relays to
    Datadog: Envoy 1.36's dd-trace-cpp sends it at start, 1.40's does not. Kept apart from ``requests`` (the
    trace intake, and paths we do not emulate) so span assertions hold for every supported Envoy."""

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route(method, path, self._traces)
            for path in ("/v0.3/traces", "/v0.4/traces")
            for method in ("PUT", "POST")
        ] + [web.post(TELEMETRY_PATH, self._telemetry)]

    async def _telemetry(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            json.loads(body)
        except ValueError as error:
            self._record(request, body)  # malformed: shows up in `requests`, where tests look
            return web.Response(status=400, text=f"malformed telemetry JSON: {error}")
        self.telemetry.append(Received(request.method, request.path, CIMultiDict(request.headers), body))
        return web.Response(status=202)

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            decoded = msgpack.unpackb(body, raw=False, strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as error:
            self._record(request, body)
            return web.Response(status=400, text=f"malformed msgpack: {error}")
        if not isinstance(decoded, list) or not all(isinstance(trace, list) for trace in decoded):
            self._record(request, body)
            return web.Response(status=400, text="expected a msgpack array of traces (arrays of spans)")
        self.traces.extend(decoded)
        self._record(request, body, [span for trace in decoded for span in trace])
        return web.json_response({"rate_by_service": {}})


@dataclass
class OtlpCollector(_Collector):
    """An OpenTelemetry collector's OTLP trace receiver: gRPC on ``grpc_port`` and HTTP on ``port``.

    gRPC: the unary ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` (Envoy's ``grpc_service``),
    recorded with path `EXPORT_METHOD` and the call's metadata as headers. HTTP: ``POST /v1/traces`` with an
    ``application/x-protobuf`` body (Envoy's ``http_service``; Envoy sends it chunked), answered 200 with an
    empty ``ExportTraceServiceResponse``; another content type is 415, an undecodable body 400. Both decode
    with the official OTLP messages (``controlplane.demo.otlp``) into ``.spans``, each tagged with the
    ``transport`` it came by, so a test can tell which endpoint Envoy used.
    """

    grpc_port: int = 0
    _grpc: grpc.aio.Server | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """``host:port`` of the gRPC receiver: a MeshTrace ``openTelemetry.endpoint`` (OTLP over gRPC)."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """The OTLP/HTTP URL: an ``openTelemetry.endpoint`` written as a URL exports OTLP over HTTP."""
        return f"http://{self.address}{HTTP_PATH}"

    def routes(self) -> list[web.RouteDef]:
        return [web.post(HTTP_PATH, self._http)]

    async def start(self) -> None:
        await super().start()
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((export_handler(self._grpc_export),))
        self.grpc_port = server.add_insecure_port(f"{self.host}:{self.grpc_port}")
        await server.start()
        self._grpc = server

    async def stop(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(None)
            self._grpc = None
        await super().stop()

    async def _grpc_export(self, request: trace_service_pb2.ExportTraceServiceRequest,
                           metadata: Mapping[str, str]) -> None:
        spans = spans_of(request, "grpc")
        body = request.SerializeToString()
        self.requests.append(Received("POST", EXPORT_METHOD, CIMultiDict(metadata), body, tuple(spans)))
        self.spans.extend(spans)
        self._arrived.set()

    async def _http(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.content_type != PROTOBUF:
            self._record(request, body)
            return web.Response(status=415, text=f"unsupported content type {request.content_type!r}")
        try:
            decoded = decode_http(request.content_type, body)
        except ValueError as error:
            self._record(request, body)
            return web.Response(status=400, text=str(error))
        self._record(request, body, spans_of(decoded, "http"))
        response = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=response, content_type=PROTOBUF)
