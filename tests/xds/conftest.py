"""Fixtures for ADS protocol tests: a real grpc.aio server on port 0 and raw clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from ads_test_client import AdsClient, ClientFactory
from xds_resources import NODE

from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import AdsServer, start_ads_server


@pytest.fixture
def cache() -> SnapshotCache:
    return SnapshotCache()


@pytest.fixture
async def ads(cache: SnapshotCache) -> AsyncIterator[tuple[AdsServer, int]]:
    servicer = AdsServer(cache)
    server, port = await start_ads_server(cache, "127.0.0.1", 0, ads=servicer)
    try:
        yield servicer, port
    finally:
        await server.stop(0)


@pytest.fixture
async def channel(ads: tuple[AdsServer, int]) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ads[1]}") as chan:
        yield chan


@pytest.fixture
async def client(channel: grpc.aio.Channel) -> AsyncIterator[ClientFactory]:
    """Factory: `client(node_id=NODE, delta=False)`; every stream is closed at teardown."""
    clients: list[AdsClient] = []

    def make(node_id: str | None = NODE, *, delta: bool = False) -> AdsClient:
        made = AdsClient(channel, node_id, delta=delta)
        clients.append(made)
        return made

    yield make
    for made in clients:
        await made.close()
