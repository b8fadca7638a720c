"""grpc.aio completions keep flowing while the event loop is busy (controlplane/xds/grpc_wakeup.py).

A real grpc.aio server in this process and a real grpc.aio client in a subprocess (its own event loop), many
streams. The server's loop then runs a busy phase like a regeneration pass (CPU work with a yield every
5 ms) during which every stream writes three messages. Without the drain, grpc's poller thread blocks on
the wake-up socket after a few hundred completions and the writes only finish once the loop goes idle, so
the busy phase runs out of iterations; with it, every write completes inside the busy phase. The outcome
is a count (writes completed within a fixed number of busy iterations), not a timing.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from controlplane.xds import grpc_wakeup

STREAMS = 400
WRITES = 3
BUSY_ITERATIONS = 800
"""Yields of the busy phase (≈ 4 s of spinning): completing all writes takes a few dozen with the drain."""

CLIENT = """
import asyncio, sys, grpc
async def one(channel):
    async def requests():
        yield b"x"
        await asyncio.sleep(3600)
    call = channel.stream_stream("/t.T/S", request_serializer=bytes, response_deserializer=bytes)(requests())
    async for _ in call:
        pass
async def main():
    port, n = sys.argv[1], int(sys.argv[2])
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("t.id", i)]) for i in range(n // 50 + 1)]
    await asyncio.gather(*(one(channels[i // 50]) for i in range(n)), return_exceptions=True)
asyncio.run(main())
"""


class Streams:
    def __init__(self) -> None:
        self.opened: list[asyncio.Event] = []
        self.completed = 0

    async def handle(self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:
        go = asyncio.Event()
        self.opened.append(go)
        await go.wait()
        for _ in range(WRITES):
            await context.write(b"y" * 1500)
            self.completed += 1
        await asyncio.sleep(3600)


async def _busy_until(done: Callable[[], bool], wake: list[asyncio.Event]) -> int:
    """Spin like a regeneration pass (5 ms of work per iteration, then a yield), waking the streams over the
    first 60 iterations; the iterations it took until `done()` (BUSY_ITERATIONS when it never was)."""
    woken = 0
    for iteration in range(BUSY_ITERATIONS):
        if done():
            return iteration
        until = time.perf_counter() + 0.005
        while time.perf_counter() < until:
            pass
        target = min(len(wake), len(wake) * (iteration + 1) // 60 + 1)
        while woken < target:
            wake[woken].set()
            woken += 1
        await asyncio.sleep(0)
    return BUSY_ITERATIONS


@pytest.mark.timeout(60)
async def test_writes_complete_while_the_loop_is_busy() -> None:
    streams = Streams()
    server = grpc.aio.server()
    handler = grpc.stream_stream_rpc_method_handler(streams.handle, request_deserializer=bytes,
                                                    response_serializer=bytes)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", {"S": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    assert grpc_wakeup.install()
    assert grpc_wakeup.install()  # idempotent: already wrapped
    client = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, str(port), str(STREAMS))
    try:
        async with asyncio.timeout(30):
            while len(streams.opened) < STREAMS:
                await asyncio.sleep(0.05)
        took = await _busy_until(lambda: streams.completed == STREAMS * WRITES, streams.opened)
        assert streams.completed == STREAMS * WRITES, (
            f"only {streams.completed} of {STREAMS * WRITES} writes completed during {took} busy iterations")
    finally:
        client.kill()
        await client.wait()
        await server.stop(0)


async def test_install_without_grpc_reports_false() -> None:
    # A fresh loop that grpc.aio never bound: nothing to wrap, grpc left alone.
    loop = asyncio.new_event_loop()
    try:
        assert grpc_wakeup.install(loop, warn=False) is False
    finally:
        loop.close()
