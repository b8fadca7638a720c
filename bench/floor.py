"""The reference "floor" ADS server (reference/performance.md §7.3 item 3, §6.2 `shared` mode).

Serves the same per-proxy resources as the control plane (the harness builds them with the control plane's
own generator, `workload.expected_configs`), but every response is **pre-built and pre-serialised before the
clock starts**: a change is a pointer switch to the next state, and a push is one `bytes` concatenation
(the nonce is appended as protobuf field 5, which parsers accept in any position) and one write. Same
client-visible discipline as the control plane: content-hash versions, a per-stream increasing nonce, CDS →
EDS → LDS → RDS order, answer a type's first request even when empty, never answer a plain ACK, never resend
a NACKed version, SotW sends a type when its version changed, delta sends the pre-computed difference.

What it skips (so it is a floor): policy matching, generation, hashing, consistency checks, status
tracking, logging, metrics. It ignores EDS/RDS resource names (sends all of the proxy's CLAs/routes, which is
exactly what the simulated clients subscribe to) and delta `initial_resource_versions` (sends everything).

Runs in its own process (pinned like the control plane); commands arrive through a pipe.
"""

from __future__ import annotations

import asyncio
import os
import pickle
from collections.abc import AsyncIterator, Mapping
from multiprocessing.connection import Connection
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from bench.workload import ADS_TYPES, TYPE_CODES, ProxyConfig, expected_pushes
from controlplane.xds import grpc_wakeup, types

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
_EDS = TYPE_CODES[types.ENDPOINT_TYPE]


def with_nonce(body: bytes, nonce: str) -> bytes:
    """Append field 5 (`nonce`, both DiscoveryResponse and DeltaDiscoveryResponse) to a serialised response."""
    raw = nonce.encode()
    return body + b"\x2a" + bytes([len(raw)]) + raw  # nonces are short decimal counters (< 128 bytes)


def sotw_body(type_url: str, version: str, resources: Mapping[str, tuple[str, bytes]]) -> bytes:
    return discovery_pb2.DiscoveryResponse(
        version_info=version, type_url=type_url,
        resources=[any_pb2.Any(type_url=type_url, value=value) for _, (_, value) in sorted(resources.items())],
    ).SerializeToString()


def delta_body(type_url: str, version: str, resources: Mapping[str, tuple[str, bytes]], names: list[str],
               removed: list[str]) -> bytes:
    return discovery_pb2.DeltaDiscoveryResponse(
        system_version_info=version, type_url=type_url, removed_resources=removed,
        resources=[discovery_pb2.Resource(name=name, version=resources[name][0],
                                          resource=any_pb2.Any(type_url=type_url, value=resources[name][1]))
                   for name in names],
    ).SerializeToString()


class Prepared:
    """Every response body the floor may send, per state, node and type code."""

    def __init__(self, states: list[dict[str, ProxyConfig]], delta: bool) -> None:
        self.delta = delta
        self.versions: list[dict[str, list[str]]] = []
        self.full: list[dict[str, list[bytes]]] = []
        self.diff: dict[tuple[int, int], dict[str, list[bytes | None]]] = {}
        for configs in states:
            self.versions.append({node: [c.types[t].version for t in ADS_TYPES] for node, c in configs.items()})
            self.full.append({node: [self._full(c, t) for t in ADS_TYPES] for node, c in configs.items()})
        if delta:
            for a, before in enumerate(states):
                for b, after in enumerate(states):
                    if a != b:
                        self.diff[(a, b)] = {node: self._diff(before[node], after[node]) for node in after}

    def _full(self, config: ProxyConfig, type_url: str) -> bytes:
        tc = config.types[type_url]
        if self.delta:
            return delta_body(type_url, tc.version, tc.resources, sorted(tc.resources), [])
        return sotw_body(type_url, tc.version, tc.resources)

    @staticmethod
    def _diff(before: ProxyConfig, after: ProxyConfig) -> list[bytes | None]:
        pushes = expected_pushes(before, after, "delta")
        out: list[bytes | None] = []
        for type_url in ADS_TYPES:
            if type_url not in pushes:
                out.append(None)
                continue
            old, new = before.types[type_url].resources, after.types[type_url].resources
            changed = [n for n in sorted(new) if old.get(n, ("",))[0] != new[n][0]]
            if type_url == types.ENDPOINT_TYPE:
                eds = {after.eds_clusters[c] for c in after.eds_clusters
                       if before.types[types.CLUSTER_TYPE].resources.get(c, ("",))[0]
                       != after.types[types.CLUSTER_TYPE].resources[c][0]}
                changed = sorted(set(changed) | (eds & set(new)))
            removed = sorted(set(old) - set(new))
            out.append(delta_body(type_url, after.types[type_url].version, new, changed, removed))
        return out


