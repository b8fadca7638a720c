"""SotW ADS protocol tests with a raw gRPC client (reference/xds-protocol.md §6, checks 1-10, 12).

Every response is checked for the invariants in tests/xds/ads_test_client.py. "No response" is a bounded wait.
"""

from __future__ import annotations

import grpc
import pytest
from ads_test_client import AdsClient, ClientFactory, names_of
from xds_resources import CDS, EDS, LDS, NODE, OTHER_NODE, RDS, config, snapshot

from controlplane.xds.cache import Published, SnapshotCache
from controlplane.xds.observer import NoopObserver
from controlplane.xds.server import AdsServer, start_ads_server
from controlplane.xds.snapshot import Snapshot
from controlplane.xds.stream_state import RequestKind


async def subscribe_all(ads: AdsClient, eds_names: tuple[str, ...] = ("c1",),
                        rds_names: tuple[str, ...] = ("r1",)) -> dict[str, object]:
    """Envoy-like start: CDS wildcard, EDS for the clusters, LDS wildcard, RDS for the routes; ACK all."""
    last = {}
    for type_url, names in ((CDS, ()), (EDS, eds_names), (LDS, ()), (RDS, rds_names)):
        await ads.request(type_url, names)
        response = await ads.recv()
        assert response.type_url == type_url
        await ads.ack(response, names)
        last[type_url] = response
    return last


async def test_first_cds_request_gets_every_cluster(cache: SnapshotCache, client: ClientFactory) -> None:
    """Check 1: wildcard CDS → all clusters, version, nonce, type_url."""
    snap = snapshot(clusters=["c1", "c2", "c3"])
    cache.set_snapshot(NODE, snap)
    ads = client()
    await ads.request(CDS)
    response = await ads.recv()
    assert response.type_url == CDS
    assert response.version_info == snap.version(CDS)
    assert response.nonce
    assert names_of(response) == ["c1", "c2", "c3"]


@pytest.mark.parametrize("type_url", [CDS, LDS], ids=["cds", "lds"])
async def test_empty_subscription_answered_when_node_has_nothing(
    cache: SnapshotCache, client: ClientFactory, type_url: str
) -> None:
    """Check 1 / §1.10: zero clusters or listeners → an empty response, not silence (Envoy init)."""
    cache.set_snapshot(NODE, Snapshot.build({}))
    ads = client()
    await ads.request(type_url)
    response = await ads.recv()
    assert list(response.resources) == []
    assert response.version_info


async def test_ack_gets_no_response_and_change_gives_one_per_affected_type(
    cache: SnapshotCache, client: ClientFactory
) -> None:
    """Check 2: a plain ACK is not answered; a change afterwards gives exactly one response per type."""
    cache.set_snapshot(NODE, snapshot())
    ads = client()
    await subscribe_all(ads)
    await ads.expect_silence()
    changed = snapshot(endpoint_ports={"c1": 9090})  # only EDS content changes
    assert cache.set_snapshot(NODE, changed) is Published.CHANGED
    response = await ads.recv()
    assert (response.type_url, response.version_info) == (EDS, changed.version(EDS))
    await ads.ack(response, ["c1"])
    await ads.expect_silence()


async def test_stale_nonce_is_ignored(cache: SnapshotCache, client: ClientFactory) -> None:
    """Check 3: a request with a stale nonce gets nothing; the following correct ACK behaves normally."""
    cache.set_snapshot(NODE, snapshot())
    ads = client()
    await ads.request(CDS)
    first = await ads.recv()
    cache.set_snapshot(NODE, snapshot(clusters=["c1", "c2"]))
    second = await ads.recv()
    # A request carrying the superseded nonce, even one that changes the subscription, is ignored.
    await ads.request(CDS, ["c1"], version=first.version_info, nonce=first.nonce)
    await ads.expect_silence()
    await ads.ack(second)
    await ads.expect_silence()
    cache.set_snapshot(NODE, snapshot(clusters=["c2"], listeners=[("l1", "r1")]))
    third = await ads.recv()
    assert names_of(third) == ["c2"]  # still the wildcard: the stale request did not change it


