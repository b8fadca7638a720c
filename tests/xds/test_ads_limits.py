"""ADS limits over real gRPC (issue 11 §1 "grpc SO_REUSEPORT", §2 "Pre-auth memory" and "Idle connections").

A raw client (ads_test_client.py) against `start_ads_server` on port 0: a second server cannot bind the same
port; requests over the receive cap and streams over `StreamLimits` end with RESOURCE_EXHAUSTED and a
message naming the limit, logged once; no rejected (or handled) request stays referenced once its stream
no longer needs it; connections that never finish the HTTP/2 handshake, carry no stream, or come above the
connection cap are closed, while an open ADS stream is never touched.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from ads_test_client import AdsClient, ClientFactory, StreamEnded
from envoy.service.discovery.v3 import discovery_pb2
from structlog.testing import capture_logs
from xds_resources import CDS, EDS, NODE, snapshot

from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import AdsBindError, AdsServer, start_ads_server
from controlplane.xds.server_options import (
    CONNECTION_IDLE_MS,
    DEFAULT_MAX_RECEIVE_BYTES,
    HANDSHAKE_TIMEOUT_MS,
    server_options,
)

HOSTILE = 1_000
"""Requests with more names than this are the tests' hostile ones; nothing legitimate here has as many."""


def many(count: int, width: int = 8) -> tuple[str, ...]:
    return tuple(f"{i:0{width}d}" for i in range(count))


def hostile_requests() -> list[Any]:
    """Request messages still alive in this process with more than HOSTILE names (client or server side)."""
    kinds = (discovery_pb2.DiscoveryRequest, discovery_pb2.DeltaDiscoveryRequest)
    found = []
    for item in gc.get_objects():
        if isinstance(item, kinds):
            size = len(item.resource_names) if isinstance(item, discovery_pb2.DiscoveryRequest) else (
                len(item.resource_names_subscribe) + len(item.initial_resource_versions))
            if size > HOSTILE:
                found.append(item)
    return found


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Reference cycles are not collected during the test, so anything still reachable from a traceback or
    a frame shows up in `hostile_requests()` (with the collector on, a cycle would only delay the leak)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def end_of(stream: AdsClient) -> StreamEnded:
    """How the stream ended, skipping the responses sent before (e.g. removals of missing names)."""
    while True:
        try:
            await stream.recv()
        except StreamEnded as ended:
            return ended


async def closed_stream(ads: AdsServer) -> bool:
    return not ads.connected_nodes()


async def eventually(predicate: Any, *, message: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.02)


async def no_hostile_requests() -> None:
    """grpc releases a finished call's last message a loop iteration or two after the handler returns."""
    async def none_left() -> bool:
        return not hostile_requests()

    await eventually(none_left, timeout=3, message=f"request messages still referenced: {len(hostile_requests())}")


async def test_second_server_on_the_same_port_fails_to_bind(cache: SnapshotCache, client: ClientFactory,
                                                            ads: tuple[AdsServer, int]) -> None:
    """grpc sets SO_REUSEPORT by default, so two servers used to share the port and split the proxies."""
    _, port = ads
    with pytest.raises(AdsBindError) as caught:
        await start_ads_server(cache, "127.0.0.1", port)
    assert str(caught.value) == f"cannot listen for ADS on 127.0.0.1:{port}: address already in use"
    assert isinstance(caught.value, RuntimeError) and caught.value.address == f"127.0.0.1:{port}"
    cache.set_snapshot(NODE, snapshot())
    stream = client()
    await stream.request(CDS)
    assert (await stream.recv()).type_url == CDS  # the first server still serves


async def test_address_not_on_this_host_fails_to_bind(cache: SnapshotCache) -> None:
    with pytest.raises(AdsBindError) as caught:
        await start_ads_server(cache, "192.0.2.1", 0)  # TEST-NET-1: never a local address
    assert str(caught.value) == "cannot listen for ADS on 192.0.2.1:0: cannot assign requested address"