class FloorServer:
    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self.current = 0
        self.streams: set[_FloorStream] = set()

    def advance(self, state: int) -> None:
        self.current = state
        for stream in self.streams:
            stream.changed.set()

    async def sotw(self, requests: AsyncIterator[Any], context: Any) -> None:
        await _FloorStream(self, context, delta=False).run(requests)

    async def delta(self, requests: AsyncIterator[Any], context: Any) -> None:
        await _FloorStream(self, context, delta=True).run(requests)


class _FloorStream:
    def __init__(self, server: FloorServer, context: Any, delta: bool) -> None:
        self.server, self.context, self.delta = server, context, delta
        self.node = ""
        self.nonce = 0
        self.requested = [False] * 4
        self.nonce_sent = [""] * 4
        self.state_sent: list[int | None] = [None] * 4
        self.changed = asyncio.Event()
        self.lock = asyncio.Lock()

    async def run(self, requests: AsyncIterator[Any]) -> None:
        self.server.streams.add(self)
        pusher: asyncio.Task[None] | None = None
        try:
            async for request in requests:
                if not self.node:
                    self.node = request.node.id
                    pusher = asyncio.create_task(self._push())
                await self._on_request(request)
        finally:
            self.server.streams.discard(self)
            if pusher is not None:
                pusher.cancel()

    async def _on_request(self, request: Any) -> None:
        code = TYPE_CODES[request.type_url]
        async with self.lock:
            if not self.requested[code]:
                self.requested[code] = True
                await self._send(code, full=True)
                return
            if self.delta or request.response_nonce != self.nonce_sent[code]:
                return  # delta ACK/NACK, or a stale SotW nonce (§1.5): nothing to send
            if request.HasField("error_detail"):
                return  # NACK: never resend the rejected version (§1.4)
            if self.state_sent[code] is not None and self._version(code, self.state_sent[code]) != self._version(
                    code, self.server.current):
                await self._send(code, full=True)

    def _version(self, code: int, state: int | None) -> str:
        return "" if state is None else self.server.prepared.versions[state][self.node][code]

    async def _push(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            async with self.lock:
                for code in range(4):
                    if self.requested[code] and self.state_sent[code] != self.server.current:
                        await self._send(code, full=False)

    async def _send(self, code: int, full: bool) -> None:
        prepared, current = self.server.prepared, self.server.current
        held = self.state_sent[code]
        self.state_sent[code] = current
        if self.delta and not full and held is not None:
            body = prepared.diff[(held, current)][self.node][code]
            if body is None:
                return
        elif not self.delta and not full and held is not None and (
                prepared.versions[held][self.node][code] == prepared.versions[current][self.node][code]):
            return
        else:
            body = prepared.full[current][self.node][code]
        self.nonce += 1
        self.nonce_sent[code] = str(self.nonce)
        await self.context.write(with_nonce(body, self.nonce_sent[code]))


async def _serve(conn: Connection, plan_path: str, delta: bool) -> None:
    with open(plan_path, "rb") as handle:  # noqa: ASYNC230 - before the server starts
        states = pickle.load(handle)
    floor = FloorServer(Prepared(states, delta))
    del states
    server = grpc.aio.server(options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])
    handlers = {
        "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
            floor.sotw, request_deserializer=discovery_pb2.DiscoveryRequest.FromString),
        "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
            floor.delta, request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    grpc_wakeup.install()  # the same transport fix as the control plane (controlplane/xds/grpc_wakeup.py)
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[Any] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    conn.send(("ready", port))
    while True:
        command, *args = await commands.get()
        if command == "advance":
            floor.advance(args[0])
        elif command == "streams":
            conn.send(("streams", len(floor.streams)))
        elif command == "stop":
            await server.stop(0.5)
            conn.send(("stopped", None))
            return


def floor_main(conn: Connection, plan_path: str, delta: bool, cpus: set[int] | None) -> None:
    """Process entry point (multiprocessing spawn)."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    asyncio.run(_serve(conn, plan_path, delta))
