"""Event-driven reconciler: store changes → affected proxies → regenerated snapshots in the cache.

No polling loop (Kuma ticks every proxy every second; we react to `store.watch()` instead, so an idle mesh
costs nothing). Bursts are coalesced: after a change we wait for more, restarting the wait on each one, but
never longer than `max_wait_s` in total (Istio's PILOT_DEBOUNCE_AFTER/MAX). The wait is `debounce_s`, except
after a quiet period (no batch for `debounce_s`): then the first gap is only `debounce_first_s`, long enough
to catch the back-to-back PUTs of one multi-document `apply`, so a lone change is not held for the whole
debounce. A second change inside that gap means a burst, and the wait grows back to `debounce_s`.

Which proxies a batch affects:
- Mesh or policy change: every proxy of that mesh whose policy decisions (the plugins' matched policies,
  effective tracing, reasons) changed. Deciding is cheap; generation is what we avoid.
- Dataplane change: that proxy, plus proxies whose outbounds reach a service it serves (before or after the
  change), since their endpoints or inferred protocol may have changed.
Snapshot versions are content hashes, so regenerating a proxy whose config did not change pushes nothing;
the affected-set logic saves CPU, it is not what keeps pushes exact.

Only connected proxies are generated (Kuma likewise starts a proxy's xDS generation when it connects).
Every pass decides for every proxy (inspection and span verdicts read the decisions), but an affected
proxy with no ADS stream only loses its now stale snapshot; when a stream for a proxy without a snapshot
opens, the cache asks for one (`SnapshotCache.on_demand`) and `_serve_demands` generates it from the
mesh's context of the last pass. A lock keeps demands out of a pass (the mirror may be half-applied while
a pass yields), so a demand is served from a context that matches the mirror. This is what lets 100k
Dataplanes in a store be ready in seconds: the first pass generates for the proxies already connected.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from controlplane.errors import GenerationError, NotFound, StoreUnavailable
from controlplane.observability import Metrics
from controlplane.policies.plugins import ProxyPolicies
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.model import Resource
from controlplane.resources.registry import KINDS
from controlplane.store.base import Change, ChangeKind, Store
from controlplane.xds.cache import Published, SnapshotCache
from controlplane.xds.entries import ResourceInterner
from controlplane.xds.generate.context import (
    MeshContext,
    Proxy,
    Topology,
    build_mesh_context,
    build_proxy,
    build_topology,
    service_of,
)
from controlplane.xds.generate.generators import Generation, generate
from controlplane.xds.generate.notes import ListenerNote
from controlplane.xds.generate.resource_set import DuplicateResourceError
from controlplane.xds.node import InvalidNodeId, node_id, parse_node_id
from controlplane.xds.snapshot import Snapshot
from controlplane.xds.world import MeshResources, World

log = structlog.get_logger(__name__)

STORE_RETRY_MIN_S = 0.1
STORE_RETRY_MAX_S = 5.0
YIELD_AFTER_S = 0.005
"""Longest stretch of generation between yields to the event loop (STYLE §4.5). A time budget rather than
a proxy count, so the loop lag stays bounded whatever a proxy costs, and streams woken by the snapshots
just published get to write them while the pass goes on instead of after it."""


class ReconcilerObserver(Protocol):
    """Told about the reconciler's work; synchronous, must not block (telemetry, heap upkeep, tests)."""

    def on_published(self, node_id: str, snapshot: Snapshot, started: float) -> None:
        """A changed snapshot for `node_id` was published, from changes first seen at `started`."""

    def on_pass_done(self, changes: int) -> None:
        """A regeneration pass ended: the initial one (`changes` = 0) or one per batch of store changes."""


@dataclass(frozen=True, slots=True)
class ProxyRecord:
    """What the last pass decided and generated for one proxy: every policy plugin's decision, and the
    generation of the last *published* snapshot (None before the first one), from which the next
    regeneration re-runs only the concerns whose inputs changed (generate/generators.py)."""

    policies: ProxyPolicies
    generation: Generation | None = None

    @property
    def listeners(self) -> tuple[ListenerNote, ...]:
        """Per listener of the published snapshot, whether it was traced and why not (inspection)."""
        return self.generation.listeners if self.generation is not None else ()


