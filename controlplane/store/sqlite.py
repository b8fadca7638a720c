"""The default, embedded store: one sqlite file (stdlib sqlite3, WAL mode) that survives restarts.

All database work runs on one dedicated worker thread (a ThreadPoolExecutor with max_workers=1) that owns
the only connection; the event loop thread never calls sqlite3, so a slow disk cannot stall ADS streams.
One thread rather than `asyncio.to_thread` plus a lock: a sqlite3 connection belongs to the thread that made
it, and a single FIFO worker gives commit order for free. aiosqlite would do the same with one more
dependency.

Writers are safe in one process and across processes: every write is its own `BEGIN IMMEDIATE`
transaction, `update` only succeeds through `UPDATE ... WHERE version = ?` with a rowcount check
(optimistic concurrency), `create` is a plain INSERT whose IntegrityError becomes AlreadyExists, and
`busy_timeout` makes a second writer wait for the lock instead of failing. A Mesh delete removes the mesh
and everything in it in one transaction.

One process owns the file (`lock.py`): opening takes an exclusive lock beside it, so a second control plane
(or an `import --store`) on the same file is refused instead of writing rows this one never hears about.
Any database error (locked past busy_timeout, disk full, I/O error, a corrupt page, a row that no longer
decodes) is a StoreUnavailable: the API answers 503 for that request and the reconciler keeps its last good
snapshots and retries; nothing sqlite3 raises reaches a task boundary.

Changes reach `watch()` iterators after COMMIT, handed from the worker thread to the loop with
`call_soon_threadsafe` in commit order (also when the writing task was cancelled mid-await). Only writes
made through this SqliteStore instance are seen, which the lock makes the only writer. Sharing a store between
replicas is the PostgreSQL backend's job (LISTEN/NOTIFY), not this one's.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

import structlog
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from controlplane.errors import AlreadyExists, Conflict, MeshNotFound, NotFound, StoreUnavailable
from controlplane.resources.kind import Kind
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.resources.registry import KINDS
from controlplane.resources.spec_json import parse_spec
from controlplane.store import rules, sqlite_schema
from controlplane.store.base import Change, ChangeKind, Page, RevokedTokens
from controlplane.store.fanout import ChangeFanout, ChangeStream
from controlplane.store.lock import StoreLock
from controlplane.store.sqlite_schema import format_time, parse_time, transaction

log = structlog.get_logger(__name__)

T = TypeVar("T")
Row = tuple[str, str, str, int, str, str, str, bytes | None]
"""mesh, name, spec, version, creation and modification time, labels, spec_pb."""
Job = Callable[[sqlite3.Connection], T]
WriteJob = Callable[[sqlite3.Connection], tuple[T, Sequence[Change]]]

_COLUMNS: Final = "mesh, name, spec, version, creation_time, modification_time, labels, spec_pb"
_KEY_MATCH: Final = "kind = ? AND mesh = ? AND name = ?"


class SqliteStore:
    """The Store protocol (controlplane/store/base.py) on a sqlite file.

    Create with `await SqliteStore.open(path)`: opening does I/O, which a constructor could only do on the
    loop thread.
    """

    def __init__(
        self,
        path: str,
        conn: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        loop: asyncio.AbstractEventLoop,
        lock: StoreLock,
    ) -> None:
        self._path = path
        self._conn = conn
        self._lock = lock
        self._executor = executor
        self._loop = loop
        self._fanout = ChangeFanout()
        self._closed = False

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> SqliteStore:
        """Lock, open (creating the file if `create`; never a directory) and migrate the database at `path`.

        StoreLocked if another process holds it, StoreUnavailable if it cannot be opened or is corrupt.
        """
        where = os.fspath(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        loop = asyncio.get_running_loop()
        try:
            lock, conn = await loop.run_in_executor(executor, _open_locked, where, create)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise StoreUnavailable(f"cannot open sqlite database {where}: {exc}") from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        log.info("store_opened", backend="sqlite", path=where, schema_version=sqlite_schema.SCHEMA_VERSION)
        return cls(where, conn, executor, loop, lock)

    @property
    def path(self) -> str:
        return self._path

    async def get(self, key: ResourceKey) -> Resource:
        return await self._run(lambda conn: _select_one(conn, key))

    async def list(
        self, kind: Kind, mesh: str | None = None, *, offset: int = 0, size: int | None = None
    ) -> Page:
        rules.check_page(offset, size)
        return await self._run(lambda conn: _select_page(conn, kind, mesh, offset, size))

    async def create(self, resource: Resource) -> Resource:
        rules.check_resource(resource)
        spec = rules.copy_spec(resource.spec)
        text = _to_json(spec)
        return await self._write(lambda conn: _insert(conn, resource, spec, text))

    async def update(self, resource: Resource, expected_version: int) -> Resource:
        rules.check_resource(resource)
        spec = rules.copy_spec(resource.spec)
        text = _to_json(spec)
        return await self._write(lambda conn: _update(conn, resource, spec, text, expected_version))

    async def delete(self, key: ResourceKey) -> None:
        await self._write(lambda conn: _delete(conn, key))

    async def revoke_token(self, token_id: str) -> bool:
        rules.check_token_id(token_id)
        return await self._run(lambda conn: _insert_revocation(conn, token_id))

    async def is_token_revoked(self, token_id: str) -> bool:
        return await self._run(
            lambda conn: conn.execute("SELECT 1 FROM token_revocations WHERE token_id = ?", (token_id,)).fetchone()
            is not None
        )

    async def revoked_tokens_since(self, cursor: int) -> RevokedTokens:
        return await self._run(lambda conn: _select_revocations(conn, cursor))

    def watch(self) -> ChangeStream:
        return self._fanout.subscribe()

    async def close(self) -> None:
        """End every watcher, let queued database work finish, then close the connection."""
        if self._closed:
            return
        self._closed = True
        self._fanout.close()
        try:
            await self._loop.run_in_executor(self._executor, self._conn.close)
        finally:
            self._executor.shutdown(wait=False)
            self._lock.release()
        log.info("store_closed", backend="sqlite", path=self._path)

    async def _write(self, job: WriteJob[T]) -> T:
        """Run a write on the worker; its changes are published right after COMMIT, in commit order."""

        def work(conn: sqlite3.Connection) -> T:
            result, changes = job(conn)
            self._loop.call_soon_threadsafe(self._fanout.publish, changes)
            return result

        return await self._run(work)

    async def _run(self, job: Job[T]) -> T:
        if self._closed:
            raise StoreUnavailable("store is closed")
        try:
            return await self._loop.run_in_executor(self._executor, job, self._conn)
        except sqlite3.ProgrammingError:
            raise  # misuse of the connection is a bug, not an unavailable store: let it surface as one
        except sqlite3.DatabaseError as exc:  # locked, disk full, I/O error, corrupt page or row
            raise StoreUnavailable(f"sqlite database {self._path}: {exc}") from exc


# Everything below runs on the worker thread.


def _open_locked(path: str, create: bool) -> tuple[StoreLock, sqlite3.Connection]:
    """The lock first: nothing (not even a WAL switch or a migration) touches a file another process owns."""
    sqlite_schema.check_location(path, create)
    lock = StoreLock.acquire(path)
    try:
        return lock, sqlite_schema.connect(path, create=create)
    except BaseException:
        lock.release()
        raise


def _to_json(spec: Message) -> str:
    return str(json_format.MessageToJson(spec, sort_keys=True, indent=None))


def _labels_json(resource: Resource) -> str:
    return json.dumps(dict(resource.labels), sort_keys=True, separators=(",", ":"))


def _spec_blob(spec: Message, text: str) -> bytes:
    """The `spec_pb` column: CRC-32 of the JSON text, then the binary spec (see the migration)."""
    binary: bytes = spec.SerializeToString(deterministic=True)
    return zlib.crc32(text.encode()).to_bytes(4, "big") + binary


def _decode_spec(kind: Kind, text: str, blob: bytes | None) -> Message:
    if blob is not None and blob[:4] == zlib.crc32(text.encode()).to_bytes(4, "big"):
        # Copied into a fresh message: what the parser returns keeps its parse arena, ~2.5 KB for a small
        # Dataplane against ~1.3 KB for the copy, which at 100k Dataplanes is over 100 MB (6 µs either way).
        spec = kind.spec_type()
        spec.CopyFrom(kind.spec_type.FromString(blob[4:]))
        return spec
    return parse_spec(text, kind.spec_type)  # written before migration 4, or `spec` edited by hand


def _to_resource(kind: Kind, row: Row) -> Resource:
    mesh, name, text, version, created, modified, labels, blob = row
    try:
        spec = _decode_spec(kind, text, blob)
        decoded = json.loads(labels)
        if not isinstance(decoded, dict) or not all(isinstance(v, str) for v in decoded.values()):
            raise ValueError(f"labels are not a map of strings: {labels[:100]!r}")
        return Resource(ResourceKey(kind, mesh, name), spec, version, parse_time(created), parse_time(modified),
                        rules.copy_labels(decoded))
    except (json_format.ParseError, DecodeError, ValueError, TypeError) as exc:
        # Written by us, so only damage (a corrupt page, a hand edit) gets here: a store error, like the
        # DatabaseError a damaged page gives, never a 500 or a dead reconciler.
        raise sqlite3.DatabaseError(f"stored {kind.value} {mesh}/{name} cannot be decoded: {exc}") from exc


def _key_params(key: ResourceKey) -> tuple[str, str, str]:
    return (key.kind.value, key.mesh, key.name)


def _select_one(conn: sqlite3.Connection, key: ResourceKey) -> Resource:
    row = conn.execute(f"SELECT {_COLUMNS} FROM resources WHERE {_KEY_MATCH}", _key_params(key)).fetchone()
    if row is None:
        raise NotFound(str(key))
    return _to_resource(key.kind, row)


def _select_page(
    conn: sqlite3.Connection, kind: Kind, mesh: str | None, offset: int, size: int | None
) -> Page:
    where, params = (
        ("kind = ?", [kind.value]) if mesh is None else ("kind = ? AND mesh = ?", [kind.value, mesh])
    )
    with transaction(conn, write=False):
        total = int(conn.execute(f"SELECT COUNT(*) FROM resources WHERE {where}", params).fetchone()[0])
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM resources WHERE {where} ORDER BY mesh, name LIMIT ? OFFSET ?",
            [*params, -1 if size is None else size, offset],
        ).fetchall()
    return Page(items=tuple(_to_resource(kind, row) for row in rows), total=total)


def _insert(
    conn: sqlite3.Connection, resource: Resource, spec: Message, text: str
) -> tuple[Resource, list[Change]]:
    key = resource.key
    created, modified = rules.create_times(resource)
    try:
        with transaction(conn):
            if key.kind.mesh_scoped and conn.execute(
                "SELECT 1 FROM resources WHERE kind = ? AND mesh = '' AND name = ?", (MESH.value, key.mesh)
            ).fetchone() is None:
                raise MeshNotFound(key.mesh)
            conn.execute(
                f"INSERT INTO resources (kind, {_COLUMNS}) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)",
                (*_key_params(key), text, format_time(created), format_time(modified), _labels_json(resource),
                 _spec_blob(spec, text)),
            )
    except sqlite3.IntegrityError as exc:
        raise AlreadyExists(str(key)) from exc
    labels = rules.copy_labels(resource.labels)
    return Resource(key, spec, 1, created, modified, labels), [Change(ChangeKind.CREATED, key, 1)]


def _update(
    conn: sqlite3.Connection, resource: Resource, spec: Message, text: str, expected_version: int
) -> tuple[Resource, list[Change]]:
    key = resource.key
    with transaction(conn):
        row = conn.execute(
            f"SELECT version, creation_time, modification_time FROM resources WHERE {_KEY_MATCH}",
            _key_params(key),
        ).fetchone()
        if row is None:
            raise NotFound(str(key))
        stored_version, created, modified = int(row[0]), parse_time(row[1]), parse_time(row[2])
        if stored_version != expected_version:
            raise Conflict(f"{key}: expected version {expected_version}, stored version is {stored_version}")
        now = rules.next_modification_time(modified)
        cursor = conn.execute(
            f"UPDATE resources SET spec = ?, spec_pb = ?, labels = ?, version = version + 1, modification_time = ? "
            f"WHERE {_KEY_MATCH} AND version = ?",
            (text, _spec_blob(spec, text), _labels_json(resource), format_time(now), *_key_params(key),
             expected_version),
        )
        if cursor.rowcount != 1:  # another writer got in between; unreachable under BEGIN IMMEDIATE
            raise Conflict(f"{key}: modified concurrently")
    version = expected_version + 1
    updated = Resource(key, spec, version, created, now, rules.copy_labels(resource.labels))
    return updated, [Change(ChangeKind.UPDATED, key, version)]


def _delete(conn: sqlite3.Connection, key: ResourceKey) -> tuple[None, list[Change]]:
    with transaction(conn):
        row = conn.execute(f"SELECT version FROM resources WHERE {_KEY_MATCH}", _key_params(key)).fetchone()
        if row is None:
            raise NotFound(str(key))
        removed: list[Change] = []
        if key.kind is MESH:
            owned = conn.execute(
                "SELECT kind, name, version FROM resources WHERE mesh = ? AND kind != ?",
                (key.name, MESH.value),
            ).fetchall()
            keys = sorted(
                ((ResourceKey(KINDS.by_type(kind), key.name, name), int(version)) for kind, name, version in owned),
                key=lambda item: rules.cascade_order(item[0]),
            )
            removed = [Change(ChangeKind.DELETED, k, v) for k, v in keys]
            conn.execute("DELETE FROM resources WHERE mesh = ? AND kind != ?", (key.name, MESH.value))
        conn.execute(f"DELETE FROM resources WHERE {_KEY_MATCH}", _key_params(key))
    return None, [*removed, Change(ChangeKind.DELETED, key, int(row[0]))]


def _insert_revocation(conn: sqlite3.Connection, token_id: str) -> bool:
    """One transaction: the id is stored whole or not at all (a full disk raises, and nothing is kept)."""
    with transaction(conn):
        cursor = conn.execute(
            "INSERT OR IGNORE INTO token_revocations (token_id, revoked_at) VALUES (?, ?)",
            (token_id, format_time(rules.utc_now())),
        )
    return cursor.rowcount == 1


def _select_revocations(conn: sqlite3.Connection, cursor: int) -> RevokedTokens:
    rows = conn.execute(
        "SELECT seq, token_id FROM token_revocations WHERE seq > ? ORDER BY seq", (cursor,)
    ).fetchall()
    return RevokedTokens(tuple(str(row[1]) for row in rows), int(rows[-1][0]) if rows else cursor)
