"""Client processes hosting many simulated ADS streams, and the driver's handle on them.

Each client process (a `Fleet`) runs many grpc.aio streams (bench/ads_stream.py), ≤ 50 per channel with a
unique channel arg per channel so channels do not share one HTTP/2 connection (reference/performance.md
§7.8). Streams open with a jittered ramp-up. Records are shipped to the driver in batches through the
process pipe, never stdout (printing would cost the client CPU the driver shares). `ClientPool` is the
driver side: it spreads proxies over the processes, sends commands and hands records to a callback.

Must not: interpret records; bench/measure.py does.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Final

import grpc

from bench.ads_stream import AdsClient, Record
from bench.stats_reporter import Reporters
from controlplane.xds import grpc_wakeup

STREAMS_PER_CHANNEL: Final = 50
FLUSH_EVERY_S: Final = 0.01


# --- one process: many streams --------------------------------------------------------------------------


class Fleet:
    """All streams of one client process, its channels, and the record buffer."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.clients: dict[int, list[AdsClient]] = {}
        self.targets: dict[int, str] = {}
        self.channels: dict[tuple[int, int], grpc.aio.Channel] = {}
        self.nacks: set[tuple[int, int, int]] = set()
        self.buffer: list[Record] = []
        self.errors = 0
        self.opened = 0
        self._channel_seq = 0
        self._wakeup_drained = False
        self.reporters = Reporters()

    def channel_for(self, server: int, index: int) -> grpc.aio.Channel:
        group = index // STREAMS_PER_CHANNEL
        channel = self.channels.get((server, group))
        if channel is None:
            self._channel_seq += 1
            options = [("bench.channel", f"{os.getpid()}-{self._channel_seq}"),
                       ("grpc.max_receive_message_length", 64 * 1024 * 1024)]
            channel = self.channels[(server, group)] = grpc.aio.insecure_channel(self.targets[server], options=options)
        return channel

    def should_nack(self, server: int, index: int, code: int) -> bool:
        return (server, index, code) in self.nacks

    def record(self, server: int, index: int, code: int, version: str, n_bytes: int, kind: int) -> None:
        self.buffer.append((server, index, code, version, time.perf_counter(), n_bytes, kind))

    async def flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            if not self._wakeup_drained and self.channels:
                # Same grpc.aio wake-up fix as the servers: a client loop busy with a burst of pushes
                # would otherwise stall its own completions (controlplane/xds/grpc_wakeup.py).
                self._wakeup_drained = grpc_wakeup.install(warn=False)
            if self.buffer:
                batch, self.buffer = self.buffer, []
                self.conn.send(("records", batch))

    def connect(self, server: int, target: str, nodes: list[tuple[int, str]], delta: bool, ramp_s: float) -> None:
        self.targets[server] = target
        clients = self.clients.setdefault(server, [])
        for index, node_id in nodes:
            client = AdsClient(self, server, index, node_id, delta)
            client.delay = random.uniform(0, ramp_s)
            client.task = asyncio.create_task(client.run())
            clients.append(client)

    async def drop(self, server: int, spread_s: float, reconnect: bool) -> None:
        """Close every stream and channel of `server`; reconnect each within `spread_s` (a storm) if asked."""
        clients = self.clients.get(server, [])
        for client in clients:
            if client.task is not None:
                client.task.cancel()
        await asyncio.gather(*(c.task for c in clients if c.task is not None), return_exceptions=True)
        for key in [k for k in self.channels if k[0] == server]:
            await self.channels.pop(key).close()
        if not reconnect:
            self.clients[server] = []
            return
        for client in clients:
            client.delay = random.uniform(0, spread_s)
            client.attempt = 0
            client.task = asyncio.create_task(client.run())

    def stats(self) -> dict[str, int]:
        return {"opened": self.opened, "errors": self.errors,
                "streams": sum(len(c) for c in self.clients.values()),
                "stats_reports": self.reporters.sent, "stats_errors": self.reporters.errors}


