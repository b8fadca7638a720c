"""Where the GUI's events come from (controlplane/api/event_feed.py): each adapter publishes what its seam
saw, in the hub's vocabulary, and does nothing while no client listens. The verdict feed runs on the real
SpanFlows and verdict rules, fed stats reports as Envoy sends them."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from builders import dataplane, inbound, mesh

from controlplane.api.event_feed import (
    ReconcilerFeed,
    ResourceGate,
    StreamFeed,
    VerdictFeed,
    feed_store_changes,
)
from controlplane.api.events import Batch, Event, EventHub, Subscription
from controlplane.store.memory import MemoryStore
from controlplane.xds.reconciler import ProxyRecord
from controlplane.xds.span_flows import SpanFlows

sys.path.insert(0, str(Path(__file__).parent.parent / "spans"))  # the span-flow tests' report builders
from spans_helpers import families, traced
from test_verdict import HEALTHY, down, up

SNAPSHOT: Any = object()


async def drain(client: Subscription) -> list[Event]:
    batch = await client.next_batch(0.05)
    return list(batch.events) if batch is not None else []


async def test_reconciler_feed_says_per_mesh_how_many_proxies_a_pass_published() -> None:
    hub = EventHub()
    feed = ReconcilerFeed(hub)
    feed.on_published("default.web-1", SNAPSHOT, 0.0)  # nobody listens: not even counted
    feed.on_pass_done(1)
    client = hub.subscribe()
    for node in ("default.web-1", "default.web-2", "other.db-1"):
        feed.on_published(node, SNAPSHOT, 0.0)
    feed.on_pass_done(3)
    assert await drain(client) == [Event("snapshot", "default", count=2), Event("snapshot", "other", count=1)]
    feed.on_pass_done(1)  # a pass that published nothing: decisions may still have changed
    feed.on_pass_done(0)  # the initial pass with no proxy: nothing to say
    assert await drain(client) == [Event("snapshot")]


async def test_stream_feed_reports_connections_acks_and_nacks() -> None:
    hub = EventHub()
    feed = StreamFeed(hub)
    feed.on_stream_open(1, "default.web-1", "sotw")
    client = hub.subscribe()
    feed.on_stream_open(2, "default.web-2", "delta")
    feed.on_request(2, "default.web-2", "type.googleapis.com/x", "ack", "v1", "1", "")
    feed.on_request(2, "default.web-2", "type.googleapis.com/x", "stale", "v1", "1", "")
    feed.on_stream_close(1, "default.web-1")
    feed.on_stream_open(3, "not-a-node-id", "sotw")
    assert await drain(client) == [Event("dataplane", "default", "web-2", detail="connected"),
                                   Event("xds", "default", "web-2", detail="ack"),
                                   Event("dataplane", "default", "web-1", detail="disconnected")]
    feed.on_request(2, "default.web-2", "type.googleapis.com/x", "nack", "v2", "2", "bad")
    assert await drain(client) == [Event("xds", "default", "web-2", detail="nack")]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def report(flows: SpanFlows, clock: Clock, stats: dict[str, float]) -> None:
    clock.now += 5.0
    flows.record("default.web-1", families({**HEALTHY, **stats}))


async def test_verdict_feed_publishes_changes_only_while_someone_listens() -> None:
    clock = Clock()
    records = {"default.web-1": ProxyRecord(traced())}
    flows = SpanFlows(records, clock=clock)
    hub = EventHub()
    feed = VerdictFeed(hub, flows, records)
    report(flows, clock, up(0))  # no client: nothing judged, nothing kept
    client = hub.subscribe()
    report(flows, clock, up(3))  # the first report after a client came: learns the verdicts, says nothing
    assert await drain(client) == []
    report(flows, clock, down(3, 2))
    assert await drain(client) == [Event("spans", "default", "web-1", detail="collector unreachable")]
    report(flows, clock, up(8))
    report(flows, clock, up(9))  # still flowing: no event
    assert await drain(client) == [Event("spans", "default", "web-1", detail="flowing")]
    clock.now += 120.0  # reports stopped: only a sweep notices
    feed.sweep()
    assert await drain(client) == [Event("spans", "default", "web-1", detail="no stats")]
    client.close()
    report(flows, clock, down(9, 1))
    later = hub.subscribe()
    feed.sweep()  # a new client: learn again, quietly
    assert await drain(later) == []


async def test_store_changes_are_held_until_the_reconcilers_pass_ends() -> None:
    """A client refetching on a resource event must read inspection data that includes the change: the event
    waits for the pass that mirrored it, and comes before that pass's snapshot events."""
    store = MemoryStore()
    hub = EventHub()
    client = hub.subscribe()
    feed = ReconcilerFeed(hub)
    task = asyncio.create_task(feed_store_changes(store, feed.gate))
    await asyncio.sleep(0)  # the feed subscribes to the store
    await store.create(mesh())
    await store.create(dataplane("web-1", inbounds=[inbound()]))
    assert await client.next_batch(0.05) is None
    feed.on_published("default.web-1", SNAPSHOT, 0.0)
    feed.on_pass_done(2)
    batch = await client.next_batch(1.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert batch == Batch((Event("resource", "default", "default", "Mesh", "created"),
                           Event("resource", "default", "web-1", "Dataplane", "created"),
                           Event("snapshot", "default", count=1)))


async def test_a_held_event_goes_out_anyway_after_the_longest_hold() -> None:
    clock = Clock()
    hub = EventHub()
    gate = ResourceGate(hub, hold_max_s=1.0, clock=clock)
    gate.hold(Event("resource", "default", "x", "Mesh", "updated"))  # no client: not even kept
    client = hub.subscribe()
    gate.hold(Event("resource", "default", "web-1", "Dataplane", "updated"))
    clock.now += 0.5
    gate.hold(Event("resource", "default", "web-2", "Dataplane", "updated"))
    clock.now += 0.6  # the first has waited 1.1 s, the second 0.6 s
    runner = asyncio.create_task(gate.run())
    batch = await client.next_batch(1.0)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert batch == Batch((Event("resource", "default", "web-1", "Dataplane", "updated"),))
