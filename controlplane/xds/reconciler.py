"""Event-driven reconciler: store changes → affected proxies → regenerated snapshots in the cache.

No polling loop (Kuma ticks every proxy every second; we react to `store.watch()` instead, so an idle mesh
costs nothing). Bursts are coalesced: after a change we wait for more, restarting the wait on each one, but
never longer than `max_wait_s` in total (Istio's PILOT_DEBOUNCE_AFTER/MAX). The wait is `debounce_s`, except
after a quiet period (no batch for `debounce_s`): then the first gap is only `debounce_first_s`, long enough
to catch the back-to-back PUTs of one multi-document `apply`, so a lone change is not held for the whole
debounce. A second change inside that gap means a burst, and the wait grows back to `debounce_s`.

Which proxies a batch affects:
- Mesh or TrafficTrace change: every proxy of that mesh whose tracing resolution (matched policy + backend)
  changed. Matching is cheap; generation is what we avoid.
- Dataplane change: that proxy, plus proxies whose outbounds reach a service it serves (before or after the
  change), since their endpoints or inferred protocol may have changed.
Snapshot versions are content hashes, so regenerating a proxy whose config did not change pushes nothing;
the affected-set logic saves CPU, it is not what keeps pushes exact.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import structlog

from controlplane.errors import GenerationError, NotFound, StoreUnavailable
from controlplane.observability import Metrics
from controlplane.policy import TracingResolution
from controlplane.resources.model import Kind, Resource
from controlplane.store.base import Change, ChangeKind, Store
from controlplane.xds.cache import Published, SnapshotCache
from controlplane.xds.generate import MeshContext, Proxy, build_mesh_context, build_proxy, generate_snapshot
from controlplane.xds.generate.context import service_of
from controlplane.xds.snapshot import ResourceInterner, Snapshot
from controlplane.xds.world import World

log = structlog.get_logger(__name__)

STORE_RETRY_MIN_S = 0.1
STORE_RETRY_MAX_S = 5.0
YIELD_AFTER_S = 0.005
"""Longest stretch of generation between yields to the event loop (STYLE §4.5). A time budget rather than
a proxy count, so the loop lag stays bounded whatever a proxy costs, and streams woken by the snapshots
just published get to write them while the pass goes on instead of after it."""
PublishHook = Callable[[str, Snapshot, float], None]
PassHook = Callable[[], None]


def node_id(mesh: str, name: str) -> str:
    return f"{mesh}.{name}"


@dataclass
class _Dirty:
    """What one batch touched, per mesh."""

    policy_meshes: set[str] = field(default_factory=set)
    proxies: dict[str, set[str]] = field(default_factory=dict)

    def add_proxy(self, mesh: str, name: str) -> None:
        self.proxies.setdefault(mesh, set()).add(name)


class Reconciler:
    def __init__(
        self,
        store: Store,
        cache: SnapshotCache,
        metrics: Metrics,
        *,
        debounce_s: float = 0.1,
        max_wait_s: float = 1.0,
        debounce_first_s: float = 0.02,
        on_published: PublishHook | None = None,
        after_pass: PassHook | None = None,
    ) -> None:
        self.store, self.cache, self.metrics = store, cache, metrics
        self.debounce_s, self.max_wait_s, self.debounce_first_s = debounce_s, max_wait_s, debounce_first_s
        self._last_batch_at = float("-inf")
        self.world = World()
        self.resolutions: dict[str, TracingResolution] = {}
        self._interner: ResourceInterner = cache.interner
        self._on_published = on_published
        self._after_pass = after_pass
        self.ready = asyncio.Event()
        self.idle = True
        """False while a batch is being mirrored and regenerated (tests and benchmarks wait on it)."""

    async def run(self) -> None:
        """Load everything, publish every proxy, then follow the store until cancelled."""
        changes = self.store.watch()  # subscribe first: nothing committed during the load is missed
        try:
            await self._load_all()
            started = time.perf_counter()
            for mesh in self.world.mesh_names():
                await self._regenerate(mesh, None, started)
            self._pass_done()
            self.ready.set()
            log.info("reconciler_ready", meshes=len(self.world.mesh_names()), proxies=len(self.resolutions))
            async for batch in self._batches(changes):
                await self._apply(batch)
        finally:
            await changes.aclose()

    async def _load_all(self) -> None:
        backoff = STORE_RETRY_MIN_S
        while True:
            try:
                pages = [await self.store.list(kind) for kind in (Kind.MESH, Kind.TRAFFIC_TRACE, Kind.DATAPLANE)]
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
        latest = {(c.key.kind, c.key.mesh, c.key.name): c for c in batch}
        self.idle = False
        try:
            dirty = await self._mirror_all(list(latest.values()))
            log.debug("changes_coalesced", changes=len(batch), keys=len(latest))
            for mesh in sorted(dirty.policy_meshes | set(dirty.proxies)):
                await self._regenerate(mesh, dirty, started)
        finally:
            self.idle = True
            self._pass_done()

    def _pass_done(self) -> None:
        if self._after_pass is not None:
            self._after_pass()

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
        if key.kind is not Kind.DATAPLANE:
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
        self.resolutions.pop(node, None)
        self.cache.clear(node)
        log.info("proxy_removed", node_id=node)

    async def _regenerate(self, mesh: str, dirty: _Dirty | None, started: float) -> None:
        """Regenerate the proxies of `mesh` that `dirty` selects (all of them when dirty is None)."""
        group = self.world.mesh(mesh)
        if group.mesh is None:
            for name in list(group.dataplanes):
                self._forget(mesh, name)
            return
        ctx = build_mesh_context(group.mesh, list(group.traffic_traces.values()), list(group.dataplanes.values()))
        explicit = dirty.proxies.get(mesh, set()) if dirty is not None else set()
        policy = dirty is None or mesh in dirty.policy_meshes
        todo: list[tuple[str, Proxy]] = []
        budget = _YieldBudget()
        for dataplane in ctx.dataplanes:
            proxy = build_proxy(ctx, dataplane)
            node = node_id(mesh, dataplane.name)
            resolution_changed = self.resolutions.get(node) != proxy.tracing
            self.resolutions[node] = proxy.tracing
            if dataplane.name in explicit or (policy and (resolution_changed or dirty is None)):
                todo.append((node, proxy))
            await budget.tick()
        # Proxies with an open stream first: the others get their config only when they connect.
        todo.sort(key=lambda item: self.cache.watcher_count(item[0]) == 0)
        outcomes = Counter[Published]()
        began = time.perf_counter()
        for node, proxy in todo:
            outcomes[self._publish(ctx, node, proxy, started)] += 1
            await budget.tick()
        # Generators return shared message objects within a pass; remembering them beyond it only pins memory.
        self._interner.release_objects()
        if todo:
            log.info("mesh_regenerated", mesh=mesh, proxies=len(todo), changed=outcomes[Published.CHANGED],
                     unchanged=outcomes[Published.UNCHANGED], refused=outcomes[Published.REFUSED],
                     seconds=round(time.perf_counter() - began, 4))

    def _publish(self, ctx: MeshContext, node: str, proxy: Proxy, started: float) -> Published:
        began = time.perf_counter()
        try:
            resources = generate_snapshot(ctx, proxy)
        except GenerationError as exc:
            self.metrics.generation_seconds.labels("error").observe(time.perf_counter() - began)
            log.error("generation_failed", node_id=node, mesh=ctx.mesh.name, generator=exc.generator, error=str(exc))
            return Published.REFUSED
        snapshot = Snapshot.build(resources, interner=self._interner)
        outcome = self.cache.set_snapshot(node, snapshot)  # REFUSED is logged there
        self.metrics.generation_seconds.labels(outcome.value if outcome else "error").observe(time.perf_counter() - began)
        if outcome is Published.CHANGED:
            # Debug only, and without the versions: at info a mesh-wide change would log every proxy; the pass
            # summary is at info and each proxy's versions are on the inspection API.
            log.debug("config_changed", node_id=node, mesh=ctx.mesh.name)
            if self._on_published is not None:
                self._on_published(node, snapshot, started)
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