async def _serve(conn: Connection) -> None:
    fleet = Fleet(conn)
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[Any] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    flusher = asyncio.create_task(fleet.flush_forever())
    while True:
        command, *args = await commands.get()
        if command == "connect":
            fleet.connect(*args)
        elif command == "drop":
            await fleet.drop(*args)
        elif command == "nack":
            server, index, code, on = args
            (fleet.nacks.add if on else fleet.nacks.discard)((server, index, code))
        elif command == "stats":
            conn.send(("stats", fleet.stats()))
        elif command == "report":
            fleet.reporters.start(*args)
        elif command == "unreport":
            await fleet.reporters.stop()
            conn.send(("unreported", fleet.stats()))
        elif command == "stop":
            await fleet.reporters.stop()
            await asyncio.sleep(2 * FLUSH_EVERY_S)
            for server in list(fleet.clients):
                await fleet.drop(server, 0, False)
            flusher.cancel()
            conn.send(("stopped", fleet.stats()))
            return


def _process_main(conn: Connection, cpus: set[int] | None) -> None:
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    asyncio.run(_serve(conn))


# --- driver side -----------------------------------------------------------------------------------------


class ClientPool:
    """The driver's handle on the client processes: send commands, receive records via a callback."""

    def __init__(self, processes: int, cpus: set[int] | None, on_records: Callable[[list[Record]], None]) -> None:
        context = multiprocessing.get_context("spawn")
        self._on_records = on_records
        self._conns: list[Connection] = []
        self._procs = []
        self._replies: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        for _ in range(processes):
            parent, child = context.Pipe()
            proc = context.Process(target=_process_main, args=(child, cpus), daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        for i, conn in enumerate(self._conns):
            loop.add_reader(conn.fileno(), self._readable, i, conn)

    def _readable(self, i: int, conn: Connection) -> None:
        while conn.poll():
            kind, payload = conn.recv()
            if kind == "records":
                self._on_records(payload)
            else:
                self._replies.put_nowait((i, payload))

    def connect(self, server: int, target: str, nodes: list[tuple[int, str]], delta: bool, ramp_s: float) -> None:
        """Split `nodes` over the processes (round-robin by index) and open their streams."""
        for i, conn in enumerate(self._conns):
            mine = nodes[i::len(self._conns)]
            conn.send(("connect", server, target, mine, delta, ramp_s))

    def report(self, target: str, nodes: list[tuple[int, str]], interval_s: float, outbounds: int) -> None:
        """Start a simulated stats sink per node (bench/stats_reporter.py), spread over the processes."""
        for i, conn in enumerate(self._conns):
            conn.send(("report", target, nodes[i::len(self._conns)], interval_s, outbounds))

    async def unreport(self) -> None:
        """Close every simulated stats sink (the ADS streams stay); returns once every process has."""
        for conn in self._conns:
            conn.send(("unreport",))
        for _ in self._conns:
            await self._replies.get()

    def owner(self, index: int) -> Connection:
        return self._conns[index % len(self._conns)]

    def set_nack(self, server: int, index: int, code: int, on: bool) -> None:
        for conn in self._conns:
            conn.send(("nack", server, index, code, on))

    def drop(self, server: int, spread_s: float, reconnect: bool) -> None:
        for conn in self._conns:
            conn.send(("drop", server, spread_s, reconnect))

    async def stats(self) -> dict[str, int]:
        for conn in self._conns:
            conn.send(("stats",))
        total: dict[str, int] = {}
        for _ in self._conns:
            _, stats = await self._replies.get()
            for key, value in stats.items():
                total[key] = total.get(key, 0) + value
        return total

    async def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        for conn in self._conns:
            conn.send(("stop",))
        try:
            for _ in self._conns:
                await asyncio.wait_for(self._replies.get(), 15)
        except TimeoutError:
            pass
        for conn in self._conns:
            loop.remove_reader(conn.fileno())
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
