"""The API's listener (api/listener.py) on a real socket: silent and half-sent connections are closed after
API_IDLE_TIMEOUT_S, a running handler is never cut by that timeout, and above `max_connections` a
connection is answered 503 and closed at once (issue 11 §2 "Idle connections").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from controlplane.api.app import create_app
from controlplane.api.listener import API_IDLE_TIMEOUT_S, ApiServer, api_runner, start_api_server
from controlplane.observability import Metrics
from controlplane.store.memory import MemoryStore

Serve = Callable[..., Awaitable[ApiServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Factory: `await serve(max_connections=None, runner=None)` → a started ApiServer on port 0."""
    started: list[ApiServer] = []

    async def start(max_connections: int | None = None, runner: web.AppRunner | None = None) -> ApiServer:
        runner = runner or api_runner(create_app(MemoryStore(), Metrics()))
        server = await start_api_server(runner, "127.0.0.1", 0, ssl_context=None, max_connections=max_connections)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.close()


async def closed_after(port: int, send: bytes = b"", timeout: float = 3 * API_IDLE_TIMEOUT_S) -> tuple[float, bytes]:
    """Connect, send `send`, then wait for the server to close; (seconds, bytes received)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    began = time.monotonic()
    try:
        if send:
            writer.write(send)
            await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
        return time.monotonic() - began, data
    finally:
        writer.close()


@pytest.mark.parametrize("send", [b"", b"GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\n"], ids=["silent", "half-request"])
async def test_connection_without_a_request_is_closed(serve: Serve, send: bytes) -> None:
    """aiohttp's default keeps such a connection for 3 630 s; hundreds of them took every descriptor."""
    server = await serve()
    seconds, data = await closed_after(server.port, send)
    print(f"{'silent' if not send else 'half-request'} connection closed after {seconds:.2f} s")
    assert data == b""
    assert API_IDLE_TIMEOUT_S * 0.8 <= seconds


async def test_a_running_handler_is_not_cut_by_the_idle_timeout(serve: Serve) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/slow", slow)
    server = await serve(runner=web.AppRunner(app, access_log=None, keepalive_timeout=0.2))
    async with aiohttp.ClientSession() as session:
        pending = asyncio.create_task(session.get(f"http://127.0.0.1:{server.port}/slow"))
        await asyncio.sleep(1.0)  # five idle timeouts pass while the handler runs
        release.set()
        async with await pending as response:
            assert (response.status, await response.text()) == (200, "done")


async def test_connections_above_the_bound_get_503_at_once(serve: Serve) -> None:
    server = await serve(max_connections=2)
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
    try:
        async with aiohttp.ClientSession() as session:
            # Answered before it sends anything: a bounded server does not read what it refuses.
            seconds, data = await closed_after(server.port, timeout=API_IDLE_TIMEOUT_S / 2)
            assert data == b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            print(f"connection above the bound answered and closed after {seconds:.3f} s")
            assert server.refused == 1
            held.pop()[1].close()

            async def served() -> bool:
                async with session.get(f"http://127.0.0.1:{server.port}/ready") as response:
                    return response.status == 200

            deadline = time.monotonic() + 5
            while not await served():
                assert time.monotonic() < deadline, "a freed slot was never reused"
                await asyncio.sleep(0.05)
    finally:
        for _, writer in held:
            writer.close()
