"""Delta ADS protocol tests with a raw gRPC client (reference/xds-protocol.md §6 check 11, §1.9-§1.11)."""

from __future__ import annotations

from ads_test_client import AdsClient, ClientFactory, names_of
from xds_resources import CDS, EDS, LDS, NODE, config, snapshot

from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import AdsServer
from controlplane.xds.snapshot import Snapshot


async def start(client: ClientFactory, type_url: str = CDS, *, subscribe: tuple[str, ...] = (),
                initial: dict[str, str] | None = None) -> tuple[AdsClient, object]:
    ads = client(delta=True)
    await ads.delta_request(type_url, subscribe=subscribe, initial=initial)
    response = await ads.recv()
    await ads.delta_request(type_url, nonce=response.nonce)  # ACK
    return ads, response


async def test_initial_wildcard_gets_everything_with_versions(cache: SnapshotCache,
                                                              client: ClientFactory) -> None:
    snap = snapshot(clusters=["c1", "c2"])
    cache.set_snapshot(NODE, snap)
    _, response = await start(client)
    assert names_of(response) == ["c1", "c2"]
    assert [r.version for r in response.resources] == [snap.resources(CDS)[n].version for n in ("c1", "c2")]
    assert response.system_version_info == snap.version(CDS)


async def test_initial_wildcard_with_nothing_is_answered(cache: SnapshotCache, client: ClientFactory) -> None:
    """§1.10: an empty wildcard LDS must still get a response so Envoy's init completes."""
    cache.set_snapshot(NODE, Snapshot.build({}))
    _, response = await start(client, LDS)
    assert (list(response.resources), list(response.removed_resources)) == ([], [])


async def test_ack_gets_no_response(cache: SnapshotCache, client: ClientFactory) -> None:
    cache.set_snapshot(NODE, snapshot())
    ads, _ = await start(client)
    await ads.expect_silence()


async def test_update_of_one_resource_sends_only_it(cache: SnapshotCache, client: ClientFactory) -> None:
    cache.set_snapshot(NODE, snapshot(clusters=["c1", "c2"]))
    ads, _ = await start(client)
    changed = config(clusters=["c1", "c2"])
    changed[CDS]["c2"].connect_timeout.seconds = 7
    cache.set_snapshot(NODE, Snapshot.build(changed))
    response = await ads.recv()
    assert (names_of(response), list(response.removed_resources)) == (["c2"], [])


async def test_removal_in_removed_resources(cache: SnapshotCache, client: ClientFactory) -> None:
    cache.set_snapshot(NODE, snapshot(clusters=["c1", "c2"]))
    ads, _ = await start(client)
    cache.set_snapshot(NODE, snapshot(clusters=["c1"]))
    response = await ads.recv()
    assert (names_of(response), list(response.removed_resources)) == ([], ["c2"])


async def test_subscribe_missing_then_created(cache: SnapshotCache, client: ClientFactory) -> None:
    """§1.8: a subscribed name that does not exist is reported removed, then sent once created."""
    cache.set_snapshot(NODE, snapshot(clusters=["a"]))
    ads, response = await start(client, EDS, subscribe=("a", "b"))
    assert (names_of(response), list(response.removed_resources)) == (["a"], ["b"])
    await ads.expect_silence(0.5)
    cache.set_snapshot(NODE, snapshot(clusters=["a", "b"]))
    response = await ads.recv()
    assert (names_of(response), list(response.removed_resources)) == (["b"], [])


async def test_initial_resource_versions_suppress_resends(cache: SnapshotCache, client: ClientFactory) -> None:
    """§1.9: on reconnect, resources whose version the client reports are not sent again; others are,
    and names it holds that no longer exist are removed."""
    snap = snapshot(clusters=["c1", "c2"])
    cache.set_snapshot(NODE, snap)
    initial = {"c1": snap.resources(CDS)["c1"].version, "c2": "stale-version", "gone": "x"}
    _, response = await start(client, initial=initial)
    assert (names_of(response), list(response.removed_resources)) == (["c2"], ["gone"])


