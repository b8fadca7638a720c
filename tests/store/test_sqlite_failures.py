"""The sqlite store when it is not the only one, not where it should be, or damaged: one owner per file, no
directories or empty databases created by mistake, and every database failure a StoreUnavailable (which
the API answers with 503 and the reconciler retries), never a raw sqlite3 error."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlite_damage import checkpoint, damage, leaf_pages, repair

from controlplane.errors import StoreLocked, StoreUnavailable
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.store.sqlite import SqliteStore

HOLD = """
import asyncio, sys
from controlplane.store.sqlite import SqliteStore
async def main():
    store = await SqliteStore.open(sys.argv[1])
    print("open", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await store.close()
asyncio.run(main())
"""


def dataplane(name: str, port: int) -> Resource:
    spec = mesh_pb2.Dataplane()
    spec.networking.address = "10.0.0.1"
    inbound = spec.networking.inbound.add(port=port, service_port=8080)
    inbound.tags["kuma.io/service"] = f"svc-{name}"
    return Resource(ResourceKey(DATAPLANE, "default", name), spec)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cp.db"


@pytest.fixture
def holder(db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that has the store open (as a running control plane would)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:  # blocks until the child has opened (or died); log lines come first
        if line == "open\n":
            break
    else:
        raise AssertionError(process.communicate(timeout=10))
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=10)


async def test_a_second_process_is_refused_naming_the_holder(db: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(StoreLocked) as info:
        await SqliteStore.open(db)
    assert str(info.value) == f"sqlite database {db} is in use by another process (pid {holder.pid})"
    assert info.value.pid == holder.pid


async def test_the_lock_goes_with_its_holder_even_on_sigkill(db: Path, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    store = await SqliteStore.open(db)  # no stale lock: the kernel dropped it with the process
    await store.close()
    assert (db.parent / "cp.db.lock").exists()  # left in place on purpose (see store/lock.py)


async def test_a_second_store_in_the_same_process_is_refused_until_the_first_closes(db: Path) -> None:
    first = await SqliteStore.open(db)
    try:
        with pytest.raises(StoreLocked, match=r"in use by another process \(pid \d+\)"):
            await SqliteStore.open(db)
    finally:
        await first.close()
    second = await SqliteStore.open(db)
    await second.close()


async def test_a_missing_directory_is_an_error_and_nothing_is_created(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "x.db"
    with pytest.raises(StoreUnavailable) as info:
        await SqliteStore.open(target)
    assert str(info.value) == f"cannot open sqlite database {target}: directory {target.parent} does not exist"
    assert list(tmp_path.iterdir()) == []


async def test_without_create_a_missing_file_is_an_error_and_stays_missing(db: Path) -> None:
    with pytest.raises(StoreUnavailable) as info:
        await SqliteStore.open(db, create=False)
    assert str(info.value) == f"sqlite database {db} does not exist"
    assert list(db.parent.iterdir()) == []


async def test_a_file_that_is_not_a_database_is_one_clear_error(db: Path) -> None:
    db.write_bytes(b"this is not an sqlite database, just some text " * 100)
    with pytest.raises(StoreUnavailable) as info:
        await SqliteStore.open(db)
    assert str(info.value) == f"sqlite database {db} is unreadable: file is not a database"
    assert not StoreLocked.__instancecheck__(info.value)
    second = await asyncio.wait_for(_open_failure(db), 10)  # the failed open released its lock
    assert "unreadable" in second


async def _open_failure(db: Path) -> str:
    try:
        await SqliteStore.open(db)
    except StoreUnavailable as exc:
        return str(exc)
    raise AssertionError("opened a file that is not a database")


@pytest.fixture
async def filled(db: Path) -> AsyncIterator[Path]:
    """A database with a mesh and 300 Dataplanes (a dozen pages), all in the main file (WAL checkpointed)."""
    store = await SqliteStore.open(db)
    await store.create(Resource(ResourceKey(MESH, "", "default"), mesh_pb2.Mesh()))
    for i in range(300):
        await store.create(dataplane(f"dp-{i}", 1000 + i))
    await store.close()
    checkpoint(db)
    yield db


async def test_a_corrupt_page_is_refused_at_open(filled: Path) -> None:
    damage(filled, leaf_pages(filled, "resources")[2:3])
    with pytest.raises(StoreUnavailable) as info:
        await SqliteStore.open(filled)
    assert str(info.value).startswith(f"sqlite database {filled} is ")
    assert "malformed" in str(info.value) or "corrupt" in str(info.value)


async def test_a_page_damaged_while_open_is_store_unavailable_until_repaired(filled: Path) -> None:
    store = await SqliteStore.open(filled)
    try:
        originals = damage(filled, leaf_pages(filled, "resources"))
        key = ResourceKey(DATAPLANE, "default", "dp-7")
        failures = [
            await _failure(store.get(key)),
            await _failure(store.list(DATAPLANE)),
            await _failure(store.update(dataplane("dp-7", 2007), expected_version=1)),
            await _failure(store.delete(key)),
        ]
        assert failures == [f"sqlite database {filled}: database disk image is malformed"] * 4
        repair(filled, originals)
        assert (await store.get(key)).version == 1  # nothing was written while it was damaged
        assert (await store.list(DATAPLANE)).total == 300
    finally:
        await store.close()


async def test_a_row_that_no_longer_decodes_is_store_unavailable(filled: Path) -> None:
    store = await SqliteStore.open(filled)
    try:
        with closing(sqlite3.connect(filled)) as conn, conn:
            conn.execute("UPDATE resources SET spec = '{\"networking\": 7' WHERE name = 'dp-3'")
        message = await _failure(store.get(ResourceKey(DATAPLANE, "default", "dp-3")))
        assert message.startswith(f"sqlite database {filled}: stored Dataplane default/dp-3 cannot be decoded: ")
        assert await _failure(store.list(DATAPLANE)) == message
        assert (await store.get(ResourceKey(DATAPLANE, "default", "dp-4"))).name == "dp-4"
    finally:
        await store.close()


async def _failure(operation: object) -> str:
    """The StoreUnavailable message of an awaited store call (any other outcome fails the test)."""
    try:
        await operation  # type: ignore[misc]
    except StoreUnavailable as exc:
        return str(exc)
    raise AssertionError("the store call succeeded on a damaged database")