async def test_nack_is_not_resent_and_later_change_is_delivered(
    cache: SnapshotCache, client: ClientFactory, ads: tuple[AdsServer, int]
) -> None:
    """Check 4: after a NACK the same version is never resent; the next config change is delivered."""
    cache.set_snapshot(NODE, snapshot())
    stream = client()
    await stream.request(LDS)
    good = await stream.recv()
    await stream.ack(good)
    cache.set_snapshot(NODE, snapshot(listeners=[("l1", "r1"), ("l2", "r1")]))
    bad = await stream.recv()
    await stream.nack(bad, version=good.version_info, error="Error adding/updating listener(s) l2")
    await stream.expect_silence()
    await stream.ack(good)  # the client re-requests at its old version with the current nonce
    await stream.expect_silence()
    status = ads[0].status(NODE)
    assert status is not None
    assert (status.types[LDS].nack_version, status.types[LDS].nack_message) == (
        bad.version_info, "Error adding/updating listener(s) l2"
    )
    fixed = snapshot(listeners=[("l1", "r1"), ("l3", "r1")])
    cache.set_snapshot(NODE, fixed)
    response = await stream.recv()
    assert (response.version_info, names_of(response)) == (fixed.version(LDS), ["l1", "l3"])


async def test_eds_named_subscription_and_missing_name_arriving_later(
    cache: SnapshotCache, client: ClientFactory
) -> None:
    """Check 6: EDS returns exactly the requested names; a missing name is sent once it exists."""
    cache.set_snapshot(NODE, snapshot(clusters=["a", "b", "c"]))
    ads = client()
    await ads.request(EDS, ["a", "b"])
    response = await ads.recv()
    assert names_of(response) == ["a", "b"]
    await ads.ack(response, ["a", "b", "c"])  # subscription grows: c must be sent
    response = await ads.recv()
    assert "c" in names_of(response)
    assert set(names_of(response)) <= {"a", "b", "c"}
    await ads.ack(response, ["a", "b", "c", "d"])  # d does not exist: nothing to say
    await ads.expect_silence()
    cache.set_snapshot(NODE, snapshot(clusters=["a", "b", "c", "d", "e"]))
    response = await ads.recv()  # no new request needed
    assert names_of(response) == ["a", "b", "c", "d"]


async def test_cds_is_full_state_after_removal(cache: SnapshotCache, client: ClientFactory) -> None:
    """Check 7: removing a cluster yields a CDS response with every remaining cluster and not the removed."""
    cache.set_snapshot(NODE, snapshot(clusters=["c1", "c2", "c3"]))
    ads = client()
    await ads.request(CDS)
    await ads.ack(await ads.recv())
    cache.set_snapshot(NODE, snapshot(clusters=["c1", "c3"]))
    response = await ads.recv()
    assert (response.type_url, names_of(response)) == (CDS, ["c1", "c3"])


async def test_ads_order_when_all_four_types_change(cache: SnapshotCache, client: ClientFactory) -> None:
    """Check 8: one change touching CDS, EDS, LDS and RDS arrives in the order CDS, EDS, LDS, RDS."""
    cache.set_snapshot(NODE, snapshot())
    ads = client()
    await subscribe_all(ads)
    cfg = config(connect_timeout_ms=2000, endpoint_ports={"c1": 1}, listeners=[("l1", "r1"), ("l2", "r1")])
    cfg[RDS]["r1"].virtual_hosts[0].domains.append("example.com")
    changed = Snapshot.build(cfg)
    cache.set_snapshot(NODE, changed)
    order = [(await ads.recv()).type_url for _ in range(4)]
    assert order == [CDS, EDS, LDS, RDS]
    await ads.expect_silence()


