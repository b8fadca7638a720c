"""The shared store: PostgreSQL through an asyncpg pool, for several control plane replicas on one database.

Same semantics as the memory and sqlite backends (base.py; one contract suite runs against all three):
- optimistic concurrency in the database: `update` is `UPDATE ... WHERE version = $expected`, so two
  replicas racing on one resource cannot both win (READ COMMITTED re-checks the WHERE clause after
  waiting for the other writer's row lock); `create` is `INSERT ... ON CONFLICT DO NOTHING`;
- a Mesh delete removes the mesh and everything in it in one transaction, notifying one DELETED change per
  resource (contained resources by kind, then name; the Mesh last);
- timestamps are taken from this process's UTC clock, as in the other backends, and modification_time
  strictly advances (`GREATEST(now, previous + 1 µs)` in SQL);
- change events go through LISTEN/NOTIFY so every replica sees every replica's writes; the listener, its
  reconnection and its resync after an outage are in postgres_listener.py. A new watcher never sees this
  replica's earlier writes; a write another replica committed just before `watch()` may still show up,
  since replicas share no clock that could tell "before" from "after".

Every database failure (server down, connection lost, timeout, unexpected SQL error) surfaces as
StoreUnavailable, which the API answers with 503. A write either commits with its notifications or not at
all, so a failure never leaves a half-applied change. Writes are not retried (after a lost COMMIT, whether
it happened is unknown); reads retry once, since right after a database restart the pool may hand out a
connection that has not noticed it is dead.

The password in the URL is used to connect and nowhere else: logs and error messages name the database as
`user@host:port/dbname`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final, TypeVar
from urllib.parse import urlsplit

import asyncpg
import structlog
from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.errors import (
    AlreadyExists,
    Conflict,
    ControlPlaneError,
    MeshNotFound,
    NotFound,
    StoreUnavailable,
)
from controlplane.resources.kind import Kind
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.resources.registry import KINDS
from controlplane.resources.spec_json import parse_spec
from controlplane.store import postgres_revocations, rules
from controlplane.store.base import Change, ChangeKind, Page, RevokedTokens
from controlplane.store.fanout import ChangeStream
from controlplane.store.postgres_listener import Backoff, ChangeListener, Notice, encode
from controlplane.store.postgres_schema import (
    CHANGES_CHANNEL,
    DATABASE_ERRORS,
    SCHEMA_VERSION,
    Connection,
    is_unavailable,
    migrate,
    unavailable,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
Job = Callable[[Connection], Awaitable[T]]
WriteJob = Callable[[Connection], Awaitable[tuple[T, list[Notice]]]]

_COLUMNS: Final = "mesh, name, spec, version, creation_time, modification_time, labels"
_KEY_MATCH: Final = "kind = $1 AND mesh = $2 AND name = $3"
_NEXT_REVISION: Final = "nextval('resource_revision')"
CONNECT_TIMEOUT_S: Final = 5.0
COMMAND_TIMEOUT_S: Final = 10.0
CLOSE_TIMEOUT_S: Final = 5.0


def describe(url: str) -> str:
    """`user@host:port/dbname` for logs and errors: never the password."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{user}{host}{port}{parts.path or '/'}"


