"""A tiny upstream HTTP service for end-to-end tests.

Responsible for: answering requests that came through Envoy, recording the headers it saw (so tests
can check trace-context propagation), and optionally calling a next hop — which is how a real service
joins a distributed trace: Envoy starts/continues the trace, but only the application can copy the
trace headers from its inbound request to its outbound one. Must not: do anything clever; HTTP/1.1 only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from controlplane.demo.serving import LocalServer, Serving

# Headers an application must forward for Envoy to stitch hops into one trace: Envoy's request id
# (Envoy also derives its sampling decision from it) plus every propagation format Envoy's zipkin
# and datadog tracers read (B3 multi and single header, W3C, Datadog).
PROPAGATED_HEADERS = (
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "traceparent",
    "tracestate",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "x-datadog-origin",
    "x-datadog-tags",
)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: CIMultiDictProxy[str]


@dataclass
class UpstreamApp(Serving):
    """HTTP app on 127.0.0.1 (port 0 unless given) answering ``200 <name>``.

    With ``next_hop`` (an absolute URL prefix, e.g. an Envoy outbound listener), each request is
    forwarded to ``next_hop + path`` with ``PROPAGATED_HEADERS`` copied, and the answer becomes
    ``"<name> -> <next hop's body>"``.
    """

    name: str
    next_hop: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    _server: LocalServer | None = field(default=None, repr=False)
    _client: aiohttp.ClientSession | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = LocalServer(self.host, self.port)
        self.port = await self._server.start(app)
        if self.next_hop is not None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(RecordedRequest(request.method, request.path_qs, request.headers))
        if self._client is None or self.next_hop is None:
            return web.Response(text=self.name)
        headers = CIMultiDict(
            (name, value) for name, value in request.headers.items() if name.lower() in PROPAGATED_HEADERS
        )
        async with self._client.get(self.next_hop + request.path_qs, headers=headers) as response:
            body = await response.text()
            return web.Response(status=response.status, text=f"{self.name} -> {body}")