async def test_resubscribe_resends(cache: SnapshotCache, client: ClientFactory) -> None:
    """§1.11: subscribing to a name the client already has still sends it."""
    cache.set_snapshot(NODE, snapshot(clusters=["a"]))
    ads, _ = await start(client, EDS, subscribe=("a",))
    await ads.delta_request(EDS, subscribe=("a",))
    assert names_of(await ads.recv()) == ["a"]


async def test_unsubscribe_explicit_name_under_wildcard_is_answered(cache: SnapshotCache,
                                                                    client: ClientFactory) -> None:
    """§1.11: wildcard + explicit X, unsubscribe X → X is still covered by the wildcard and is sent."""
    cache.set_snapshot(NODE, snapshot(clusters=["x", "y"]))
    ads, _ = await start(client)
    await ads.delta_request(CDS, subscribe=("x",))
    response = await ads.recv()  # explicit subscribe of a held name: resent
    assert names_of(response) == ["x"]
    await ads.delta_request(CDS, nonce=response.nonce)
    await ads.delta_request(CDS, unsubscribe=("x",))
    assert names_of(await ads.recv()) == ["x"]
    await ads.delta_request(CDS, subscribe=("z",))
    response = await ads.recv()
    assert list(response.removed_resources) == ["z"]
    await ads.delta_request(CDS, unsubscribe=("z",))  # z not covered by the wildcard: removed again
    assert list((await ads.recv()).removed_resources) == ["z"]


async def test_unsubscribe_unknown_is_silent(cache: SnapshotCache, client: ClientFactory) -> None:
    cache.set_snapshot(NODE, snapshot(clusters=["a"]))
    ads, _ = await start(client, EDS, subscribe=("a",))
    await ads.delta_request(EDS, unsubscribe=("never-heard-of",))
    await ads.expect_silence()


async def test_stale_nonce_still_changes_subscription(cache: SnapshotCache, client: ClientFactory) -> None:
    """§1.5: delta honours subscription changes even with a stale nonce."""
    cache.set_snapshot(NODE, snapshot(clusters=["a", "b"]))
    ads, _ = await start(client, EDS, subscribe=("a",))
    await ads.delta_request(EDS, subscribe=("b",), nonce="0")
    assert names_of(await ads.recv()) == ["b"]


async def test_cluster_change_pushes_unchanged_cla(cache: SnapshotCache, client: ClientFactory) -> None:
    """§1.10: after a CDS-only change Envoy (delta) sends no EDS request; the CLA must be pushed."""
    cache.set_snapshot(NODE, snapshot())
    ads = client(delta=True)
    await ads.delta_request(CDS)
    cds = await ads.recv()
    await ads.delta_request(EDS, subscribe=("c1",))
    eds = await ads.recv()
    await ads.delta_request(CDS, nonce=cds.nonce)
    await ads.delta_request(EDS, nonce=eds.nonce)
    await ads.expect_silence()
    cache.set_snapshot(NODE, snapshot(connect_timeout_ms=3000))
    cds, eds2 = await ads.recv(), await ads.recv()
    assert (cds.type_url, names_of(cds)) == (CDS, ["c1"])
    assert (eds2.type_url, names_of(eds2)) == (EDS, ["c1"])
    assert eds2.resources[0].version == eds.resources[0].version


async def test_nack_is_not_resent_and_later_change_delivered(
    cache: SnapshotCache, client: ClientFactory, ads: tuple[AdsServer, int]
) -> None:
    cache.set_snapshot(NODE, snapshot())
    stream, _ = await start(client, LDS)
    cache.set_snapshot(NODE, snapshot(listeners=[("l1", "r1"), ("l2", "r1")]))
    bad = await stream.recv()
    await stream.delta_request(LDS, nonce=bad.nonce, error="duplicate filter chain")
    await stream.expect_silence()
    status = ads[0].status(NODE)
    assert status is not None and status.variant == "delta"
    assert (status.types[LDS].nack_version, status.types[LDS].nack_message) == (
        bad.system_version_info, "duplicate filter chain"
    )
    cache.set_snapshot(NODE, snapshot(listeners=[("l1", "r1"), ("l3", "r1")]))
    response = await stream.recv()
    assert (names_of(response), list(response.removed_resources)) == (["l3"], ["l2"])
