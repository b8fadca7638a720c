"""What the sqlite store promises beyond the shared contract: persistence, WAL, schema versioning, its
on-disk format, and that sqlite never runs on the event loop thread."""

from __future__ import annotations

import sqlite3
import threading
import zlib
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from builders import dataplane, inbound
from google.protobuf import wrappers_pb2

from controlplane.errors import StoreUnavailable
from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.store import sqlite_schema
from controlplane.store.base import Page
from controlplane.store.sqlite import SqliteStore


def mesh(name: str, sampling: float = 0.0) -> Resource:
    backend = mesh_pb2.TracingBackend(
        name="zipkin-1", type="zipkin", sampling=wrappers_pb2.DoubleValue(value=sampling)
    )
    return Resource(
        ResourceKey(MESH, "", name), mesh_pb2.Mesh(tracing=mesh_pb2.Tracing(backends=[backend]))
    )


def trace(mesh_name: str, name: str) -> Resource:
    spec = mesh_pb2.TrafficTrace(conf=mesh_pb2.TrafficTrace.Conf(backend="zipkin-1"))
    return Resource(ResourceKey(TRAFFIC_TRACE, mesh_name, name), spec)


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the file with a separate, plain sqlite3 connection: what is really on disk."""
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.execute(sql).fetchall())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cp.db"


async def test_data_survives_close_and_reopen(db: Path) -> None:
    store = await SqliteStore.open(db)
    created_mesh = await store.create(mesh("default"))
    await store.create(trace("default", "tt"))
    updated_trace = await store.update(trace("default", "tt"), expected_version=1)
    await store.close()

    reopened = await SqliteStore.open(db)
    try:
        assert await reopened.get(created_mesh.key) == created_mesh
        assert await reopened.list(TRAFFIC_TRACE) == Page((updated_trace,), 1)
        again = await reopened.update(mesh("default", sampling=5.0), expected_version=1)
        assert (again.version, again.creation_time) == (2, created_mesh.creation_time)
    finally:
        await reopened.close()


async def test_wal_mode_is_on(db: Path) -> None:
    store = await SqliteStore.open(db)
    await store.close()
    assert query(db, "PRAGMA journal_mode") == [("wal",)]


async def test_schema_is_versioned_and_migrated_once(db: Path) -> None:
    for _ in range(2):
        store = await SqliteStore.open(db)
        await store.close()
    assert [row[0] for row in query(db, "SELECT version FROM schema_version")] == [1, 2, 3, 4]
    revocations = [(row[1], row[2], row[3], row[5]) for row in query(db, "PRAGMA table_info(token_revocations)")]
    assert revocations == [("seq", "INTEGER", 0, 1), ("token_id", "TEXT", 1, 0), ("revoked_at", "TEXT", 1, 0)]
    columns = [(row[1], row[2], row[3], row[5]) for row in query(db, "PRAGMA table_info(resources)")]
    assert columns == [
        ("kind", "TEXT", 1, 1),
        ("mesh", "TEXT", 1, 2),
        ("name", "TEXT", 1, 3),
        ("spec", "TEXT", 1, 0),
        ("version", "INTEGER", 1, 0),
        ("creation_time", "TEXT", 1, 0),
        ("modification_time", "TEXT", 1, 0),
        ("labels", "TEXT", 1, 0),
        ("spec_pb", "BLOB", 0, 0),
    ]


async def test_a_database_of_the_previous_release_gains_the_revocation_table(db: Path) -> None:
    """Schema 1 (before revocations moved into the store): migrated in place, resources kept."""
    then = "'2025-01-01T00:00:00.000000+00:00'"
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for statement in ("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
                          *sqlite_schema.MIGRATIONS[0], f"INSERT INTO schema_version VALUES (1, {then})",
                          f"INSERT INTO resources VALUES ('Mesh', '', 'default', '{{}}', 3, {then}, {then})"):
            conn.execute(statement)
    store = await SqliteStore.open(db)
    try:
        assert (await store.get(ResourceKey(MESH, "", "default"))).version == 3
        assert await store.revoke_token("a" * 32) is True
    finally:
        await store.close()
    assert [row[0] for row in query(db, "SELECT version FROM schema_version")] == [1, 2, 3, 4]


async def test_database_from_a_newer_control_plane_is_refused(db: Path) -> None:
    store = await SqliteStore.open(db)
    await store.close()
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00.000000+00:00')")
    with pytest.raises(StoreUnavailable, match="schema version 99"):
        await SqliteStore.open(db)


async def test_rows_hold_sorted_json_and_iso_utc_microsecond_times(db: Path) -> None:
    store = await SqliteStore.open(db)
    created = await store.create(mesh("default", sampling=0.0))
    await store.close()
    assert created.creation_time is not None
    stamp = created.creation_time.isoformat(timespec="microseconds")
    assert stamp.endswith("+00:00")
    assert query(
        db, "SELECT kind, mesh, name, spec, version, creation_time, modification_time FROM resources"
    ) == [
        (
            "Mesh",
            "",
            "default",
            '{"tracing": {"backends": [{"name": "zipkin-1", "sampling": 0.0, "type": "zipkin"}]}}',
            1,
            stamp,
            stamp,
        )
    ]


async def test_unopenable_path_raises_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="cannot open sqlite database"):
        await SqliteStore.open(tmp_path / "no-such-dir" / "cp.db")


@pytest.fixture
def sql_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, str]]]:
    """Record (thread id, statement) for every SQL statement any new sqlite3 connection executes."""
    seen: list[tuple[int, str]] = []
    real_connect = sqlite3.connect

    def connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)  # type: ignore[call-overload]
        conn.set_trace_callback(lambda sql: seen.append((threading.get_ident(), sql)))
        return conn  # type: ignore[no-any-return]

    monkeypatch.setattr(sqlite3, "connect", connect)
    yield seen


async def test_sqlite_never_runs_on_the_event_loop_thread(
    db: Path, sql_threads: list[tuple[int, str]]
) -> None:
    store = await SqliteStore.open(db)
    await store.create(mesh("default"))
    await store.get(ResourceKey(MESH, "", "default"))
    await store.list(MESH)
    await store.update(mesh("default", sampling=1.0), expected_version=1)
    await store.delete(ResourceKey(MESH, "", "default"))
    await store.close()

    statements = [sql for _, sql in sql_threads]
    for expected in ("PRAGMA journal_mode = WAL", "INSERT INTO resources", "UPDATE resources", "DELETE FROM"):
        assert any(sql.strip().startswith(expected) for sql in statements), expected
    threads = {thread for thread, _ in sql_threads}
    assert threading.get_ident() not in threads
    assert len(threads) == 1  # one dedicated worker owns the connection


async def test_specs_are_read_from_the_binary_copy_while_it_matches_the_text(db: Path) -> None:
    """`spec_pb` (CRC-32 of the text + binary spec) is what a load decodes; `spec` stays the authority: once
    the text is edited behind the store's back, the stale binary copy is ignored."""
    store = await SqliteStore.open(db)
    await store.create(mesh("default", sampling=0.0))
    created = await store.create(dataplane("web-1", inbounds=[inbound(port=8080, service="web")]))
    await store.close()
    ((text, blob),) = query(db, "SELECT spec, spec_pb FROM resources WHERE name = 'web-1'")
    assert blob[:4] == zlib.crc32(text.encode()).to_bytes(4, "big")
    assert type(created.spec).FromString(blob[4:]) == created.spec
    edited = text.replace("8080", "9090")
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE resources SET spec = ? WHERE name = 'web-1'", (edited,))
    store = await SqliteStore.open(db)
    try:
        again = await store.get(created.key)
        assert [i.port for i in again.spec.networking.inbound] == [9090]  # the text, not the stale blob
    finally:
        await store.close()


async def test_rows_written_before_the_binary_copy_existed_still_load(db: Path) -> None:
    store = await SqliteStore.open(db)
    await store.create(mesh("default", sampling=0.0))
    created = await store.create(dataplane("web-1", inbounds=[inbound(port=8080, service="web")]))
    await store.close()
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE resources SET spec_pb = NULL")
    store = await SqliteStore.open(db)
    try:
        assert (await store.get(created.key)).spec == created.spec
        assert [r.name for r in (await store.list(created.kind)).items] == ["web-1"]
    finally:
        await store.close()