async def test_request_over_the_receive_cap_is_refused_by_grpc(cache: SnapshotCache, client: ClientFactory) -> None:
    cache.set_snapshot(NODE, snapshot())
    fits, too_big = client(), client()
    await fits.request(EDS, many(3_000, width=1_000))  # ~3 MiB: under the cap and the name limits
    assert (await fits.recv()).type_url == EDS
    await too_big.request(EDS, many(DEFAULT_MAX_RECEIVE_BYTES // 1_000 + 100, width=1_000))
    ended = await too_big.ended()
    assert ended.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ended.details.startswith("SERVER: Received message larger than max (")


async def test_a_large_proxys_first_delta_request_fits_the_defaults(cache: SnapshotCache,
                                                                    client: ClientFactory) -> None:
    """What the default receive cap is sized for (README, `--xds-max-receive-bytes`): after a reconnect,
    Envoy's first delta request lists every resource of the type it holds with its version. 60 000
    clusters with 40-character names and our 16-character versions pass every limit."""
    held = {f"service-{i:05d}.namespace.svc.cluster:8080": "0123456789abcdef" for i in range(60_000)}
    request = discovery_pb2.DeltaDiscoveryRequest(type_url=CDS, initial_resource_versions=held)
    print(f"first delta request for 60 000 clusters: {request.ByteSize()} bytes "
          f"({request.ByteSize() / len(held):.0f} per resource)")
    assert request.ByteSize() < DEFAULT_MAX_RECEIVE_BYTES
    cache.set_snapshot(NODE, snapshot(clusters=["c1"]))
    stream = client(delta=True)
    await stream.delta_request(CDS, initial=held)
    response = await stream.recv()
    assert [r.name for r in response.resources] == ["c1"] and len(response.removed_resources) == 60_000


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_too_many_names_in_one_request(cache: SnapshotCache, client: ClientFactory, delta: bool) -> None:
    cache.set_snapshot(NODE, snapshot())
    stream = client(delta=delta)
    names = many(100_001)
    with capture_logs() as logs:
        if delta:
            await stream.delta_request(EDS, subscribe=names)
        else:
            await stream.request(EDS, names)
        ended = await stream.ended()
    field = "resource_names_subscribe" if delta else "resource_names"
    assert (ended.code, ended.details) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, f"{field} lists 100001 names for {EDS}; at most 100000 per request")
    rejected = [entry for entry in logs if entry["event"] == "stream_rejected"]
    assert [(e["limit"], e["reason"], e["log_level"]) for e in rejected] == [
        ("names_per_request", ended.details, "warning")]


async def test_delta_subscription_grows_to_the_stream_limit(cache: SnapshotCache, client: ClientFactory) -> None:
    """Small requests, each under every per-request limit, that together subscribe too many names."""
    cache.set_snapshot(NODE, snapshot())
    stream = client(delta=True)
    await stream.delta_request(CDS)
    await stream.recv()
    for start in (0, 50_000):
        await stream.delta_request(EDS, subscribe=tuple(f"n{i}" for i in range(start, start + 50_000)))
    await stream.delta_request(EDS, subscribe=("one-too-many",))
    ended = await end_of(stream)
    assert (ended.code, ended.details) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "the stream would subscribe to 100001 resource names; at most 100000 per stream")


async def test_too_many_type_urls(cache: SnapshotCache, client: ClientFactory) -> None:
    """200 000 type URLs on one stream held ~460 MB before; the 17th distinct one now ends the stream."""
    stream = client()
    for i in range(17):
        await stream.request(f"type.googleapis.com/hostile.v3.Type{i}")
    ended = await stream.ended()
    assert (ended.code, ended.details) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, "more than 16 distinct type URLs on one stream")


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
@pytest.mark.parametrize("first", [True, False], ids=["first-request", "later-request"])
async def test_rejected_request_is_not_kept_alive(ads: tuple[AdsServer, int], cache: SnapshotCache,
                                                  client: ClientFactory, no_gc: None, delta: bool,
                                                  first: bool) -> None:
    """Nothing (a traceback, a task's exception, a handler frame) keeps a refused request once its stream
    has ended, even with the cycle collector off."""
    servicer, _ = ads
    cache.set_snapshot(NODE, snapshot())
    stream = client(delta=delta)
    if not first:
        await (stream.delta_request(CDS) if delta else stream.request(CDS))
        await stream.recv()
    names = many(100_001)
    await (stream.delta_request(EDS, subscribe=names) if delta else stream.request(EDS, names))
    del names
    assert (await stream.ended()).code == grpc.StatusCode.RESOURCE_EXHAUSTED
    await eventually(lambda: closed_stream(servicer), message="the server never closed the stream")
    await no_hostile_requests()


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_first_request_is_not_kept_for_the_streams_life(cache: SnapshotCache, client: ClientFactory,
                                                              no_gc: None, delta: bool) -> None:
    """A stream lives for hours; its first request (a delta one lists every resource the proxy holds) must
    not stay referenced once later, small requests have been handled."""
    cache.set_snapshot(NODE, snapshot(clusters=["c1"]))
    stream = client(delta=delta)
    held = {f"old-{i}": "v" for i in range(5_000)}
    await (stream.delta_request(CDS, initial=held) if delta else stream.request(EDS, tuple(held)))
    del held
    while True:  # ACK with small requests until the server has nothing more to say
        try:
            response = await stream.recv(timeout=0.5)
        except TimeoutError:
            break
        await (stream.delta_request(response.type_url, nonce=response.nonce) if delta
               else stream.ack(response, ("c1",)))
    await no_hostile_requests()
    cache.set_snapshot(NODE, snapshot(clusters=["c1", "c2"]))
    assert await stream.recv()  # still open and served


