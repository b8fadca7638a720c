"""A control plane whose SQLite file is damaged while it runs stays up: each request that touches the
damage is a 503 with Kuma's body, the reconciler keeps the last good snapshots, logs, retries with back-off,
and catches up once the file is repaired.

The real parts, in one process: SqliteStore, the HTTP API (`create_app` on a TCP port), the Reconciler and
the SnapshotCache. The damage is real bytes written over real pages (`sqlite_damage.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web
from builders import dataplane, inbound, mesh
from sqlite_damage import checkpoint, damage, leaf_pages, repair

from controlplane.api.app import create_app
from controlplane.observability import Metrics
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.model import ResourceKey
from controlplane.store.sqlite import SqliteStore
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.reconciler import Reconciler
from controlplane.xds.types import LISTENER_TYPE

TIMEOUT_S = 10.0
DPS = 200


@dataclass
class Plane:
    db: Path
    store: SqliteStore
    cache: SnapshotCache
    reconciler: Reconciler
    task: asyncio.Task[None]
    url: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        async with self.http.request(method, self.url + path, json=body) as resp:
            return resp.status, await resp.json()

    def listeners(self, name: str) -> list[str]:
        snapshot = self.cache.get_snapshot(f"default.{name}")
        assert snapshot is not None
        return sorted(snapshot.resources(LISTENER_TYPE))


async def until(predicate: Callable[[], bool], message: str) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[Plane]:
    db = tmp_path / "cp.db"
    store = await SqliteStore.open(db)
    await store.create(mesh())
    for i in range(DPS):
        await store.create(dataplane(f"dp-{i}", address="10.0.0.1", inbounds=[inbound(port=1000 + i, service=f"s{i}")]))
    await store.close()
    checkpoint(db)  # every page in the main file, where the damage goes
    store = await SqliteStore.open(db)
    cache = SnapshotCache()
    watch = cache.watch("default.dp-7")  # what dp-7's ADS stream holds: only connected proxies are generated
    # A debounce long enough that the reconciler reads a change only after the test has damaged the file.
    reconciler = Reconciler(store, cache, Metrics(), debounce_s=0.3, max_wait_s=1.0, debounce_first_s=0.3)
    task = asyncio.create_task(reconciler.run())
    runner = web.AppRunner(create_app(store, Metrics()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with asyncio.timeout(TIMEOUT_S):
            await reconciler.ready.wait()
        async with aiohttp.ClientSession() as http:
            yield Plane(db, store, cache, reconciler, task, f"http://127.0.0.1:{runner.addresses[0][1]}", http)
    finally:
        await runner.cleanup()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        watch.close()
        await store.close()


async def test_requests_on_a_damaged_page_are_503_with_kuma_bodies(plane: Plane) -> None:
    originals = damage(plane.db, leaf_pages(plane.db, "resources"))
    details = f"sqlite database {plane.db}: database disk image is malformed"
    body = {"type": "Dataplane", "mesh": "default", "name": "dp-7",
            "networking": {"address": "10.0.0.1", "inbound": [{"port": 2007, "tags": {"kuma.io/service": "s7"}}]}}
    assert [
        await plane.call("GET", "/meshes/default/dataplanes/dp-7"),
        await plane.call("GET", "/meshes/default/dataplanes"),
        await plane.call("PUT", "/meshes/default/dataplanes/dp-7", body),
        await plane.call("DELETE", "/meshes/default/dataplanes/dp-7"),
    ] == [(503, {"title": "Store unavailable", "details": details})] * 4
    assert not plane.task.done()
    repair(plane.db, originals)
    status, stored = await plane.call("GET", "/meshes/default/dataplanes/dp-7")
    assert status == 200 and stored["networking"]["inbound"][0]["port"] == 1007  # type: ignore[index]


async def test_the_reconciler_keeps_the_last_good_config_retries_and_catches_up(plane: Plane) -> None:
    before = plane.listeners("dp-7")
    assert "inbound:10.0.0.1:1007" in before
    current = await plane.store.get(ResourceKey(DATAPLANE, "default", "dp-7"))
    changed = dataplane("dp-7", address="10.0.0.1", inbounds=[inbound(port=2007, service="s7")])
    with structlog.testing.capture_logs() as logs:
        await plane.store.update(changed, expected_version=current.version)  # committed: a PUT would say 200
        # No await between the commit and the damage: the reconciler is still in its 0.3 s debounce, so
        # its read of dp-7 (through the primary-key index) is the first to meet the damaged pages.
        originals = damage(plane.db, leaf_pages(plane.db, "sqlite_autoindex_resources_1"))
        await until(lambda: sum(e["event"] == "store_unavailable" for e in logs) >= 2, "no retries logged")
        assert not plane.task.done()
        assert plane.listeners("dp-7") == before  # the last good snapshot is still served
        repair(plane.db, originals)
        await until(lambda: "inbound:10.0.0.1:2007" in plane.listeners("dp-7"), "never caught up")
    retries = [e for e in logs if e["event"] == "store_unavailable"]
    assert retries[0]["log_level"] == "warning"
    assert retries[0]["error"] == f"sqlite database {plane.db}: database disk image is malformed"
    assert [e["retry_in_s"] for e in retries[:2]] == [0.1, 0.2]  # back-off doubles
    assert "inbound:10.0.0.1:1007" not in plane.listeners("dp-7")
