"""Where the GUI's change notifications come from: the store, the reconciler, the ADS streams, the span flows.

Each source is an adapter onto an existing seam, so the xDS side stays unaware of the GUI:
- `feed_store_changes`: a `store.watch()` of its own (the same committed changes the reconciler mirrors),
  one `resource` event per change, held by a `ResourceGate` until the reconciler's pass that mirrors it has
  ended (at most `HOLD_MAX_S`): a client that refetches on the event then reads inspection data that already
  includes the change, instead of reading twice (once stale, once after the `snapshot` event).
- `ReconcilerFeed` (a `ReconcilerObserver`): the proxies each pass published, one `snapshot` event per mesh
  when the pass ends (a mesh-wide change is one event, not one per proxy), after the held resource events; a
  pass that published nothing still says so, since the decisions inspection shows may have changed.
- `StreamFeed` (a `StreamObserver`, next to the status registry): `dataplane` connected/disconnected on
  every ADS stream, `xds` on every ACK and NACK.
- `VerdictFeed`: told by `SpanFlows` about every stats report, it judges that proxy and publishes `spans`
  when the verdict changed. Verdicts also change with time alone (reports stop: `no stats`), so while
  clients are subscribed it re-judges every proxy every `SWEEP_S`. With no client it does nothing at all
  and forgets what it knew; the first client fetches everything anyway.

Everything runs on the loop thread and returns at once; with no subscriber, publishing is a counter.
Must not: batch or coalesce (events.py) or write HTTP (sse.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Final

from controlplane.api.events import Event, EventHub
from controlplane.resources.mesh import MESH
from controlplane.spans.verdict import State
from controlplane.store.base import Store
from controlplane.xds.envoy_version import EnvoyVersion
from controlplane.xds.node import InvalidNodeId, NodeId, parse_node_id
from controlplane.xds.observer import NoopObserver
from controlplane.xds.snapshot import Snapshot
from controlplane.xds.span_flows import SpanFlows
from controlplane.xds.stream_state import RequestKind, Variant

SWEEP_S: Final = 5.0
HOLD_MAX_S: Final = 1.0
"""Longest a resource event waits for the reconciler (its `--max-wait` is 1 s by default); a pass that takes
longer (a store outage) must not make the GUI miss the change itself."""


def _node(node_id: str) -> NodeId | None:
    try:
        return parse_node_id(node_id)
    except InvalidNodeId:
        return None


class ResourceGate:
    """Resource events waiting for the reconciler's pass to end (`release`) or for `hold_max_s` (`run`)."""

    def __init__(self, hub: EventHub, hold_max_s: float = HOLD_MAX_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._hub, self._hold_max_s, self._clock = hub, hold_max_s, clock
        self._held: list[tuple[float, Event]] = []
        self._holding = asyncio.Event()
        """Set while something is held; `run` sleeps on it, so an idle gate costs no wake-ups."""

    def hold(self, event: Event) -> None:
        if self._hub.clients:
            self._held.append((self._clock(), event))
            self._holding.set()

    def release(self, older_than: float | None = None) -> None:
        """Publish the held events (only those held before `older_than`, when given)."""
        if older_than is None:
            ready, self._held = self._held, []
        else:
            ready = [h for h in self._held if h[0] <= older_than]
            self._held = self._held[len(ready):]
        for _, event in ready:
            self._hub.publish(event)

    async def run(self) -> None:
        """Release whatever waited `hold_max_s`, until cancelled."""
        while True:
            await self._holding.wait()
            if self._held:
                await asyncio.sleep(max(0.0, self._held[0][0] + self._hold_max_s - self._clock()))
                self.release(older_than=self._clock() - self._hold_max_s)
            if not self._held:
                self._holding.clear()


async def feed_store_changes(store: Store, gate: ResourceGate) -> None:
    """Hold an event for every committed change until the store's watch ends (the store closed) or cancelled."""
    changes = store.watch()
    try:
        async for change in changes:
            key = change.key
            mesh = key.name if key.kind is MESH else key.mesh
            gate.hold(Event("resource", mesh, key.name, key.kind.name, change.kind.value))
    finally:
        await changes.aclose()


class ReconcilerFeed:
    """`snapshot` events, one per mesh per regeneration pass, after the resource events the pass applied."""

    def __init__(self, hub: EventHub, gate: ResourceGate | None = None) -> None:
        self._hub = hub
        self.gate = gate if gate is not None else ResourceGate(hub)
        self._published: Counter[str] = Counter()

    def on_published(self, node_id: str, snapshot: Snapshot, started: float) -> None:
        if self._hub.clients:
            node = _node(node_id)
            self._published[node.mesh if node is not None else ""] += 1

    def on_pass_done(self, changes: int) -> None:
        published, self._published = self._published, Counter()
        self.gate.release()
        if not self._hub.clients:
            return
        for mesh, count in sorted(published.items()):
            self._hub.publish(Event("snapshot", mesh, count=count))
        if not published and changes:
            self._hub.publish(Event("snapshot"))


class StreamFeed(NoopObserver):
    """`dataplane` and `xds` events from the ADS streams."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub

    def on_stream_open(self, stream_id: int, node_id: str, variant: Variant,
                       envoy_version: EnvoyVersion | None = None) -> None:
        self._publish("dataplane", node_id, "connected")

    def on_request(self, stream_id: int, node_id: str, type_url: str, kind: RequestKind, version: str,
                   nonce: str, error_message: str) -> None:
        if kind in ("ack", "nack"):
            self._publish("xds", node_id, kind)

    def on_stream_close(self, stream_id: int, node_id: str) -> None:
        self._publish("dataplane", node_id, "disconnected")

    def _publish(self, type_: str, node_id: str, detail: str) -> None:
        if self._hub.clients and (node := _node(node_id)) is not None:
            self._hub.publish(Event(type_, node.mesh, node.name, detail=detail))


class VerdictFeed:
    """`spans` events when a proxy's span-flow verdict changes (see the module docstring)."""

    def __init__(self, hub: EventHub, flows: SpanFlows, nodes: Iterable[str]) -> None:
        """Judges the proxies `nodes` names (the reconciler's records); listens to `flows`' reports."""
        self._hub, self._flows, self._nodes = hub, flows, nodes
        self._known: dict[str, State] = {}
        self._baseline = False
        flows.add_listener(self.on_report)

    def on_report(self, node_id: str) -> None:
        if not self._hub.clients:
            self._forget()
            return
        if not self._baseline:
            self.sweep()
        self._judge(node_id, self._flows.now(), self._known.get(node_id))

    def sweep(self) -> None:
        """Re-judge every proxy; the first sweep after a client subscribed only learns the verdicts."""
        if not self._hub.clients:
            self._forget()
            return
        now, baseline, before = self._flows.now(), self._baseline, self._known
        self._baseline, self._known = True, {}  # rebuilt from the current proxies: removed ones are dropped
        for node in list(self._nodes):
            self._judge(node, now, before.get(node) if baseline else None, publish=baseline)

    def _judge(self, node_id: str, now: float, known: State | None = None, *, publish: bool = True) -> None:
        state = self._flows.verdict(node_id, now).state
        self._known[node_id] = state
        if publish and known is not state and (node := _node(node_id)) is not None:
            self._hub.publish(Event("spans", node.mesh, node.name, detail=state.value))

    def _forget(self) -> None:
        if self._baseline:
            self._known.clear()
            self._baseline = False

    async def run(self, interval_s: float = SWEEP_S) -> None:
        """Sweep every `interval_s` until cancelled (idle, one wake-up per interval, while nobody listens)."""
        while True:
            await asyncio.sleep(interval_s)
            self.sweep()



class LiveFeeds:
    """The hub and every feed that fills it, as `controlplane run` hooks them in: `reconciler` among the
    reconciler's observers, `streams` beside the ADS status registry, `follow` once the span flows exist,
    and `run` as one of the process's tasks."""

    def __init__(self, max_clients: int) -> None:
        self.hub = EventHub(max_clients=max_clients)
        self.reconciler = ReconcilerFeed(self.hub)
        self.streams = StreamFeed(self.hub)
        self._verdicts: VerdictFeed | None = None

    def follow(self, flows: SpanFlows, nodes: Iterable[str]) -> None:
        self._verdicts = VerdictFeed(self.hub, flows, nodes)

    async def run(self, store: Store) -> None:
        """The feeds that are tasks (the store's changes and their gate, the verdict sweep), until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(feed_store_changes(store, self.reconciler.gate), name="events-store")
            tasks.create_task(self.reconciler.gate.run(), name="events-gate")
            if self._verdicts is not None:
                tasks.create_task(self._verdicts.run(), name="events-verdicts")