async def _raw_connection_closed(port: int, timeout: float) -> float:
    """Open a TCP connection that never sends a byte; seconds until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    began = time.monotonic()
    try:
        data = await asyncio.wait_for(reader.read(), timeout)
        assert data == b"" or data.startswith(b"\x00"), data  # EOF (gRPC may send SETTINGS/GOAWAY first)
        return time.monotonic() - began
    finally:
        writer.close()


async def test_connection_without_handshake_is_closed(ads: tuple[AdsServer, int]) -> None:
    """gRPC's default handshake timeout is 120 s: 1 100 silent connections held 1 024 descriptors."""
    seconds = await _raw_connection_closed(ads[1], timeout=3 * HANDSHAKE_TIMEOUT_MS / 1000)
    print(f"silent connection closed after {seconds:.2f} s (handshake timeout {HANDSHAKE_TIMEOUT_MS} ms)")
    assert seconds >= HANDSHAKE_TIMEOUT_MS / 1000 * 0.8


@pytest.fixture
async def short_idle(cache: SnapshotCache) -> AsyncIterator[tuple[AdsServer, int]]:
    """A server whose idle timeout is 1 s (the real one is CONNECTION_IDLE_MS), everything else as shipped."""
    options = dict(server_options())
    assert options["grpc.max_connection_idle_ms"] == CONNECTION_IDLE_MS
    options["grpc.max_connection_idle_ms"] = 1_000
    servicer = AdsServer(cache)
    server, port = await start_ads_server(cache, "127.0.0.1", 0, ads=servicer, options=options.items())
    try:
        yield servicer, port
    finally:
        await server.stop(0)


async def test_idle_connection_closed_but_open_stream_kept(short_idle: tuple[AdsServer, int],
                                                           cache: SnapshotCache) -> None:
    _, port = short_idle
    cache.set_snapshot(NODE, snapshot(clusters=["c1"]))
    own_connection = [("grpc.use_local_subchannel_pool", 1)]  # or both channels share one TCP connection
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=own_connection) as idle, \
            grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=own_connection) as busy:
        await asyncio.wait_for(idle.channel_ready(), 5)
        stream = AdsClient(busy, NODE)
        try:
            await stream.request(CDS)
            first = await stream.recv()
            await stream.ack(first)

            async def idle_dropped() -> bool:
                return bool(idle.get_state() != grpc.ChannelConnectivity.READY)

            await eventually(idle_dropped, timeout=10, message="the idle connection was never closed")
            await stream.expect_silence(1.5)  # more idle timeouts pass; the stream's connection stays
            cache.set_snapshot(NODE, snapshot(clusters=["c1", "c2"]))
            assert (await stream.recv()).version_info != first.version_info
            assert busy.get_state() == grpc.ChannelConnectivity.READY
        finally:
            await stream.close()


async def test_connections_above_the_cap_are_closed_at_once(cache: SnapshotCache) -> None:
    server, port = await start_ads_server(cache, "127.0.0.1", 0, options=server_options(max_connections=4))
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
    try:
        seconds = await _raw_connection_closed(port, timeout=HANDSHAKE_TIMEOUT_MS / 1000 / 2)
        print(f"connection above the cap closed after {seconds:.3f} s")
    finally:
        for _, writer in held:
            writer.close()
        await server.stop(0)


