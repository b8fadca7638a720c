"""SnapshotCache: publish, refuse inconsistent, latest-wins watches (no gRPC)."""

from __future__ import annotations

import asyncio

from xds_resources import EDS, NODE, OTHER_NODE, config, snapshot

from controlplane.xds.cache import Published, SnapshotCache
from controlplane.xds.snapshot import Snapshot


def broken() -> Snapshot:
    cfg = config()
    del cfg[EDS]["c1"]
    return Snapshot.build(cfg)


async def test_set_and_get() -> None:
    cache = SnapshotCache()
    snap = snapshot()
    assert cache.get_snapshot(NODE) is None
    assert cache.set_snapshot(NODE, snap) is Published.CHANGED
    assert cache.get_snapshot(NODE) is snap
    assert cache.node_ids() == [NODE]
    cache.clear(NODE)
    assert cache.get_snapshot(NODE) is None


async def test_inconsistent_snapshot_refused_previous_kept() -> None:
    cache = SnapshotCache()
    snap = snapshot()
    cache.set_snapshot(NODE, snap)
    watch = cache.watch(NODE)
    assert cache.set_snapshot(NODE, broken()) is Published.REFUSED
    assert cache.get_snapshot(NODE) is snap
    assert not await _fired(watch)


async def test_only_the_nodes_watches_are_woken_and_unchanged_wakes_no_one() -> None:
    cache = SnapshotCache()
    mine, other = cache.watch(NODE), cache.watch(OTHER_NODE)
    cache.set_snapshot(NODE, snapshot())
    assert await _fired(mine)
    assert not await _fired(other)
    assert cache.set_snapshot(NODE, snapshot()) is Published.UNCHANGED  # same content
    assert not await _fired(mine)


async def test_many_changes_coalesce_into_one_wake_up() -> None:
    cache = SnapshotCache()
    watch = cache.watch(NODE)
    for i in range(20):
        cache.set_snapshot(NODE, snapshot(connect_timeout_ms=1000 + i))
    assert await _fired(watch)
    assert not await _fired(watch)


async def test_watch_close_unregisters() -> None:
    cache = SnapshotCache()
    watch = cache.watch(NODE)
    assert cache.watcher_count(NODE) == 1
    watch.close()
    watch.close()
    assert cache.watcher_count() == 0


async def _fired(watch: object) -> bool:
    try:
        await asyncio.wait_for(watch.wait(), 0.05)  # type: ignore[attr-defined]
    except TimeoutError:
        return False
    return True
