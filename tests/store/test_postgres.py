"""PostgreSQL-only behaviour: migrations under concurrency, changes across replicas, database outages.

The Store contract itself is in test_contract.py (which runs against postgres too). Here several
PostgresStore instances on one database stand in for several control plane replicas, and tests that stop
the database use a cluster of their own (`own_postgres`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from postgres_fixture import create_database
from postgres_server import PostgresServer
from test_contract import dataplane, mesh, trace

from controlplane.errors import StoreUnavailable
from controlplane.resources.mesh import MESH
from controlplane.resources.model import ResourceKey
from controlplane.store.base import Change, ChangeKind
from controlplane.store.factory import open_store
from controlplane.store.fanout import ChangeStream
from controlplane.store.postgres import PostgresStore
from controlplane.store.postgres_schema import SCHEMA_VERSION

CREATED, UPDATED, DELETED = ChangeKind.CREATED, ChangeKind.UPDATED, ChangeKind.DELETED
PROPAGATION_DEADLINE_S = 1.0


async def next_changes(changes: ChangeStream, count: int, timeout: float = 5.0) -> list[Change]:
    async with asyncio.timeout(timeout):
        return [await anext(changes) for _ in range(count)]


async def schema_versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [int(r["version"]) for r in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        await conn.close()


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, as two control plane replicas would have."""
    a = await PostgresStore.open(postgres_url)
    b = await PostgresStore.open(postgres_url)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


# Migrations ------------------------------------------------------------------------------------------


async def test_reopening_does_not_migrate_again_and_keeps_data(postgres_url: str) -> None:
    first = await PostgresStore.open(postgres_url)
    created = await first.create(mesh("default"))
    await first.close()
    second = await PostgresStore.open(postgres_url)
    try:
        assert await second.get(created.key) == created
    finally:
        await second.close()
    assert await schema_versions(postgres_url) == list(range(1, SCHEMA_VERSION + 1))


async def test_replicas_starting_at_once_migrate_exactly_once(postgres_server: PostgresServer) -> None:
    url = await create_database(postgres_server)
    stores = await asyncio.gather(*(PostgresStore.open(url) for _ in range(4)))
    try:
        assert await schema_versions(url) == list(range(1, SCHEMA_VERSION + 1))
        created = await stores[0].create(mesh("default"))
        assert [await s.get(created.key) for s in stores] == [created] * 4
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_schema_newer_than_this_release_is_refused(postgres_url: str) -> None:
    await (await PostgresStore.open(postgres_url)).close()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", SCHEMA_VERSION + 1)
    finally:
        await conn.close()
    with pytest.raises(StoreUnavailable, match="newer than the .* upgrade the control plane"):
        await PostgresStore.open(postgres_url)


# Semantics specific to PostgreSQL ------------------------------------------------------------------


async def test_list_order_is_code_point_order_whatever_the_cluster_locale(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url)
    names = ["b", "B", "a-b", "a_b", "ab", "A", "é", "z"]
    try:
        for name in names:
            await store.create(mesh(name))
        listed = [r.name for r in (await store.list(MESH)).items]
    finally:
        await store.close()
    assert listed == sorted(names)


# Changes across replicas ---------------------------------------------------------------------------


async def test_change_made_on_one_replica_reaches_the_other_within_a_second(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    on_a, on_b = a.watch(), b.watch()
    started = time.perf_counter()
    created = await b.create(mesh("default"))
    [seen] = await next_changes(on_a, 1, timeout=PROPAGATION_DEADLINE_S)
    elapsed = time.perf_counter() - started
    assert seen == Change(CREATED, created.key, 1)
    assert await next_changes(on_b, 1) == [seen]  # the writer's own watchers see it the same way
    print(f"cross-replica propagation: {elapsed * 1000:.1f} ms")


async def test_every_replica_sees_every_replicas_writes_in_the_same_order(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    on_a, on_b = a.watch(), b.watch()
    await a.create(mesh("default"))
    tt = await b.create(trace("default", "tt"))
    await a.update(trace("default", "tt", backend="other"), expected_version=1)
    dp = await b.create(dataplane("default", "dp"))
    await a.delete(ResourceKey(MESH, "", "default"))  # cascade

    expected = [
        Change(CREATED, ResourceKey(MESH, "", "default"), 1),
        Change(CREATED, tt.key, 1),
        Change(UPDATED, tt.key, 2),
        Change(CREATED, dp.key, 1),
        Change(DELETED, dp.key, 1),
        Change(DELETED, tt.key, 2),
        Change(DELETED, ResourceKey(MESH, "", "default"), 1),
    ]
    assert await next_changes(on_a, len(expected)) == expected
    assert await next_changes(on_b, len(expected)) == expected


async def test_optimistic_concurrency_holds_across_replicas(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    await a.create(mesh("default"))
    results = await asyncio.gather(
        *(s.update(mesh("default", sampling=float(i)), expected_version=1) for i, s in enumerate([a, b] * 5)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict"] * 9 + ["Resource"]


async def test_factory_opens_both_url_schemes(postgres_url: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        store = await open_store(url)
        try:
            assert isinstance(store, PostgresStore)
            assert store.database.endswith(url.rsplit("/", 1)[1])
        finally:
            await store.close()


# Token revocations -----------------------------------------------------------------------------------


async def test_revocations_are_shared_by_replicas(replicas: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = replicas
    assert await a.revoke_token("a" * 32) is True
    assert await b.is_token_revoked("a" * 32)
    assert await b.revoke_token("a" * 32) is False  # already revoked through the other replica
    assert "a" * 32 in (await b.revoked_tokens_since(0)).token_ids


async def test_a_revocation_committing_after_a_later_one_is_not_skipped(
    replicas: tuple[PostgresStore, PostgresStore], postgres_url: str
) -> None:
    """The identity column hands out seq 1 to a transaction that commits after seq 2's: a poller that moved
    its cursor past 2 in between must still see 1 on its next poll."""
    a, b = replicas
    slow = await asyncpg.connect(postgres_url)
    try:
        transaction = slow.transaction()
        await transaction.start()
        await slow.execute("INSERT INTO token_revocations (token_id) VALUES ($1)", "1" * 32)  # takes seq 1
        await a.revoke_token("2" * 32)  # seq 2, committed first
        seen = await b.revoked_tokens_since(0)
        assert seen.token_ids == ("2" * 32,)
        await transaction.commit()
        later = await b.revoked_tokens_since(seen.cursor)
        assert "1" * 32 in later.token_ids
    finally:
        await slow.close()


async def test_settled_revocations_are_not_read_again(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url)
    try:
        await store.revoke_token("a" * 32)
        conn = await asyncpg.connect(postgres_url)
        try:  # as if it had been revoked long ago
            await conn.execute("UPDATE token_revocations SET revoked_at = revoked_at - interval '1 hour'")
        finally:
            await conn.close()
        first = await store.revoked_tokens_since(0)
        assert first.token_ids == ("a" * 32,) and first.cursor > 0
        assert (await store.revoked_tokens_since(first.cursor)).token_ids == ()
    finally:
        await store.close()