class PostgresStore:
    """The Store protocol (controlplane/store/base.py) on PostgreSQL. Create with `await PostgresStore.open(url)`."""

    def __init__(self, pool: asyncpg.Pool, listener: ChangeListener, where: str) -> None:
        self._pool = pool
        self._listener = listener
        self._where = where
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = 10,
        backoff: Backoff | None = None,
        command_timeout: float = COMMAND_TIMEOUT_S,
    ) -> PostgresStore:
        """Connect, migrate the schema (safe with replicas starting at once) and start listening."""
        where = describe(url)
        settings = {"application_name": "controlplane"}
        try:
            # min_size=0: with a floor, asyncpg keeps reconnecting (and logging tracebacks) while the
            # database is down; connections are opened on demand and kept for reuse either way.
            pool = await asyncpg.create_pool(
                url, min_size=0, max_size=pool_size, timeout=CONNECT_TIMEOUT_S,
                command_timeout=command_timeout, server_settings=settings,
            )  # fmt: skip
        except ValueError as exc:  # malformed URL; asyncpg's message does not echo the password
            raise ValueError(f"invalid PostgreSQL store URL for {where}: {exc}") from None
        except Exception as exc:
            raise unavailable(exc, where) from exc
        try:
            async with pool.acquire() as conn:
                await migrate(conn)

            def connect() -> Awaitable[asyncpg.Connection]:
                listener_settings = {"application_name": "controlplane-listener"}
                return asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S, server_settings=listener_settings)

            listener = ChangeListener(connect, where, backoff or Backoff())
            await listener.start()
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, Exception) and not isinstance(exc, ControlPlaneError):
                raise unavailable(exc, where) from exc
            raise
        log.info("store_opened", backend="postgres", database=where, schema_version=SCHEMA_VERSION)
        return cls(pool, listener, where)

    @property
    def database(self) -> str:
        return self._where

    @property
    def listener(self) -> ChangeListener:
        return self._listener

    async def get(self, key: ResourceKey) -> Resource:
        async def job(conn: Connection) -> Resource:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM resources WHERE {_KEY_MATCH}", *_key_params(key)
            )
            if row is None:
                raise NotFound(str(key))
            return _to_resource(key.kind, row)

        return await self._read(job)

    async def list(
        self, kind: Kind, mesh: str | None = None, *, offset: int = 0, size: int | None = None
    ) -> Page:
        rules.check_page(offset, size)
        where, params = (
            ("kind = $1", [kind.value]) if mesh is None else ("kind = $1 AND mesh = $2", [kind.value, mesh])
        )
        n = len(params)

        async def job(conn: Connection) -> Page:
            # One snapshot for the count and the page.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                total = int(await conn.fetchval(f"SELECT COUNT(*) FROM resources WHERE {where}", *params))
                rows = await conn.fetch(
                    f"SELECT {_COLUMNS} FROM resources WHERE {where} ORDER BY mesh, name "
                    f"LIMIT ${n + 1} OFFSET ${n + 2}",
                    *params, size, offset,
                )  # fmt: skip
            return Page(items=tuple(_to_resource(kind, row) for row in rows), total=total)

        return await self._read(job)

    async def create(self, resource: Resource) -> Resource:
        rules.check_resource(resource)
        key, spec = resource.key, rules.copy_spec(resource.spec)
        text, labels = _to_json(spec), _labels_json(resource)

        async def job(conn: Connection) -> tuple[Resource, list[Notice]]:
            created, modified = rules.create_times(resource)
            # FOR SHARE: a concurrent delete of the mesh (which deletes the Mesh row first, then its
            # resources, in one transaction) waits for this insert to commit and then removes it too, or
            # this check waits for the delete and finds no mesh; no resource outlives its mesh.
            if key.kind.mesh_scoped and await conn.fetchval(
                "SELECT 1 FROM resources WHERE kind = $1 AND mesh = '' AND name = $2 FOR SHARE",
                MESH.value, key.mesh,
            ) is None:  # fmt: skip
                raise MeshNotFound(key.mesh)
            revision = await conn.fetchval(
                "INSERT INTO resources (kind, mesh, name, spec, version, creation_time, modification_time, "
                f"labels, revision) VALUES ($1, $2, $3, $4, 1, $5, $6, $7, {_NEXT_REVISION}) "
                "ON CONFLICT DO NOTHING RETURNING revision",
                *_key_params(key), text, created, modified, labels,
            )  # fmt: skip
            if revision is None:
                raise AlreadyExists(str(key))
            return Resource(key, spec, 1, created, modified, rules.copy_labels(resource.labels)), [
                Notice(Change(ChangeKind.CREATED, key, 1), int(revision))
            ]

        return await self._write(job)

    async def update(self, resource: Resource, expected_version: int) -> Resource:
        rules.check_resource(resource)
        key, spec = resource.key, rules.copy_spec(resource.spec)
        text, labels = _to_json(spec), _labels_json(resource)

        async def job(conn: Connection) -> tuple[Resource, list[Notice]]:
            row = await conn.fetchrow(
                f"UPDATE resources SET spec = $4, labels = $7, version = version + 1, revision = {_NEXT_REVISION}, "
                "modification_time = GREATEST($5::timestamptz, modification_time + interval '1 microsecond') "
                f"WHERE {_KEY_MATCH} AND version = $6 "
                "RETURNING version, creation_time, modification_time, revision",
                *_key_params(key), text, rules.utc_now(), expected_version, labels,
            )  # fmt: skip
            if row is None:
                stored = await conn.fetchval(
                    f"SELECT version FROM resources WHERE {_KEY_MATCH}", *_key_params(key)
                )
                if stored is None:
                    raise NotFound(str(key))
                raise Conflict(f"{key}: expected version {expected_version}, stored version is {stored}")
            version = int(row["version"])
            updated = Resource(key, spec, version, _utc(row["creation_time"]), _utc(row["modification_time"]),
                               rules.copy_labels(resource.labels))
            return updated, [Notice(Change(ChangeKind.UPDATED, key, version), int(row["revision"]))]

        return await self._write(job)

    async def delete(self, key: ResourceKey) -> None:
        async def job(conn: Connection) -> tuple[None, list[Notice]]:
            version = await conn.fetchval(
                f"DELETE FROM resources WHERE {_KEY_MATCH} RETURNING version", *_key_params(key)
            )
            if version is None:
                raise NotFound(str(key))
            removed: list[tuple[ResourceKey, int]] = []
            if key.kind is MESH:
                owned = await conn.fetch(
                    "DELETE FROM resources WHERE mesh = $1 AND kind <> $2 RETURNING kind, name, version",
                    key.name, MESH.value,
                )  # fmt: skip
                removed = sorted(
                    ((ResourceKey(KINDS.by_type(r["kind"]), key.name, r["name"]), int(r["version"])) for r in owned),
                    key=lambda item: rules.cascade_order(item[0]),
                )
            removed.append((key, int(version)))
            revisions = await conn.fetch(
                f"SELECT {_NEXT_REVISION} AS r FROM generate_series(1, $1)", len(removed)
            )
            notices = [
                Notice(Change(ChangeKind.DELETED, k, v), int(rev["r"]))
                for (k, v), rev in zip(removed, revisions, strict=True)
            ]
            return None, notices

        await self._write(job)

    async def revoke_token(self, token_id: str) -> bool:
        rules.check_token_id(token_id)
        return await self._run(lambda conn: postgres_revocations.insert_revocation(conn, token_id))

    async def is_token_revoked(self, token_id: str) -> bool:
        return await self._read(lambda conn: postgres_revocations.is_revoked(conn, token_id))

    async def revoked_tokens_since(self, cursor: int) -> RevokedTokens:
        return await self._read(lambda conn: postgres_revocations.select_since(conn, cursor))

    def watch(self) -> ChangeStream:
        return self._listener.watch()

    async def close(self) -> None:
        """Deliver this replica's pending notifications, end every watcher, close the pool."""
        if self._closed:
            return
        self._closed = True
        await self._listener.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._pool.close()
        except DATABASE_ERRORS:
            self._pool.terminate()
        log.info("store_closed", backend="postgres", database=self._where)

    async def _write(self, job: WriteJob[T]) -> T:
        """Run `job` in a transaction that also sends its notifications, so both commit or neither does."""

        async def work(conn: Connection) -> T:
            revisions: list[int] = []
            try:
                async with conn.transaction():
                    result, notices = await job(conn)
                    payloads = []
                    for notice in notices:
                        assert notice.revision is not None
                        revisions.append(notice.revision)
                        payloads.append((CHANGES_CHANNEL, encode(notice.change, notice.revision)))
                    await conn.executemany("SELECT pg_notify($1, $2)", payloads)
                    self._listener.expect(revisions)
            except BaseException:
                self._listener.forget(revisions)
                raise
            return result

        return await self._run(work)

    async def _read(self, job: Job[T]) -> T:
        try:
            return await self._run(job)
        except StoreUnavailable as exc:
            if exc.__cause__ is None or not is_unavailable(exc.__cause__) or self._closed:
                raise
            return await self._run(job)  # a stale pooled connection after a database restart

    async def _run(self, job: Job[T]) -> T:
        if self._closed:
            raise StoreUnavailable("store is closed")
        try:
            async with self._pool.acquire(timeout=CONNECT_TIMEOUT_S) as conn:
                return await job(conn)
        except ControlPlaneError:
            raise
        except DATABASE_ERRORS as exc:
            raise unavailable(exc, self._where) from exc


def _to_json(spec: Message) -> str:
    return str(json_format.MessageToJson(spec, sort_keys=True, indent=None))


def _labels_json(resource: Resource) -> str:
    return json.dumps(dict(resource.labels), sort_keys=True, separators=(",", ":"))


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _key_params(key: ResourceKey) -> tuple[str, str, str]:
    return (key.kind.value, key.mesh, key.name)


def _to_resource(kind: Kind, row: asyncpg.Record) -> Resource:
    spec = parse_spec(row["spec"], kind.spec_type)
    key = ResourceKey(kind, row["mesh"], row["name"])
    labels = json.loads(row["labels"])
    return Resource(
        key, spec, int(row["version"]), _utc(row["creation_time"]), _utc(row["modification_time"]),
        rules.copy_labels(labels),
    )
