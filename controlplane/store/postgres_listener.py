"""Change events of the PostgreSQL store: LISTEN on one dedicated connection, fan out to `watch()` iterators.

Every write (any replica) commits its changes together with one `pg_notify(CHANGES_CHANNEL, payload)` per
changed resource, in the same transaction; PostgreSQL delivers notifications only after COMMIT, and in
commit order, so each replica's listener sees exactly the committed changes, in order, within
milliseconds. A replica's own writes come back the same way: one path for all changes keeps their order
consistent with everyone else's. (A trigger could send the notifications instead; explicit `pg_notify`
was chosen so a Mesh delete emits its cascade in the documented order, base.py.)

Outages. The listener connection is watched (termination callback plus a keepalive query); when it drops,
it reconnects by itself with exponential back-off and jitter. Notifications sent while it was away are
lost by design of LISTEN/NOTIFY, so after reconnecting it resynchronises: it keeps `known` (key ->
version, revision) of everything it has reported, re-reads (key, version, revision) of every resource,
and emits the difference as ordinary changes: DELETED for keys that are gone (contained resources before
their Mesh), CREATED for new keys, UPDATED for keys whose revision moved (meshes first). A consumer that,
like the reconciler, re-reads the store on CREATED/UPDATED and drops on DELETED ends up exactly right;
nothing is lost and nothing needs a special "resync" event. Rejected: re-emitting UPDATED for everything
(cannot express deletions, and regenerates every proxy after each blip).

Notifications that arrive right after a resync may describe commits the resync already reported; a
notification whose revision is not newer than what `known` holds for that key is dropped.

A watcher must see only changes committed after `watch()`, but this replica's own committed writes may
still be in flight on the listener connection when it subscribes. Writers therefore register their
revisions (`expect`) before COMMIT; a new watcher skips the revisions pending at that moment, and
`close()` waits briefly for pending notifications so watchers get every change this replica committed.

Runs on the event loop only; the listener task is owned by PostgresStore (started in open, cancelled and
awaited in close).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import asyncpg
import structlog

from controlplane.resources.mesh import MESH
from controlplane.resources.model import ResourceKey
from controlplane.resources.registry import KINDS
from controlplane.store.base import Change, ChangeKind
from controlplane.store.fanout import ChangeStream
from controlplane.store.postgres_schema import CHANGES_CHANNEL, DATABASE_ERRORS, is_unavailable

log = structlog.get_logger(__name__)

Connect = Callable[[], Awaitable[asyncpg.Connection]]
DRAIN_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Notice:
    """One change as sent through NOTIFY; `revision` is None for changes synthesised by a resync."""

    change: Change
    revision: int | None


def encode(change: Change, revision: int) -> str:
    key = change.key
    return json.dumps(
        {"op": change.kind.value, "kind": key.kind.value, "mesh": key.mesh, "name": key.name,
         "version": change.version, "revision": revision},
        separators=(",", ":"),
    )  # fmt: skip


def decode(payload: str) -> Notice:
    """Parse a notification payload; ValueError (or KeyError/TypeError) if it is not one of ours."""
    data = json.loads(payload)
    key = ResourceKey(KINDS.by_type(data["kind"]), str(data["mesh"]), str(data["name"]))
    return Notice(Change(ChangeKind(data["op"]), key, int(data["version"])), int(data["revision"]))


class RevisionFanout:
    """The open watchers, each with the set of (own, in-flight) revisions it must not report."""

    def __init__(self) -> None:
        self._streams: dict[ChangeStream, set[int]] = {}
        self._closed = False

    def subscribe(self, skip: Iterable[int]) -> ChangeStream:
        stream = ChangeStream(self._unregister)
        if self._closed:
            stream.end()
        else:
            self._streams[stream] = set(skip)
        return stream

    def publish(self, notices: Iterable[Notice]) -> None:
        batch = tuple(notices)
        for stream, skip in self._streams.items():
            for notice in batch:
                if notice.revision is not None and notice.revision in skip:
                    skip.discard(notice.revision)
                else:
                    stream.deliver(notice.change)

    def clear_skips(self) -> None:
        for skip in self._streams.values():
            skip.clear()

    def close(self) -> None:
        self._closed = True
        for stream in self._streams:
            stream.end()
        self._streams.clear()

    def _unregister(self, stream: ChangeStream) -> None:
        self._streams.pop(stream, None)


@dataclass(frozen=True, slots=True)
class Backoff:
    first_s: float = 0.1
    max_s: float = 5.0
    keepalive_s: float = 5.0


class _Session:
    """One listener connection and the queue its callbacks feed (None = connection lost)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()

    def on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self.queue.put_nowait(str(payload))

    def on_terminate(self, _conn: object) -> None:
        self.queue.put_nowait(None)