@dataclass
class _Dirty:
    """What one batch touched, per mesh."""

    policy_meshes: set[str] = field(default_factory=set)
    proxies: dict[str, set[str]] = field(default_factory=dict)

    def add_proxy(self, mesh: str, name: str) -> None:
        self.proxies.setdefault(mesh, set()).add(name)


class Reconciler:
    """Owns the mirror of the store (`world`) and, per proxy, the last decisions (`records`)."""

    def __init__(
        self,
        store: Store,
        cache: SnapshotCache,
        metrics: Metrics,
        *,
        debounce_s: float = 0.1,
        max_wait_s: float = 1.0,
        debounce_first_s: float = 0.02,
        observers: Sequence[ReconcilerObserver] = (),
    ) -> None:
        self.store, self.cache, self.metrics = store, cache, metrics
        self.debounce_s, self.max_wait_s, self.debounce_first_s = debounce_s, max_wait_s, debounce_first_s
        self._last_batch_at = float("-inf")
        self.world = World()
        self.records: dict[str, ProxyRecord] = {}
        """Node id → what the last pass decided and generated for it."""
        self._interner: ResourceInterner = cache.interner
        self._topologies: dict[str, tuple[int, Topology]] = {}
        """Mesh → (the World revision of its Dataplanes, their topology)."""
        self._contexts: dict[str, MeshContext] = {}
        """Mesh → its context as of the last pass (current whenever `_lock` is free)."""
        self._observers = tuple(observers)
        self._lock = asyncio.Lock()
        """Held by a pass (load, mirror, regenerate) and while demands are served."""
        self._wanted: set[str] = set()
        """Node ids whose stream opened without a snapshot, not served yet."""
        self._wake = asyncio.Event()
        cache.on_demand = self._want
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Load everything, publish every proxy, then follow the store until cancelled."""
        changes = self.store.watch()  # subscribe first: nothing committed during the load is missed
        try:
            async with self._lock:
                await self._load_all()
                started = time.perf_counter()
                for mesh in self.world.mesh_names():
                    await self._regenerate(mesh, None, started)
                self._pass_done(0)
            self.ready.set()
            log.info("reconciler_ready", meshes=len(self.world.mesh_names()), proxies=len(self.records),
                     connected=len(self.cache.node_ids()))
            async with asyncio.TaskGroup() as tasks:
                demands = tasks.create_task(self._serve_demands(), name="reconciler-demands")
                async for batch in self._batches(changes):
                    async with self._lock:
                        await self._apply(batch)
                demands.cancel()  # the store's watch ended
        finally:
            await changes.aclose()

    def _want(self, node: str) -> None:
        self._wanted.add(node)
        self._wake.set()

    async def _serve_demands(self) -> None:
        """Generate the first snapshot of every proxy that connected without one, between passes."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            async with self._lock:
                budget = _YieldBudget()
                while self._wanted:
                    self._serve(self._wanted.pop())
                    await budget.tick()

    def _serve(self, node: str) -> None:
        if self.cache.get_snapshot(node) is not None or not self.cache.watched(node):
            return  # a pass published it meanwhile, or the stream is gone
        try:
            parsed = parse_node_id(node)
        except InvalidNodeId:
            return
        ctx = self._contexts.get(parsed.mesh)
        dataplane = self.world.mesh(parsed.mesh).dataplanes.get(parsed.name) if ctx is not None else None
        if ctx is None or dataplane is None:
            return  # no such Dataplane (yet): the pass that mirrors it generates it, it is watched then
        self._publish(ctx, node, build_proxy(ctx, dataplane), time.perf_counter())

    def unpublished(self, node: str) -> Generation | None:
        """The generation a proxy that is not connected would get now (inspection of a proxy that has no
        published snapshot); None when there is no such Dataplane. Nothing is published or recorded."""
        try:
            parsed = parse_node_id(node)
        except InvalidNodeId:
            return None
        ctx = self._contexts.get(parsed.mesh)
        dataplane = self.world.mesh(parsed.mesh).dataplanes.get(parsed.name) if ctx is not None else None
        if ctx is None or dataplane is None:
            return None
        return generate(ctx, build_proxy(ctx, dataplane), self._interner, None)

    async def _load_all(self) -> None:
        backoff = STORE_RETRY_MIN_S
        while True:
            try:
                pages = [await self.store.list(kind) for kind in KINDS]
                break
            except StoreUnavailable as exc:
                log.warning("store_unavailable", error=str(exc), retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, STORE_RETRY_MAX_S)
        for page in pages:
            for resource in page.items:
                self.world.put(resource)

    async def _batches(self, changes: AsyncIterator[Change]) -> AsyncIterator[tuple[list[Change], float]]:
        loop = asyncio.get_running_loop()
        while True:
            try:
                first = await anext(changes)
            except StopAsyncIteration:
                return
            started, batch = time.perf_counter(), [first]
            now = loop.time()
            deadline = now + self.max_wait_s
            gap = self.debounce_first_s if now - self._last_batch_at >= self.debounce_s else self.debounce_s
            while (remaining := min(gap, deadline - loop.time())) > 0:
                try:
                    batch.append(await asyncio.wait_for(anext(changes), remaining))
                except (TimeoutError, StopAsyncIteration):
                    break
                gap = self.debounce_s
            yield batch, started
            self._last_batch_at = loop.time()

    async def _apply(self, item: tuple[list[Change], float]) -> None:
        batch, started = item
        latest = {c.key: c for c in batch}
        try:
            dirty = await self._mirror_all(list(latest.values()))
            log.debug("changes_coalesced", changes=len(batch), keys=len(latest))
            for mesh in sorted(dirty.policy_meshes | set(dirty.proxies)):
                await self._regenerate(mesh, dirty, started)
        finally:
            self._pass_done(len(batch))

    def _pass_done(self, changes: int) -> None:
        for observer in self._observers:
            observer.on_pass_done(changes)

    async def _mirror_all(self, changes: list[Change]) -> _Dirty:
        """Mirror a batch; while the store is unavailable keep the current snapshots and retry the batch.

        Retrying is safe: mirroring re-reads the latest state, so a half-applied attempt converges, and a
        store that missed changes during an outage reports them as ordinary changes after it recovers.
        """
        backoff = STORE_RETRY_MIN_S
        while True:
            dirty = _Dirty()
            try:
                for change in changes:
                    await self._mirror(change, dirty)
                return dirty
            except StoreUnavailable as exc:
                log.warning("store_unavailable", error=str(exc), retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, STORE_RETRY_MAX_S)

    async def _mirror(self, change: Change, dirty: _Dirty) -> None:
        key = change.key
        new: Resource | None = None
        if change.kind is not ChangeKind.DELETED:
            try:
                new = await self.store.get(key)
            except NotFound:
                new = None
        old = self.world.put(new) if new is not None else self.world.remove(key)
        mesh = self.world.mesh_of(key)
        if key.kind is not DATAPLANE:
            dirty.policy_meshes.add(mesh)
            return
        if new is None:
            self._forget(mesh, key.name)
        else:
            dirty.add_proxy(mesh, key.name)
        for name in self.world.clients_of(mesh, _served(old) | _served(new)):
            dirty.add_proxy(mesh, name)

    def _forget(self, mesh: str, name: str) -> None:
        node = node_id(mesh, name)
        self.records.pop(node, None)
        self.cache.clear(node)
        log.info("proxy_removed", node_id=node)

    async def _regenerate(self, mesh: str, dirty: _Dirty | None, started: float) -> None:
        """Regenerate the proxies of `mesh` that `dirty` selects (all of them when dirty is None)."""
        group = self.world.mesh(mesh)
        if group.mesh is None:
            self._topologies.pop(mesh, None)
            self._contexts.pop(mesh, None)
            for name in list(group.dataplanes):
                self._forget(mesh, name)
            return
        topology = self._topology(mesh, group)
        ctx = self._contexts[mesh] = build_mesh_context(group.mesh, group.all_policies(), topology=topology)
        explicit = dirty.proxies.get(mesh, set()) if dirty is not None else set()
        policy = dirty is None or mesh in dirty.policy_meshes
        todo: list[tuple[str, Proxy]] = []
        dropped = 0
        budget = _YieldBudget()
        # A Dataplane change alone changes no other proxy's decision (each is decided from its own
        # Dataplane and the policies): only the changed proxies and their clients are looked at.
        candidates = ctx.dataplanes if policy else [ctx.indexed[n].dataplane for n in sorted(explicit)
                                                    if n in ctx.indexed]
        for dataplane in candidates:
            proxy = build_proxy(ctx, dataplane)
            node = ctx.indexed[dataplane.name].node_id
            record = self.records.get(node)
            decisions_changed = record is None or record.policies != proxy.policies
            if decisions_changed:
                self.records[node] = ProxyRecord(proxy.policies, record.generation if record is not None else None)
            if dataplane.name in explicit or (policy and (decisions_changed or dirty is None)):
                if self.cache.watched(node):
                    todo.append((node, proxy))
                elif self.cache.drop(node) or dirty is None:  # not connected: generated when it connects
                    dropped += 1
                    self.records[node] = ProxyRecord(proxy.policies, None)
            await budget.tick()
        outcomes = Counter[Published]()
        began = time.perf_counter()
        for node, proxy in todo:
            outcomes[self._publish(ctx, node, proxy, started)] += 1
            await budget.tick()
        if todo or dropped:
            log.info("mesh_regenerated", mesh=mesh, proxies=len(todo), changed=outcomes[Published.CHANGED],
                     unchanged=outcomes[Published.UNCHANGED], refused=outcomes[Published.REFUSED],
                     not_connected=dropped, seconds=round(time.perf_counter() - began, 4))

    def _topology(self, mesh: str, group: MeshResources) -> Topology:
        """The mesh's topology, rebuilt only when its Dataplanes changed (keeping unchanged destinations)."""
        kept = self._topologies.get(mesh)
        if kept is not None and kept[0] == group.revision:
            return kept[1]
        topology = build_topology(list(group.dataplanes.values()), kept[1] if kept is not None else None)
        self._topologies[mesh] = (group.revision, topology)
        return topology

    def _publish(self, ctx: MeshContext, node: str, proxy: Proxy, started: float) -> Published:
        began = time.perf_counter()
        record = self.records.get(node)
        current = self.cache.get_snapshot(node)
        previous = record.generation if record is not None and current is not None else None
        try:
            generation = generate(ctx, proxy, self._interner, previous)
            if previous is None or current is None:
                changed = None
                snapshot = Snapshot.build({t: generation.entries(t) for t in generation.changed_types})
            else:
                changed = generation.changed_types
                snapshot = current.update({t: generation.entries(t) for t in changed})
        except (GenerationError, DuplicateResourceError) as exc:
            self.metrics.generation_seconds.labels("error").observe(time.perf_counter() - began)
            generator = exc.generator if isinstance(exc, GenerationError) else "merge"
            log.error("generation_failed", node_id=node, mesh=ctx.mesh.name, generator=generator, error=str(exc))
            return Published.REFUSED
        outcome = self.cache.set_snapshot(node, snapshot, changed)  # REFUSED is logged there
        result = "error" if outcome is Published.REFUSED else outcome.value
        self.metrics.generation_seconds.labels(result).observe(time.perf_counter() - began)
        if outcome is not Published.REFUSED:
            self.records[node] = ProxyRecord(proxy.policies, generation)
        if outcome is Published.CHANGED:
            # Debug only, and without the versions: at info a mesh-wide change would log every proxy; the pass
            # summary is at info and each proxy's versions are on the inspection API.
            log.debug("config_changed", node_id=node, mesh=ctx.mesh.name)
            for observer in self._observers:
                observer.on_published(node, snapshot, started)
        return outcome


class _YieldBudget:
    """Yields to the event loop once `YIELD_AFTER_S` of work has passed since the last yield."""

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until = time.perf_counter() + YIELD_AFTER_S

    async def tick(self) -> None:
        if time.perf_counter() >= self._until:
            await asyncio.sleep(0)
            self._until = time.perf_counter() + YIELD_AFTER_S


def _served(dataplane: Resource | None) -> set[str]:
    if dataplane is None:
        return set()
    return {s for s in (service_of(i.tags) for i in dataplane.spec.networking.inbound) if s}
