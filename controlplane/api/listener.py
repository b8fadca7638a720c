"""The HTTP API's listening socket: connections that never send a request are closed, and their number is bounded.

Why: aiohttp's server keeps a connection that sends nothing (or half a request line) until its keep-alive
timeout, 3 630 s by default; a few hundred such connections, or a flood on the ADS port, took every file
descriptor, and then the API stopped answering. Here:
- `API_IDLE_TIMEOUT_S` is aiohttp's keep-alive timeout, which (aiohttp >= 3.14.4) also runs from the moment
  a connection is accepted: no complete request headers within it, or no next request within it, and
  the connection is closed. A handler that is running (a long response) is never cut by it.
- TLS handshakes get the same deadline (`ssl_handshake_timeout`; asyncio's default is 60 s).
- At most `max_connections` connections are served at once (cli/run.py derives it from the descriptor
  budget, process_limits.py); above it a connection gets `503` and is closed at once, so a flood costs a
  descriptor only for an instant and cannot starve ADS or the store. asyncio accepts up to `backlog`
  connections in one go before any of them is refused, so the backlog is kept at most `max_connections`
  and the budget counts the API's share twice.

Rejected alternative: `web.TCPSite`, which takes the runner's protocol factory as is and so cannot bound
connections; this module builds the listening server with `loop.create_server` around the same factory.
Must not: know about routes or authentication (api/app.py).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Final

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

API_IDLE_TIMEOUT_S: Final = 5.0
BACKLOG: Final = 128
_BUSY: Final = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def api_runner(app: web.Application) -> web.AppRunner:
    """The runner `start_api_server` expects: aiohttp's keep-alive timeout doubles as the request deadline."""
    return web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=API_IDLE_TIMEOUT_S)


class _Busy(asyncio.Protocol):
    """A connection above the bound: answered 503 and closed without reading anything."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_BUSY)
        transport.close()


class _BoundedFactory:
    """Protocol factory for `loop.create_server`: the runner's handlers while fewer than `limit` are open."""

    def __init__(self, server: web.Server, limit: int | None) -> None:
        self._server = server
        self._limit = limit
        self._refusing = False
        self.refused = 0

    def __call__(self) -> asyncio.BaseProtocol:
        if self._limit is not None and len(self._server.connections) >= self._limit:
            self.refused += 1
            if not self._refusing:  # once per episode, not once per connection of a flood
                self._refusing = True
                log.warning("api_connections_exhausted", limit=self._limit)
            return _Busy()
        self._refusing = False
        return self._server()


class ApiServer:
    """The API's runner and listening socket; `close()` stops both (listener first)."""

    def __init__(self, runner: web.AppRunner, listener: asyncio.Server, factory: _BoundedFactory) -> None:
        self._runner = runner
        self._listener = listener
        self._factory = factory
        self._closed = False
        self.port: int = listener.sockets[0].getsockname()[1]

    @property
    def refused(self) -> int:
        """Connections answered 503 because `max_connections` were open."""
        return self._factory.refused

    async def close(self) -> None:
        """Idempotent: the ordered shutdown closes it, and a start-up failure's unwinding may again."""
        if self._closed:
            return
        self._closed = True
        self._listener.close()
        await self._runner.cleanup()  # closes the open connections, which wait_closed (3.12+) waits for
        await self._listener.wait_closed()


async def start_api_server(runner: web.AppRunner, host: str, port: int, *, ssl_context: ssl.SSLContext | None,
                           max_connections: int | None) -> ApiServer:
    """Set `runner` (from `api_runner`) up and listen on host:port (0 = any free port); OSError if the
    address cannot be bound. `max_connections=None` leaves the count unbounded."""
    await runner.setup()
    server = runner.server
    assert server is not None
    factory = _BoundedFactory(server, max_connections)
    backlog = BACKLOG if max_connections is None else min(BACKLOG, max_connections)
    try:
        listener = await asyncio.get_running_loop().create_server(
            factory, host, port, ssl=ssl_context, backlog=backlog,
            ssl_handshake_timeout=API_IDLE_TIMEOUT_S if ssl_context is not None else None,
        )
    except BaseException:
        await runner.cleanup()
        raise
    return ApiServer(runner, listener, factory)
