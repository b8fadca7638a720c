"""The PostgreSQL store across a database outage: clear errors while it is down, nothing lost after.

Each test stops and restarts a cluster of its own (`own_postgres`), with pg_ctl's `fast` mode, which
disconnects every client the way a database restart or failover does. The API test runs the real
`create_app` over a PostgresStore to check the 503 a user sees.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from postgres_fixture import create_database
from postgres_server import PostgresServer
from test_contract import mesh, trace

from controlplane.api.app import create_app
from controlplane.errors import StoreUnavailable
from controlplane.observability import Metrics
from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.resources.mesh import MESH
from controlplane.resources.model import ResourceKey
from controlplane.store.base import Change, ChangeKind
from controlplane.store.fanout import ChangeStream
from controlplane.store.postgres import PostgresStore
from controlplane.store.postgres_listener import Backoff

CREATED, UPDATED, DELETED = ChangeKind.CREATED, ChangeKind.UPDATED, ChangeKind.DELETED
PASSWORD = "s3cret-never-logged"  # trust auth ignores it; it must still never show up in an error


async def next_changes(changes: ChangeStream, count: int, timeout: float = 10.0) -> list[Change]:
    async with asyncio.timeout(timeout):
        return [await anext(changes) for _ in range(count)]


@pytest.fixture
async def database(own_postgres: PostgresServer) -> str:
    url = await create_database(own_postgres)
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


async def test_writes_fail_with_store_unavailable_while_down_and_work_after(
    own_postgres: PostgresServer, database: str
) -> None:
    store = await PostgresStore.open(database, backoff=Backoff(first_s=0.05, max_s=0.2))
    try:
        created = await store.create(mesh("default"))
        own_postgres.stop()
        for attempt in (store.create(mesh("other")), store.get(created.key), store.list(MESH)):
            with pytest.raises(
                StoreUnavailable, match=r"^PostgreSQL database postgres@127\.0\.0\.1:\d+/\S+ is unavailable"
            ) as info:
                await attempt
            assert PASSWORD not in str(info.value)
        own_postgres.start()
        other = await store.create(mesh("other"))  # the pool reconnects by itself
        assert [r.key for r in (await store.list(MESH)).items] == [created.key, other.key]
    finally:
        await store.close()


async def test_listener_reconnects_and_resyncs_what_it_missed(
    own_postgres: PostgresServer, database: str
) -> None:
    # Replica A waits a full second before reconnecting its listener, so what replica B writes right after
    # the database is back reaches A only through the resync (its NOTIFYs went out while A was away).
    a = await PostgresStore.open(database, backoff=Backoff(first_s=1.0, max_s=1.0))
    b = await PostgresStore.open(database, backoff=Backoff(first_s=0.05, max_s=0.2))
    try:
        m1 = await a.create(mesh("m1"))
        await a.create(mesh("m2"))
        tt = await a.create(trace("m2", "tt"))
        changes = a.watch()

        own_postgres.stop()
        with pytest.raises(StoreUnavailable):
            await a.update(mesh("m1", sampling=5.0), expected_version=1)
        own_postgres.start()
        await b.update(mesh("m1", sampling=10.0), expected_version=1)
        await b.delete(ResourceKey(MESH, "", "m2"))
        m3 = await b.create(mesh("m3"))
        assert a.listener.reconnects == 0, "A's listener came back too early for this test to mean anything"

        assert await next_changes(changes, 4) == [
            Change(DELETED, tt.key, 1),
            Change(DELETED, ResourceKey(MESH, "", "m2"), 1),
            Change(UPDATED, m1.key, 2),
            Change(CREATED, m3.key, 1),
        ]
        assert a.listener.reconnects == 1
        # After recovery, notifications flow again: B's write reaches A, A's own write reaches A.
        await b.create(trace("m1", "after"))
        await a.update(mesh("m3", sampling=1.0), expected_version=1)
        assert await next_changes(changes, 2) == [
            Change(CREATED, ResourceKey(TRAFFIC_TRACE, "m1", "after"), 1),
            Change(UPDATED, m3.key, 2),
        ]
    finally:
        await a.close()
        await b.close()


async def test_listener_keeps_retrying_through_a_long_outage(
    own_postgres: PostgresServer, database: str
) -> None:
    store = await PostgresStore.open(database, backoff=Backoff(first_s=0.05, max_s=0.1))
    try:
        changes = store.watch()
        own_postgres.stop()
        await asyncio.sleep(0.5)  # several failed reconnection attempts (connection refused)
        assert store.listener.reconnects == 0
        own_postgres.start()
        created = await store.create(mesh("default"))
        assert await next_changes(changes, 1) == [Change(CREATED, created.key, 1)]
    finally:
        await store.close()


# HTTP API over a database that is down ---------------------------------------------------------------


@pytest.fixture
async def api_url(database: str) -> AsyncIterator[str]:
    store = await PostgresStore.open(database, backoff=Backoff(first_s=0.05, max_s=0.2))
    runner = web.AppRunner(create_app(store, Metrics()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
        await store.close()


MESH_BODY = {"type": "Mesh", "name": "default"}


async def test_api_answers_503_with_a_kuma_error_body_while_the_database_is_down(
    own_postgres: PostgresServer, api_url: str
) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        async with http.put(f"{api_url}/meshes/default", json=MESH_BODY) as response:
            assert response.status == 201
        own_postgres.stop()
        for method, path, body in [
            ("PUT", "/meshes/other", {"type": "Mesh", "name": "other"}),
            ("GET", "/meshes/default", None),
            ("DELETE", "/meshes/default", None),
        ]:
            async with http.request(method, f"{api_url}{path}", json=body) as response:
                assert response.status == 503, (method, path)
                payload = await response.json()
            assert payload["title"] == "Store unavailable"
            assert payload["details"].startswith("PostgreSQL database postgres@127.0.0.1:")
            assert " is unavailable: " in payload["details"]
            assert PASSWORD not in payload["details"]
        own_postgres.start()
        async with http.put(f"{api_url}/meshes/other", json={"type": "Mesh", "name": "other"}) as response:
            assert response.status == 201
        async with http.get(f"{api_url}/meshes") as response:
            assert [item["name"] for item in (await response.json())["items"]] == ["default", "other"]
