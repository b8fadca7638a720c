"""The demo's applications: tiny aiohttp services that call the next hop through their sidecar.

Envoy starts or continues a trace, but only the application can carry the trace context from its inbound
request to the outbound request it makes; without that, every hop starts a new trace. So each service
copies `PROPAGATED_HEADERS` (the list the tracing docs give) from the request it got to the request it
sends to `next_url`, which is its own sidecar's outbound listener. Must not: know about Envoy or the mesh.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import aiohttp
import structlog
from aiohttp import web

from controlplane.demo.serving import LocalServer

log = structlog.get_logger(__name__)

PROPAGATED_HEADERS: Final = (
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "traceparent",
    "tracestate",
)
"""The B3 headers Envoy's zipkin tracer uses, and W3C Trace Context, which its OpenTelemetry tracer uses."""
NEXT_HOP_TIMEOUT_S: Final = 10.0

_NAME: Final = web.AppKey("name", str)
_NEXT_URL: Final = web.AppKey("next_url", str)
_CLIENT: Final = web.AppKey("client", aiohttp.ClientSession)


def create_service_app(name: str, next_url: str | None = None) -> web.Application:
    """`GET /anything` answers `<name>`, or `<name> -> <next hop's answer>` when there is a next hop."""
    app = web.Application()
    app[_NAME] = name
    if next_url is not None:
        app[_NEXT_URL] = next_url.rstrip("/")
        app.cleanup_ctx.append(_client)
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


async def _client(app: web.Application) -> AsyncIterator[None]:
    """One client session per app, closed on cleanup (aiohttp's cleanup_ctx lifecycle)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=NEXT_HOP_TIMEOUT_S)) as session:
        app[_CLIENT] = session
        yield


async def _handle(request: web.Request) -> web.Response:
    app = request.app
    name = app[_NAME]
    if _NEXT_URL not in app:
        return web.Response(text=name)
    headers = {h: request.headers[h] for h in PROPAGATED_HEADERS if h in request.headers}
    try:
        async with app[_CLIENT].get(app[_NEXT_URL] + request.path_qs, headers=headers) as response:
            body = await response.text()
            return web.Response(status=response.status, text=f"{name} -> {body}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("next_hop_failed", service=name, url=app[_NEXT_URL], error=str(exc) or type(exc).__name__)
        return web.Response(status=502, text=f"{name} -> next hop failed: {exc!r}")


@dataclass
class DemoService:
    """One service on ``host:port`` (0 = any free port); ``port`` holds the bound port once started."""

    name: str
    next_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    _server: LocalServer | None = None

    async def start(self) -> None:
        self._server = LocalServer(self.host, self.port)
        self.port = await self._server.start(create_service_app(self.name, self.next_url))

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None


async def serve_service(service: DemoService) -> None:
    """Run one service until SIGINT/SIGTERM (the `demo-service` command, e.g. in docker-compose)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        log.info("demo_service_listening", service=service.name, host=service.host, port=service.port,
                 next_url=service.next_url)
        await stop.wait()
    finally:
        await service.stop()
