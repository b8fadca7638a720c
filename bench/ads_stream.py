"""One simulated proxy's ADS stream, behaving like Envoy, inside a client process.

A stream behaves like Envoy (reference/xds-protocol.md §1.4-§1.11): wildcard CDS and LDS, EDS and RDS by
the names found in the clusters and listeners it holds, ACK at once (or NACK when fault injection says so),
reconnect with Envoy-like jittered exponential back-off (0.5 s base, 30 s cap) carrying its last accepted
versions (SotW) or `initial_resource_versions` (delta).

Every response is recorded as (server, node, type, version, ack-sent time, bytes, kind) with
`time.perf_counter()` (CLOCK_MONOTONIC, comparable across processes) through the `StreamOwner` seam (the
client process). In delta mode the recorded "version" is the digest of the name → version map the client
holds (`workload.resource_digest`), so the driver can check final state.

Simplification (documented in RESULTS.md): after a CDS change that does not alter the EDS name set the
client sends no EDS request (Envoy re-sends an identical one in SotW); servers here push EDS themselves.

Must not: own channels, processes or the record transport; bench/clients.py does.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from bench.workload import ADS_TYPES, TYPE_CODES, resource_digest

SOTW_METHOD: Final = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
DELTA_METHOD: Final = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
BACKOFF_BASE_S: Final = 0.5
BACKOFF_MAX_S: Final = 30.0
ACK, NACK = 0, 1
CDS, EDS, LDS, RDS = (TYPE_CODES[t] for t in ADS_TYPES)
_HCM_TYPE: Final = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

Record = tuple[int, int, int, str, float, int, int]
"""(server code, node index, type code, version, ack-sent perf_counter, response bytes, ACK|NACK)."""


# --- name extraction, cached by resource bytes (thousands of proxies share identical resources) ---------

_eds_cache: dict[bytes, str] = {}
_rds_cache: dict[bytes, tuple[str, ...]] = {}


def eds_name_of(value: bytes) -> str:
    """ClusterLoadAssignment name of an EDS cluster, "" for other clusters."""
    found = _eds_cache.get(value)
    if found is None:
        cluster = cluster_pb2.Cluster.FromString(value)
        found = ""
        if cluster.type == cluster_pb2.Cluster.EDS:
            found = cluster.eds_cluster_config.service_name or cluster.name
        _eds_cache[value] = found
    return found


def rds_names_of(value: bytes) -> tuple[str, ...]:
    found = _rds_cache.get(value)
    if found is None:
        listener = listener_pb2.Listener.FromString(value)
        names = []
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                if network_filter.typed_config.type_url == _HCM_TYPE:
                    hcm = http_connection_manager_pb2.HttpConnectionManager.FromString(
                        network_filter.typed_config.value)
                    if hcm.HasField("rds"):
                        names.append(hcm.rds.route_config_name)
        found = tuple(names)
        _rds_cache[value] = found
    return found


def _nack_status() -> status_pb2.Status:
    return status_pb2.Status(code=3, message="bench: injected NACK")


class StreamOwner(Protocol):
    """What a stream needs from its client process: a shared channel, fault injection, the record sink."""

    errors: int
    opened: int

    def channel_for(self, server: int, index: int) -> grpc.aio.Channel: ...

    def should_nack(self, server: int, index: int, code: int) -> bool: ...

    def record(self, server: int, index: int, code: int, version: str, n_bytes: int, kind: int) -> None: ...


# --- one stream ---------------------------------------------------------------------------------------


@dataclass
class _TypeState:
    version: str = ""
    nonce: str = ""
    names: tuple[str, ...] = ()
    requested: bool = False
    held: dict[str, str] = field(default_factory=dict)     # delta: name → version
    children: dict[str, Any] = field(default_factory=dict)  # delta CDS/LDS: name → EDS name / RDS names


class AdsClient:
    """One simulated proxy on one server."""

    def __init__(self, fleet: StreamOwner, server: int, index: int, node_id: str, delta: bool) -> None:
        self.fleet, self.server, self.index, self.node_id, self.delta = fleet, server, index, node_id, delta
        self.types = [_TypeState() for _ in ADS_TYPES]
        self.attempt = 0
        self.delay = 0.0
        self.opened = 0
        self.task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Any] | None = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.delay)
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - any stream failure means: back off and reconnect like Envoy
                self.fleet.errors += 1
            self.attempt += 1
            self.delay = random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** self.attempt))

    async def _session(self) -> None:
        channel = self.fleet.channel_for(self.server, self.index)
        method = channel.stream_stream(
            DELTA_METHOD if self.delta else SOTW_METHOD,
            request_serializer=(discovery_pb2.DeltaDiscoveryRequest.SerializeToString if self.delta
                                else discovery_pb2.DiscoveryRequest.SerializeToString),
            response_deserializer=None)
        call = method()
        self.opened += 1
        self.fleet.opened += 1
        for state in self.types:
            state.nonce = ""
            state.requested = False
        try:
            first = True
            for code in (CDS, LDS, EDS, RDS):
                if code in (CDS, LDS) or self.types[code].names:
                    await call.write(self._initial(code, first))
                    first = False
            while True:
                raw = await call.read()
                if raw is grpc.aio.EOF:
                    raise ConnectionError("stream ended")
                self.attempt = 0
                if self.delta:
                    await self._on_delta(call, raw)
                else:
                    await self._on_sotw(call, raw)
        finally:
            call.cancel()

    def _initial(self, code: int, first: bool) -> Any:
        state = self.types[code]
        state.requested = True
        node = base_pb2.Node(id=self.node_id, cluster="bench") if first else None
        if self.delta:
            subscribe = list(state.names) if code in (EDS, RDS) else []
            return discovery_pb2.DeltaDiscoveryRequest(
                node=node, type_url=ADS_TYPES[code], resource_names_subscribe=subscribe,
                initial_resource_versions=state.held)
        return discovery_pb2.DiscoveryRequest(node=node, type_url=ADS_TYPES[code], version_info=state.version,
                                              resource_names=list(state.names))

    async def _on_sotw(self, call: Any, raw: bytes) -> None:
        response = discovery_pb2.DiscoveryResponse.FromString(raw)
        code = TYPE_CODES[response.type_url]
        state = self.types[code]
        state.nonce = response.nonce
        nack = self.fleet.should_nack(self.server, self.index, code)
        if not nack:
            state.version = response.version_info
        request = discovery_pb2.DiscoveryRequest(
            type_url=response.type_url, version_info=state.version, response_nonce=response.nonce,
            resource_names=list(state.names), error_detail=_nack_status() if nack else None)
        await call.write(request)
        self.fleet.record(self.server, self.index, code, response.version_info, len(raw), NACK if nack else ACK)
        if nack or code not in (CDS, LDS):
            return
        child = EDS if code == CDS else RDS
        if code == CDS:
            names = tuple(sorted({n for n in (eds_name_of(r.value) for r in response.resources) if n}))
        else:
            names = tuple(sorted({n for r in response.resources for n in rds_names_of(r.value)}))
        child_state = self.types[child]
        if names != child_state.names:
            child_state.names = names
            child_state.requested = True
            await call.write(discovery_pb2.DiscoveryRequest(
                type_url=ADS_TYPES[child], version_info=child_state.version, response_nonce=child_state.nonce,
                resource_names=list(names)))

    async def _on_delta(self, call: Any, raw: bytes) -> None:
        response = discovery_pb2.DeltaDiscoveryResponse.FromString(raw)
        code = TYPE_CODES[response.type_url]
        state = self.types[code]
        nack = self.fleet.should_nack(self.server, self.index, code)
        if not nack:
            for resource in response.resources:
                state.held[resource.name] = resource.version
                if code == CDS:
                    state.children[resource.name] = eds_name_of(resource.resource.value)
                elif code == LDS:
                    state.children[resource.name] = rds_names_of(resource.resource.value)
            for name in response.removed_resources:
                state.held.pop(name, None)
                state.children.pop(name, None)
        await call.write(discovery_pb2.DeltaDiscoveryRequest(
            type_url=response.type_url, response_nonce=response.nonce,
            error_detail=_nack_status() if nack else None))
        self.fleet.record(self.server, self.index, code, resource_digest(state.held), len(raw),
                          NACK if nack else ACK)
        if nack or code not in (CDS, LDS):
            return
        child = EDS if code == CDS else RDS
        if code == CDS:
            names = tuple(sorted({n for n in state.children.values() if n}))
        else:
            names = tuple(sorted({n for group in state.children.values() for n in group}))
        child_state = self.types[child]
        if names != child_state.names or not child_state.requested:
            old = set(child_state.names)
            child_state.names = names
            first = not child_state.requested
            child_state.requested = True
            child_state.held = {n: v for n, v in child_state.held.items() if n in names}
            await call.write(discovery_pb2.DeltaDiscoveryRequest(
                type_url=ADS_TYPES[child], resource_names_subscribe=sorted(set(names) - old) if not first
                else list(names), resource_names_unsubscribe=sorted(old - set(names)),
                initial_resource_versions=child_state.held if first else None))
