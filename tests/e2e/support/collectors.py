"""Fake trace collectors that speak the real wire formats, for end-to-end tests.

Responsible for: accepting what Envoy's zipkin and datadog tracers send, exactly as a Zipkin server
and a Datadog agent would, and keeping it for assertions. Must not: interpret spans beyond decoding
(tests decide what a good span is), nor be lenient about the format — a collector that accepted
anything would hide the very mistakes e2e tests exist to catch.

Both run as aiohttp servers on 127.0.0.1, port 0, inside the test's event loop::

    async with ZipkinCollector() as zipkin:
        ...  # point a zipkin cluster at zipkin.host:zipkin.port, path zipkin.path
        spans = await zipkin.wait_for_spans(lambda s: s["kind"] == "SERVER", timeout=10)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack  # type: ignore[import-untyped]
from aiohttp import web
from multidict import CIMultiDict

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
