"""`GET /events` (controlplane/api/sse.py) on the real API listener: the hello, batches as the hub makes
them, heartbeats on a quiet stream, 503 beyond the client limit, a client that leaves is unsubscribed, the
browser guard applies, and shutting the API down ends open streams instead of waiting for them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from controlplane.api.app import create_app
from controlplane.api.events import Event, EventHub
from controlplane.api.listener import ApiServer, api_runner, start_api_server
from controlplane.api.meta import ServerInfo
from controlplane.api.sse import LiveEvents
from controlplane.observability import Metrics
from controlplane.store.memory import MemoryStore


@asynccontextmanager
async def serving(hub: EventHub, heartbeat_s: float = 15.0) -> AsyncIterator[tuple[str, ApiServer]]:
    app = create_app(MemoryStore(), Metrics(), info=ServerInfo(instance_id="cp-1"), events=LiveEvents(hub, heartbeat_s))
    server = await start_api_server(api_runner(app), "127.0.0.1", 0, ssl_context=None, max_connections=None)
    try:
        yield f"http://127.0.0.1:{server.port}", server
    finally:
        await server.close()


async def read_message(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The next SSE message: its fields (`event`, `data` parsed as JSON, `retry`), or {"comment": text}."""
    fields: dict[str, Any] = {}
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 5.0)).decode()
        assert line, "the stream ended"
        line = line.rstrip("\n")
        if not line:
            if fields:
                return fields
            continue
        if line.startswith(":"):
            return {"comment": line[1:].strip()}
        key, _, value = line.partition(": ")
        fields[key] = json.loads(value) if key == "data" else value


async def eventually(check: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def test_hello_then_a_batch_per_window() -> None:
    hub = EventHub()
    async with serving(hub) as (url, _), aiohttp.ClientSession() as session, session.get(url + "/events") as response:
        assert response.status == 200
        assert (response.headers["Content-Type"], response.headers["Cache-Control"]) == ("text/event-stream", "no-store")
        assert await read_message(response) == {"retry": "1000", "event": "hello",
                                                "data": {"instanceId": "cp-1", "heartbeatSeconds": 15.0}}
        hub.publish(Event("resource", "default", "web-1", "Dataplane", "created"))
        hub.publish(Event("snapshot", "default", count=2))
        assert await read_message(response) == {"event": "changes", "data": {"resync": False, "events": [
            {"type": "resource", "kind": "Dataplane", "mesh": "default", "name": "web-1", "detail": "created"},
            {"type": "snapshot", "mesh": "default", "count": 2}]}}


async def test_at_most_five_batches_a_second() -> None:
    hub = EventHub()
    async with serving(hub) as (url, _), aiohttp.ClientSession() as session, session.get(url + "/events") as response:
        await read_message(response)
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def publish() -> None:
            for i in range(100):
                hub.publish(Event("spans", "default", f"web-{i}", detail="flowing"))
                await asyncio.sleep(0.01)

        producer = asyncio.create_task(publish())
        seen: set[str] = set()
        batches = 0
        while len(seen) < 100:
            message = await read_message(response)
            batches += 1
            seen.update(e["name"] for e in message["data"]["events"])
        await producer
        elapsed = loop.time() - started
    assert batches <= 5 * elapsed + 2, (batches, elapsed)


async def test_a_quiet_stream_gets_heartbeats() -> None:
    async with serving(EventHub(), heartbeat_s=0.2) as (url, _), aiohttp.ClientSession() as session, \
            session.get(url + "/events") as response:
        await read_message(response)
        assert await read_message(response) == {"comment": "heartbeat"}
        assert await read_message(response) == {"comment": "heartbeat"}


async def test_clients_beyond_the_limit_get_503_and_a_leaving_one_frees_its_place() -> None:
    hub = EventHub(max_clients=1)
    async with serving(hub) as (url, _), aiohttp.ClientSession() as session:
        first = await session.get(url + "/events")
        await read_message(first)
        async with session.get(url + "/events") as refused:
            assert refused.status == 503
            assert await refused.json() == {"title": "Too many event clients", "details":
                                            "at most 1 clients may follow the event stream at once; close another GUI, "
                                            "or raise --api-max-event-clients"}
        first.close()  # the browser tab goes away: the server notices within a second and unsubscribes
        await eventually(lambda: hub.clients == 0)
        async with session.get(url + "/events") as again:
            assert again.status == 200


async def test_a_foreign_host_is_refused_like_any_api_read() -> None:
    async with serving(EventHub()) as (url, _), aiohttp.ClientSession() as session, \
            session.get(url + "/events", headers={"Host": "evil.example"}) as response:
        assert response.status == 421


async def test_shutdown_ends_open_streams_at_once() -> None:
    hub = EventHub()
    async with serving(hub) as (url, server), aiohttp.ClientSession() as session, \
            session.get(url + "/events") as response:
        await read_message(response)
        await asyncio.wait_for(server.close(), 3.0)  # aiohttp would otherwise wait 60 s for the handler
        assert await asyncio.wait_for(response.content.read(), 3.0) == b""
        assert hub.clients == 0
