"""The ADS server reads the connecting Envoy's version from its first Node (issue 11 §6).

An Envoy older than the supported window is refused with FAILED_PRECONDITION naming the minimum, before
anything is sent; a supported one is served and its version recorded for inspection; a client that is not
Envoy (or says nothing) is served as before. SotW and delta alike: the check sits in the shared stream open.
"""

from __future__ import annotations

import grpc
import pytest
from ads_test_client import AdsClient, names_of
from envoy.config.core.v3 import base_pb2
from xds_resources import CDS, NODE, snapshot

from controlplane.xds.cache import SnapshotCache
from controlplane.xds.envoy_version import EnvoyVersion
from controlplane.xds.server import AdsServer


class VersionedClient(AdsClient):
    """Sends the Node Envoy sends: `user_agent_name` and `user_agent_build_version` (filled by Envoy itself)."""

    def __init__(self, channel: grpc.aio.Channel, agent: str, version: tuple[int, int, int] | None, *,
                 delta: bool = False) -> None:
        super().__init__(channel, NODE, delta=delta)
        self.agent, self.version = agent, version

    def _node(self) -> base_pb2.Node | None:
        node = super()._node()
        if node is not None:
            node.user_agent_name = self.agent
            if self.version is not None:
                semantic = node.user_agent_build_version.version
                semantic.major_number, semantic.minor_number, semantic.patch = self.version
        return node


async def _first_request(ads: VersionedClient) -> None:
    if ads.delta:
        await ads.delta_request(CDS)
    else:
        await ads.request(CDS)


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_envoy_older_than_the_window_is_refused(cache: SnapshotCache, channel: grpc.aio.Channel,
                                                      ads: tuple[AdsServer, int], delta: bool) -> None:
    cache.set_snapshot(NODE, snapshot())
    old = VersionedClient(channel, "envoy", (1, 35, 4), delta=delta)
    try:
        await _first_request(old)
        ended = await old.ended()
    finally:
        await old.close()
    assert (ended.code, ended.details) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "Envoy 1.35.4 is older than the minimum supported 1.36 (supported: 1.36 to 1.40); upgrade Envoy",
    )
    assert old.received == [] and ads[0].connected_nodes() == []


@pytest.mark.parametrize(("agent", "version", "recorded"), [
    ("envoy", (1, 36, 2), EnvoyVersion(1, 36, 2)),
    ("envoy", (1, 40, 0), EnvoyVersion(1, 40, 0)),
    ("envoy", None, None),
    ("grpc-go", (1, 2, 0), None),  # a proxyless gRPC client's version is not an Envoy version
], ids=["oldest-supported", "newest", "envoy-without-version", "not-envoy"])
async def test_supported_or_unknown_is_served_and_recorded(cache: SnapshotCache, channel: grpc.aio.Channel,
                                                           ads: tuple[AdsServer, int], agent: str,
                                                           version: tuple[int, int, int] | None,
                                                           recorded: EnvoyVersion | None) -> None:
    cache.set_snapshot(NODE, snapshot())
    client = VersionedClient(channel, agent, version)
    try:
        await client.request(CDS)
        assert names_of(await client.recv()) == ["c1"]
        status = ads[0].status(NODE)
        assert status is not None and status.envoy_version == recorded
    finally:
        await client.close()