async def test_node_only_on_first_request_and_two_nodes(cache: SnapshotCache, client: ClientFactory) -> None:
    """Check 9: later requests without node use the first one's; another node gets its own config."""
    cache.set_snapshot(NODE, snapshot(clusters=["web"]))
    cache.set_snapshot(OTHER_NODE, snapshot(clusters=["backend"]))
    web, backend = client(NODE), client(OTHER_NODE)
    await web.request(CDS)
    await backend.request(CDS)
    assert names_of(await web.recv()) == ["web"]
    assert names_of(await backend.recv()) == ["backend"]
    await web.request(EDS, ["web"])  # no node on this request
    assert names_of(await web.recv()) == ["web"]


async def test_versions_are_content_derived_across_caches(client: ClientFactory) -> None:
    """Check 10: two fresh caches (think: a restarted control plane) give identical versions for the same
    content and different versions for different content, so a reused version never hides a change."""
    one, two = SnapshotCache(), SnapshotCache()
    one.set_snapshot(NODE, snapshot(clusters=["c1", "c2"]))
    two.set_snapshot(NODE, snapshot(clusters=["c1", "c2"]))
    a, b = one.get_snapshot(NODE), two.get_snapshot(NODE)
    assert a is not None and b is not None
    assert a.versions() == b.versions()
    assert snapshot(clusters=["c1"]).version(CDS) != a.version(CDS)


async def test_reconnect_with_current_version_is_answered(cache: SnapshotCache, client: ClientFactory) -> None:
    """Check 10: the reconnect optimisation is not implemented: a new stream's first request is always
    answered, even when it reports the current version (always correct, costs one response)."""
    snap = snapshot()
    cache.set_snapshot(NODE, snap)
    ads = client()
    await ads.request(CDS, version=snap.version(CDS))
    assert (await ads.recv()).version_info == snap.version(CDS)


async def test_empty_type_url_closes_stream_with_invalid_argument(cache: SnapshotCache,
                                                                  client: ClientFactory) -> None:
    """Check 12: ADS request without type_url → INVALID_ARGUMENT."""
    cache.set_snapshot(NODE, snapshot())
    ads = client()
    await ads.request(CDS)
    await ads.recv()
    await ads.request("")
    ended = await ads.ended()
    assert ended.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "type_url" in ended.details


async def test_unknown_type_url_answered_empty(cache: SnapshotCache, client: ClientFactory) -> None:
    """Check 12: a type we never serve is answered with an empty response and the stream stays usable."""
    cache.set_snapshot(NODE, snapshot())
    ads = client()
    secret = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
    await ads.request(secret, ["s1"])
    response = await ads.recv()
    assert (response.type_url, list(response.resources)) == (secret, [])
    await ads.request(CDS)
    assert (await ads.recv()).type_url == CDS


@pytest.mark.parametrize(
    ("node_id", "message"),
    [
        ("", "Envoy ID must not be nil"),
        ("nodot", "the name should be provided after the dot"),
        ("mesh.", "name must not be empty"),
        (None, "Envoy ID must not be nil"),
    ],
    ids=["empty", "no-dot", "no-name", "no-node"],
)
async def test_malformed_node_id_is_rejected(client: ClientFactory, node_id: str | None, message: str) -> None:
    ads = client(node_id)
    await ads.request(CDS)
    ended = await ads.ended()
    assert ended.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in ended.details


async def test_cluster_change_with_same_endpoints_resends_eds(cache: SnapshotCache,
                                                              client: ClientFactory) -> None:
    """§1.10 / check 15 at protocol level: a CDS-only change is followed by the (unchanged) CLA."""
    cache.set_snapshot(NODE, snapshot())
    ads = client()
    before = await subscribe_all(ads)
    cache.set_snapshot(NODE, snapshot(connect_timeout_ms=2500))
    cds = await ads.recv()
    eds = await ads.recv()
    assert (cds.type_url, eds.type_url) == (CDS, EDS)
    assert names_of(eds) == ["c1"]
    assert list(eds.resources) == list(before[EDS].resources)  # same CLA bytes, new version and nonce
    await ads.ack(cds)
    await ads.ack(eds, ["c1"])
    await ads.expect_silence()


