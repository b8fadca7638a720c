"""Snapshot cache: the latest consistent `Snapshot` per node id, and who to wake when it changes.

Responsible for accepting snapshots from the reconciler and signalling the ADS streams of that node. It
lives on the event-loop thread and never waits on a consumer: `set_snapshot` stores the value and sets one
latest-wins flag per watching stream. Streams then read the newest snapshot themselves, so a slow or stuck
stream holds at most one pending "changed" flag, never a queue of snapshots. This is the deliberate
opposite of go-control-plane's delivery into watch channels under the cache lock, where one stuck consumer
stalls `SetSnapshot` for everyone (STYLE §1 "Do not copy", reference/xds-protocol.md §2.8 #503).
Must not: know about nonces, subscriptions or gRPC.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Collection

import structlog

from controlplane.xds.entries import ResourceInterner
from controlplane.xds.snapshot import Snapshot

log = structlog.get_logger(__name__)


class Watch:
    """A stream's registration for one node id: a latest-wins change flag.

    `wait()` clears the flag *after* it fires and *before* the caller reads the snapshot, so a change that
    lands while the caller is busy sets the flag again and is never missed (unlike a pulsed event).
    """

    __slots__ = ("_cache", "_changed", "node_id")

    def __init__(self, cache: SnapshotCache, node_id: str) -> None:
        self.node_id = node_id
        self._changed = asyncio.Event()
        self._cache = cache

    def notify(self) -> None:
        self._changed.set()

    async def wait(self) -> None:
        await self._changed.wait()
        self._changed.clear()

    def close(self) -> None:
        self._cache._unwatch(self)


class Published(enum.Enum):
    """Outcome of `set_snapshot`."""

    CHANGED = "changed"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


class SnapshotCache:
    """Per-node snapshots plus watches. Loop-thread only; every method is synchronous and O(watchers).

    `interner` is shared by whoever generates snapshots for this cache (the reconciler), so identical
    resources of many proxies, and of successive passes, are built, serialised and stored once.
    """

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._watches: dict[str, set[Watch]] = {}
        self.interner = ResourceInterner()
        self.on_demand: Callable[[str], None] | None = None
        """Called (synchronously, must not block) when a node without a snapshot gets its first watch: the
        reconciler generates snapshots only for proxies that are connected (as Kuma starts a watchdog per
        connected proxy), so a connecting proxy asks for its first one here."""

    def set_snapshot(self, node_id: str, snapshot: Snapshot, changed: Collection[str] | None = None) -> Published:
        """Publish `snapshot` for `node_id`: CHANGED (streams woken), UNCHANGED (same content as the current
        one, nothing to do) or REFUSED (inconsistent; the previous one is kept).

        An inconsistent snapshot is a generator bug: publishing it would leave Envoy warming or routing to
        clusters it does not have, so it is logged at error level and refused. Per-node success is logged at
        debug level only: a mesh-wide change publishes every proxy, and the reconciler logs one line per pass.
        `changed`: the types `snapshot` replaced in the current one (`Snapshot.update`); only the checks
        involving them run, the rest was checked when the current one was published.
        """
        previous = self._snapshots.get(node_id)
        if previous is not None and previous.same_content(snapshot):
            return Published.UNCHANGED
        problems = snapshot.check_consistent(changed if previous is not None else None)
        if problems:
            log.error("snapshot_inconsistent", node_id=node_id, problems=problems)
            return Published.REFUSED
        self._snapshots[node_id] = snapshot
        watches = self._watches.get(node_id, ())
        for watch in watches:
            watch.notify()
        return Published.CHANGED

    def get_snapshot(self, node_id: str) -> Snapshot | None:
        return self._snapshots.get(node_id)

    def clear(self, node_id: str) -> None:
        """Forget the node's snapshot (dataplane deleted). Connected streams keep what they have: sending
        an empty config would tear down a live proxy; they get config again when a snapshot is set."""
        if self._snapshots.pop(node_id, None) is not None:
            log.info("snapshot_cleared", node_id=node_id)

    def drop(self, node_id: str) -> bool:
        """Forget a snapshot nobody watches because it is out of date (the reconciler does not regenerate
        proxies that are not connected); the node's next watch asks for a fresh one. Quiet: a mesh-wide
        change drops every disconnected proxy's, the reconciler logs the count."""
        return self._snapshots.pop(node_id, None) is not None

    def node_ids(self) -> list[str]:
        """Node ids that have a snapshot, sorted."""
        return sorted(self._snapshots)

    def watch(self, node_id: str) -> Watch:
        """Register a stream's interest in `node_id`; call `Watch.close()` when the stream ends."""
        watch = Watch(self, node_id)
        self._watches.setdefault(node_id, set()).add(watch)
        if node_id not in self._snapshots and self.on_demand is not None:
            self.on_demand(node_id)
        return watch

    def watched(self, node_id: str) -> bool:
        return node_id in self._watches

    def watcher_count(self, node_id: str | None = None) -> int:
        if node_id is not None:
            return len(self._watches.get(node_id, ()))
        return sum(len(watches) for watches in self._watches.values())

    def _unwatch(self, watch: Watch) -> None:
        watches = self._watches.get(watch.node_id)
        if watches is None:
            return
        watches.discard(watch)
        if not watches:
            del self._watches[watch.node_id]
