"""Reconciler: which proxies a change regenerates, coalescing, deletion, and surviving store outages.

Runs the real reconciler task against a MemoryStore and a real SnapshotCache; an observer records which
proxies got a new snapshot and counts the passes, so each test asserts the exact set of affected proxies
and waits for "the pass that follows this change" instead of for time to pass. Proxies are generated only
while connected, so the harness holds a cache watch (what an ADS stream holds) for each topology proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
from builders import dataplane, inbound, mesh, outbound, traffic_trace, zipkin_backend

from controlplane.errors import StoreUnavailable
from controlplane.observability import Metrics
from controlplane.resources.model import Resource, ResourceKey
from controlplane.store.memory import MemoryStore
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.reconciler import Reconciler
from controlplane.xds.snapshot import Snapshot


class FlakyStore(MemoryStore):
    """A MemoryStore whose `get` fails while `down` is set, like a database that went away."""

    down = False
    failed_gets = 0

    async def get(self, key: ResourceKey) -> Resource:
        if self.down:
            self.failed_gets += 1
            raise StoreUnavailable("database is down")
        return await super().get(key)


class Harness:
    def __init__(self, *, debounce_s: float = 0.01, max_wait_s: float = 0.05, debounce_first_s: float = 0.01) -> None:
        self.store = FlakyStore()
        self.cache = SnapshotCache()
        self.published: list[str] = []
        self.passes: list[int] = []
        """Store changes consumed by each pass after the initial one."""
        self.reconciler = Reconciler(self.store, self.cache, Metrics(), debounce_s=debounce_s, max_wait_s=max_wait_s,
                                     debounce_first_s=debounce_first_s, observers=(self,))
        self.watches = {node: self.cache.watch(node) for node in CONNECTED}

    def on_published(self, node: str, snapshot: Snapshot, started: float) -> None:
        self.published.append(node)

    def on_pass_done(self, changes: int) -> None:
        if changes:
            self.passes.append(changes)

    async def until(self, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.005)

    async def settle(self, changes: int = 1) -> None:
        """Wait until passes have consumed `changes` more store changes than when the test last settled."""
        wanted = self._consumed + changes
        await self.until(lambda: sum(self.passes) >= wanted)
        self._consumed = sum(self.passes)

    _consumed = 0


CONNECTED = ("default.backend-1", "default.web-1", "default.other-1")


def topology() -> list[Resource]:
    return [
        mesh(backends=[zipkin_backend(name="zipkin", url="http://zipkin:9411/api/v2/spans")],
             default_backend="zipkin"),
        dataplane("backend-1", inbounds=[inbound(port=8081, service="backend")]),
        dataplane("web-1", inbounds=[inbound(port=8080, service="web")], outbounds=[outbound(10001, "backend")]),
        dataplane("other-1", inbounds=[inbound(port=8082, service="other")]),
    ]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with running(Harness()) as h:
        yield h


@contextlib.asynccontextmanager
async def running(h: Harness) -> AsyncIterator[Harness]:
    for resource in topology():
        await h.store.create(resource)
    task = asyncio.create_task(h.reconciler.run())
    try:
        await asyncio.wait_for(h.reconciler.ready.wait(), 3)
        yield h
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_initial_load_publishes_every_proxy(harness: Harness) -> None:
    assert sorted(harness.published) == ["default.backend-1", "default.other-1", "default.web-1"]


async def test_traffic_trace_regenerates_only_selected_proxies(harness: Harness) -> None:
    harness.published.clear()
    await harness.store.create(traffic_trace("web-only", selectors=[{"kuma.io/service": "web"}]))
    await harness.settle()
    assert harness.published == ["default.web-1"]


async def test_dataplane_change_regenerates_it_and_its_clients(harness: Harness) -> None:
    harness.published.clear()
    current = await harness.store.get(ResourceKey(dataplane("backend-1").kind, "default", "backend-1"))
    changed = dataplane("backend-1", inbounds=[inbound(port=9081, service="backend")])
    await harness.store.update(replace(changed, version=current.version), expected_version=current.version)
    await harness.settle()
    assert sorted(harness.published) == ["default.backend-1", "default.web-1"]


async def test_regenerated_but_identical_snapshot_is_not_published(harness: Harness) -> None:
    """web-1 is regenerated (a client of backend) but its config is unchanged: no publish hook, metric
    "unchanged" (set_snapshot also returns True for an unchanged snapshot)."""
    harness.published.clear()
    current = await harness.store.get(ResourceKey(dataplane("backend-1").kind, "default", "backend-1"))
    changed = dataplane("backend-1", inbounds=[inbound(port=8081, service="backend", tags={"version": "v2"})])
    await harness.store.update(replace(changed, version=current.version), expected_version=current.version)
    await harness.settle()
    assert harness.published == ["default.backend-1"]
    registry = harness.reconciler.metrics.registry
    assert registry.get_sample_value("xds_generation_seconds_count", {"result": "unchanged"}) == 1.0


async def test_burst_is_coalesced() -> None:
    # A 1 s debounce and a 30 s max wait hold the whole burst in one batch, however slowly it is written.
    async with running(Harness(debounce_s=1.0, max_wait_s=30, debounce_first_s=1.0)) as harness:
        await harness.store.create(traffic_trace())
        await harness.settle()
        harness.published.clear()
        key = ResourceKey(mesh().kind, "", "default")
        for sampling in range(20):
            current = await harness.store.get(key)
            edited = mesh(backends=[zipkin_backend(name="zipkin", url="http://zipkin:9411/api/v2/spans",
                                                   sampling=float(sampling))], default_backend="zipkin")
            await harness.store.update(edited, expected_version=current.version)
        await harness.settle(changes=20)
        assert harness.passes[-1] == 20
        assert sorted(harness.published) == ["default.backend-1", "default.other-1", "default.web-1"]


async def test_a_lone_change_after_a_quiet_period_skips_the_long_debounce() -> None:
    # A 30 s debounce would hold the change far past the 5 s deadline; the short first gap does not.
    async with running(Harness(debounce_s=30, max_wait_s=60, debounce_first_s=0.01)) as h:
        h.published.clear()
        await h.store.create(traffic_trace())
        await h.until(lambda: len(h.published) == 3, timeout=5)


async def test_a_second_change_inside_the_first_gap_waits_for_the_whole_burst() -> None:
    async with running(Harness(debounce_s=0.3, max_wait_s=5, debounce_first_s=0.2)) as h:
        h.published.clear()
        await h.store.create(traffic_trace())  # both within the 0.2 s first gap: one batch
        key = ResourceKey(mesh().kind, "", "default")
        current = await h.store.get(key)
        await h.store.update(mesh(backends=[zipkin_backend(name="zipkin", url="http://zipkin:9411/api/v2/spans",
                                                           sampling=5.0)], default_backend="zipkin"),
                             expected_version=current.version)
        await h.settle(changes=2)
        assert h.passes == [2]  # both changes in the one pass: nothing is left for a second batch
        assert sorted(h.published) == ["default.backend-1", "default.other-1", "default.web-1"]


async def test_deleting_a_dataplane_clears_its_snapshot(harness: Harness) -> None:
    assert harness.cache.get_snapshot("default.other-1") is not None
    await harness.store.delete(ResourceKey(dataplane("other-1").kind, "default", "other-1"))
    await harness.until(lambda: harness.cache.get_snapshot("default.other-1") is None)


async def test_store_outage_keeps_snapshots_and_recovers(harness: Harness) -> None:
    before = harness.cache.get_snapshot("default.web-1")
    harness.store.down = True
    harness.published.clear()
    await harness.store.create(traffic_trace())
    await harness.until(lambda: harness.store.failed_gets >= 3)  # several retry rounds while the store is down
    assert harness.published == []
    assert harness.cache.get_snapshot("default.web-1") is before
    harness.store.down = False
    await harness.until(lambda: len(harness.published) == 3, timeout=10)
    assert sorted(harness.published) == ["default.backend-1", "default.other-1", "default.web-1"]


async def test_a_proxy_that_is_not_connected_is_decided_but_not_generated(harness: Harness) -> None:
    harness.watches.pop("default.other-1").close()
    await harness.store.create(traffic_trace())
    await harness.settle()
    assert harness.cache.get_snapshot("default.other-1") is None  # stale: dropped, not regenerated
    record = harness.reconciler.records["default.other-1"]
    assert (record.generation, record.policies.tracing is not None) == (None, True)
    generation = harness.reconciler.unpublished("default.other-1")  # what inspection shows meanwhile
    assert generation is not None and [n.traced for n in generation.listeners] == [True]


async def test_a_proxy_that_connects_gets_its_first_snapshot_on_demand(harness: Harness) -> None:
    await harness.store.create(dataplane("late-1", inbounds=[inbound(port=8083, service="late")]))
    await harness.settle()
    assert harness.cache.get_snapshot("default.late-1") is None
    harness.published.clear()
    watch = harness.cache.watch("default.late-1")  # an ADS stream opens
    await asyncio.wait_for(watch.wait(), 3)  # woken by its first snapshot, no store change needed
    assert harness.published == ["default.late-1"]
    assert harness.cache.get_snapshot("default.late-1") is not None


async def test_a_reconnecting_proxy_gets_the_config_it_missed(harness: Harness) -> None:
    before = harness.cache.get_snapshot("default.web-1")
    harness.watches.pop("default.web-1").close()  # web-1 disconnects, then sampling changes mesh-wide
    await harness.store.create(traffic_trace())
    await harness.settle()
    watch = harness.cache.watch("default.web-1")
    await asyncio.wait_for(watch.wait(), 3)
    after = harness.cache.get_snapshot("default.web-1")
    assert after is not None and before is not None and not after.same_content(before)
    assert after.check_consistent(None) == []