async def test_stream_without_snapshot_waits_then_gets_config(cache: SnapshotCache,
                                                              client: ClientFactory) -> None:
    ads = client()
    await ads.request(CDS)
    await ads.expect_silence(0.3)
    cache.set_snapshot(NODE, snapshot())
    assert names_of(await ads.recv()) == ["c1"]


async def test_unchanged_snapshot_wakes_no_one(cache: SnapshotCache, client: ClientFactory) -> None:
    cache.set_snapshot(NODE, snapshot())
    ads = client()
    await ads.request(CDS)
    await ads.ack(await ads.recv())
    assert cache.set_snapshot(NODE, snapshot()) is Published.UNCHANGED  # same content, new object
    await ads.expect_silence()


async def test_inconsistent_snapshot_is_refused_and_stream_keeps_old(cache: SnapshotCache,
                                                                     client: ClientFactory) -> None:
    cache.set_snapshot(NODE, snapshot())
    ads = client()
    await ads.request(CDS)
    await ads.ack(await ads.recv())
    broken = config(clusters=["c1", "c2"])
    del broken[EDS]["c2"]
    assert cache.set_snapshot(NODE, Snapshot.build(broken)) is Published.REFUSED
    await ads.expect_silence()


async def test_latest_snapshot_wins_for_a_slow_stream(cache: SnapshotCache, client: ClientFactory) -> None:
    """A burst of snapshots while the stream is busy delivers the latest, never a queue of them."""
    cache.set_snapshot(NODE, snapshot())
    ads = client()
    await ads.request(CDS)
    await ads.ack(await ads.recv())
    for i in range(1, 51):
        cache.set_snapshot(NODE, snapshot(connect_timeout_ms=1000 + i))
    last = cache.get_snapshot(NODE)
    assert last is not None
    response = await ads.recv()
    assert response.version_info == last.version(CDS)
    await ads.ack(response)
    await ads.expect_silence()


async def test_status_and_cleanup_on_disconnect(cache: SnapshotCache, client: ClientFactory,
                                                ads: tuple[AdsServer, int]) -> None:
    servicer = ads[0]
    snap = snapshot()
    cache.set_snapshot(NODE, snap)
    stream = client()
    await stream.request(CDS)
    response = await stream.recv()
    await stream.ack(response)
    await stream.expect_silence(0.3)
    assert servicer.connected_nodes() == [NODE]
    status = servicer.status(NODE)
    assert status is not None and status.variant == "sotw"
    assert (status.types[CDS].version_sent, status.types[CDS].version_acked) == (snap.version(CDS),) * 2
    await stream.close()
    for _ in range(100):
        if not servicer.connected_nodes() and cache.watcher_count() == 0:
            break
        await stream.expect_silence(0.02)
    assert servicer.connected_nodes() == []
    assert cache.watcher_count() == 0


class _ExplodingObserver(NoopObserver):
    """Raises for one node, to show that a bug ends only that node's stream."""

    def on_request(self, stream_id: int, node_id: str, type_url: str, kind: RequestKind, version: str,
                   nonce: str, error_message: str) -> None:
        if node_id == OTHER_NODE:
            raise RuntimeError("observer bug")


async def test_unexpected_error_ends_only_its_stream(cache: SnapshotCache) -> None:
    servicer = AdsServer(cache, _ExplodingObserver())
    server, port = await start_ads_server(cache, "127.0.0.1", 0, ads=servicer)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as chan:
            cache.set_snapshot(NODE, snapshot())
            healthy, broken = AdsClient(chan, NODE), AdsClient(chan, OTHER_NODE)
            await broken.request(CDS)
            assert (await broken.ended()).code == grpc.StatusCode.INTERNAL
            await healthy.request(CDS)
            assert names_of(await healthy.recv()) == ["c1"]
            await healthy.close()
            await broken.close()
    finally:
        await server.stop(0)
