"""The demo's built-in OTLP receiver: OTLP/gRPC and OTLP/HTTP in, the same trace trees out.

Envoy's OpenTelemetry tracer exports over gRPC (`grpc_service`, MeshTrace `endpoint: host:port`) or, with this
control plane's extension, over HTTP (`http_service`, `endpoint: http://…/v1/traces`). This receiver answers
both, on two ports, decodes with the official OTLP messages (`controlplane/demo/otlp.py`) and hands each span
to a `SpanReceiver` as a zipkin v2 view, so grouping into traces and printing them is one code path whatever
the tracer. Must not: keep spans itself or accept anything but binary protobuf OTLP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from controlplane.demo.otlp import HTTP_PATH, PROTOBUF, decode_http, export_handler, spans_of, zipkin_view
from controlplane.demo.receiver import MAX_BODY_BYTES, SpanReceiver
from controlplane.demo.serving import LocalServer


@dataclass
class OtlpReceiver:
    """OTLP/gRPC on ``host:grpc_port`` and OTLP/HTTP on ``host:http_port`` (0 = any free port), into ``spans``."""

    spans: SpanReceiver
    host: str = "127.0.0.1"
    grpc_port: int = 0
    http_port: int = 0
    _grpc: grpc.aio.Server | None = field(default=None, repr=False)
    _http: LocalServer | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """`host:port` of the gRPC receiver, as a MeshTrace `openTelemetry.endpoint` names it."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """The OTLP/HTTP URL (an `openTelemetry.endpoint` written as a URL exports over HTTP)."""
        return f"http://{self.host}:{self.http_port}{HTTP_PATH}"

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(HTTP_PATH, self._http_export)
        self._http = LocalServer(self.host, self.http_port)
        self.http_port = await self._http.start(app)
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((export_handler(self._grpc_export),))
        self.grpc_port = server.add_insecure_port(f"{self.host}:{self.grpc_port}")
        await server.start()
        self._grpc = server

    async def stop(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(None)
            self._grpc = None
        if self._http is not None:
            await self._http.stop()
            self._http = None

    async def _grpc_export(self, request: trace_service_pb2.ExportTraceServiceRequest, _: object) -> None:
        await self.spans.add_spans([zipkin_view(span) for span in spans_of(request, "grpc")])

    async def _http_export(self, request: web.Request) -> web.Response:
        if request.content_type != PROTOBUF:
            return web.Response(status=415, text=f"only {PROTOBUF} (binary OTLP) is accepted")
        try:
            decoded = decode_http(request.content_type, await request.read())
        except ValueError as error:
            return web.Response(status=400, text=str(error))
        await self.spans.add_spans([zipkin_view(span) for span in spans_of(decoded, "http")])
        return web.Response(body=trace_service_pb2.ExportTraceServiceResponse().SerializeToString(),
                            content_type=PROTOBUF)