class ChangeListener:
    """Follows CHANGES_CHANNEL for one store and feeds its watchers; see the module docstring."""

    def __init__(self, connect: Connect, where: str, backoff: Backoff) -> None:
        self._connect_raw = connect
        self._where = where
        self._backoff = backoff
        self._fanout = RevisionFanout()
        self._known: dict[ResourceKey, tuple[int, int]] = {}
        self._pending: set[int] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._session: _Session | None = None
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0

    async def start(self) -> None:
        """Connect and take the first snapshot (raises if the database is unreachable), then follow."""
        session = await self._connect()
        try:
            await self._resync(session, emit=False)
        except BaseException:
            session.conn.terminate()
            raise
        self._session = session
        self._task = asyncio.create_task(self._run(session), name="postgres-change-listener")

    def watch(self) -> ChangeStream:
        return self._fanout.subscribe(self._pending)

    def expect(self, revisions: Iterable[int]) -> None:
        """A writer is about to COMMIT these revisions (call before COMMIT)."""
        self._pending.update(revisions)
        if self._pending:
            self._idle.clear()

    def forget(self, revisions: Iterable[int]) -> None:
        """The COMMIT of these revisions failed (or may have): stop waiting for them."""
        self._pending.difference_update(revisions)
        if not self._pending:
            self._idle.set()

    async def close(self) -> None:
        """Wait (briefly) for this replica's own pending notifications, then stop and end every watcher."""
        if self._session is not None and self._pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_TIMEOUT_S):
                    await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            # asyncio.wait, not `await task`: the task's CancelledError stays its own, while a cancellation
            # of close() itself still propagates.
            await asyncio.wait([self._task])
        self._drop_session()
        self._fanout.close()

    async def _run(self, session: _Session) -> None:
        while True:
            try:
                await self._follow(session)
            except Exception as exc:  # task boundary: any failure means "reconnect", never "die"
                if not is_unavailable(exc):
                    log.exception("listener_failed", database=self._where)
                else:
                    log.warning("listener_lost", database=self._where, error=str(exc) or type(exc).__name__)
            else:
                log.warning("listener_lost", database=self._where, error="connection closed")
            self._drop_session()
            session = await self._reconnect()
            self._session = session

    async def _follow(self, session: _Session) -> None:
        """Deliver notifications until the connection is lost (returns) or a keepalive fails (raises)."""
        while True:
            try:
                async with asyncio.timeout(self._backoff.keepalive_s):
                    payload = await session.queue.get()
            except TimeoutError:
                await session.conn.fetchval("SELECT 1", timeout=self._backoff.keepalive_s)
                continue
            if payload is None:
                return
            self._handle(payload)

    def _handle(self, payload: str) -> None:
        try:
            notice = decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("notification_ignored", database=self._where, payload=payload[:200])
            return
        assert notice.revision is not None
        self.forget([notice.revision])
        if self._is_stale(notice):
            return
        self._remember(notice.change, notice.revision)
        self._fanout.publish([notice])

    def _is_stale(self, notice: Notice) -> bool:
        assert notice.revision is not None
        seen = self._known.get(notice.change.key)
        if notice.change.kind is ChangeKind.DELETED:
            return seen is None or seen[1] > notice.revision
        return seen is not None and seen[1] >= notice.revision

    def _remember(self, change: Change, revision: int) -> None:
        if change.kind is ChangeKind.DELETED:
            self._known.pop(change.key, None)
        else:
            self._known[change.key] = (change.version, revision)

    async def _reconnect(self) -> _Session:
        delay, attempt = self._backoff.first_s, 0
        while True:
            await asyncio.sleep(delay * random.uniform(1.0, 1.2))  # jitter: replicas do not stampede
            attempt += 1
            try:
                session = await self._connect()
            except DATABASE_ERRORS as exc:
                log.warning("listener_reconnect_failed", database=self._where, attempt=attempt,
                            error=str(exc) or type(exc).__name__)  # fmt: skip
                delay = min(delay * 2, self._backoff.max_s)
                continue
            try:
                emitted = await self._resync(session, emit=True)
            except DATABASE_ERRORS as exc:
                session.conn.terminate()
                log.warning("listener_resync_failed", database=self._where, error=str(exc))
                continue
            except BaseException:  # cancelled by close(): do not leak the new connection
                session.conn.terminate()
                raise
            self.reconnects += 1
            log.info("listener_reconnected", database=self._where, attempts=attempt, resync_changes=emitted)
            return session

    async def _connect(self) -> _Session:
        conn = await self._connect_raw()
        session = _Session(conn)
        try:
            conn.add_termination_listener(session.on_terminate)
            await conn.add_listener(CHANGES_CHANNEL, session.on_notify)
        except BaseException:
            conn.terminate()
            raise
        return session

    async def _resync(self, session: _Session, *, emit: bool) -> int:
        """Snapshot every (key, version, revision) after LISTEN; with `emit`, report what changed."""
        rows = await session.conn.fetch("SELECT kind, mesh, name, version, revision FROM resources")
        fresh = {ResourceKey(KINDS.by_type(r["kind"]), r["mesh"], r["name"]): (int(r["version"]), int(r["revision"]))
                 for r in rows}  # fmt: skip
        changes = diff(self._known, fresh) if emit else []
        self._known = fresh
        # Own writes whose notifications died with the old connection are covered by the diff.
        self._pending.clear()
        self._idle.set()
        self._fanout.clear_skips()
        self._fanout.publish(Notice(change, None) for change in changes)
        return len(changes)

    def _drop_session(self) -> None:
        if self._session is not None:
            self._session.conn.terminate()
            self._session = None


def diff(
    known: Mapping[ResourceKey, tuple[int, int]], fresh: Mapping[ResourceKey, tuple[int, int]]
) -> list[Change]:
    """Changes that take a watcher from `known` to `fresh`: deletions first (contained resources before
    their Mesh), then creations and updates (meshes before what they contain)."""
    gone = sorted(
        (k for k in known if k not in fresh),
        key=lambda k: (k.kind is MESH, k.mesh, k.kind.value, k.name),
    )
    moved = sorted(
        (k for k, (_, revision) in fresh.items() if k not in known or known[k][1] != revision),
        key=lambda k: (k.kind is not MESH, k.mesh, k.kind.value, k.name),
    )
    return [Change(ChangeKind.DELETED, k, known[k][0]) for k in gone] + [
        Change(ChangeKind.CREATED if k not in known else ChangeKind.UPDATED, k, fresh[k][0]) for k in moved
    ]
