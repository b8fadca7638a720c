"""The revocation list over a real store (issue 11 §3, "revocations are data and must not be lost").

SQLite files are real, so "persists", "survives deleting the old file" and "a failed write is not a success"
are checked against the database itself, not a stand-in. Another RevocationList on the same store plays a
second replica (the poll path); PostgreSQL sharing is tested in tests/store/test_postgres.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from controlplane.auth.revocation import REVOCATION_FILE, RevocationList, import_revocation_file
from controlplane.errors import StoreUnavailable
from controlplane.store.base import RevokedTokens
from controlplane.store.memory import MemoryStore
from controlplane.store.sqlite import SqliteStore

A, B, C = "a" * 32, "b" * 32, "c" * 32
DEADLINE = 5.0


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(tmp_path / "cp.db")
    yield store
    await store.close()


async def test_revocations_persist_in_the_store(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "cp.db")
    assert await RevocationList(store).revoke(A) is True
    await store.close()
    reopened = await SqliteStore.open(tmp_path / "cp.db")
    try:
        revocations = RevocationList(reopened)
        assert (await revocations.is_revoked(A), await revocations.is_revoked(B)) == (True, False)
        assert await revocations.revoke(A) is False  # already revoked: said so, nothing added
        assert (await reopened.revoked_tokens_since(0)).token_ids == (A,)
    finally:
        await reopened.close()


async def test_a_failed_write_is_not_a_revocation(sqlite_store: SqliteStore) -> None:
    """A full database (SQLITE_FULL, forced with max_page_count) raises instead of answering success, and
    leaves nothing half-written: the next revocation after space is back is stored whole."""
    revocations = RevocationList(sqlite_store)
    pages = await sqlite_store._run(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
    await sqlite_store._run(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}"))
    filler = [f"{i:032x}" for i in range(2000)]
    with pytest.raises(StoreUnavailable, match="full"):
        for token_id in filler:  # one of these no longer fits
            await revocations.revoke(token_id)
    stored = (await sqlite_store.revoked_tokens_since(0)).token_ids
    failed = filler[len(stored)]
    assert not await sqlite_store.is_token_revoked(failed)
    assert await revocations.is_revoked(failed) is False  # the in-memory view did not claim it either
    await sqlite_store._run(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))
    assert await revocations.revoke(B) is True
    assert (await sqlite_store.revoked_tokens_since(0)).token_ids == (*stored, B)


async def test_watchers_hear_local_and_remote_revocations() -> None:
    store = MemoryStore()
    here, replica = RevocationList(store), RevocationList(store)
    await here.refresh()
    with here.watching(A) as revoked_a, here.watching(B) as revoked_b:
        assert not revoked_a.is_set()
        await here.revoke(A)
        assert revoked_a.is_set() and not revoked_b.is_set()
        await replica.revoke(B)  # another replica: seen here on the next refresh
        assert not revoked_b.is_set()
        assert await here.refresh() == 1
        assert revoked_b.is_set()
    assert here.watcher_count == 0
    with here.watching(A) as already:
        assert already.is_set()  # revoked before the watch began


async def test_the_poller_learns_remote_revocations_and_survives_outages() -> None:
    class Flaky(MemoryStore):
        down = False

        async def revoked_tokens_since(self, cursor: int) -> RevokedTokens:
            if self.down:
                raise StoreUnavailable("database is down")
            return await super().revoked_tokens_since(cursor)

    store = Flaky()
    here, replica = RevocationList(store), RevocationList(store)
    await here.refresh()
    store.down = True
    poller = asyncio.create_task(here.run(interval_s=0.01))
    try:
        with structlog.testing.capture_logs() as logs, here.watching(C) as revoked:
            await replica.revoke(C)
            await _until(lambda: any(e["event"] == "revocations_refresh_failed" for e in logs))
            assert not revoked.is_set() and not poller.done()
            store.down = False
            async with asyncio.timeout(DEADLINE):
                await revoked.wait()
        assert [e["event"] for e in logs].count("revocations_refresh_failed") == 1  # logged once per outage
        assert "revocations_refresh_recovered" in [e["event"] for e in logs]
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)


async def test_old_revocation_file_is_imported_once_and_then_not_needed(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    legacy = tmp_path / REVOCATION_FILE
    legacy.write_text(f"{A}\n{B}\n{C[:7]}")  # the last line torn by a full disk
    revocations = RevocationList(sqlite_store)
    with structlog.testing.capture_logs() as logs:
        assert await import_revocation_file(revocations, legacy) == 2
        assert await import_revocation_file(RevocationList(sqlite_store), legacy) == 0  # next start: nothing new
    imported = [e for e in logs if e["event"] == "legacy_revocations_imported"]
    assert [(e["imported"], e["skipped"], e["path"]) for e in imported] == [(2, 1, str(legacy))]
    legacy.unlink()  # deleting the old file no longer makes revoked tokens valid again
    fresh = RevocationList(sqlite_store)
    assert (await fresh.is_revoked(A), await fresh.is_revoked(B), await fresh.is_revoked(C)) == (True, True, False)
    assert await import_revocation_file(fresh, legacy) == 0  # a missing file is fine


async def test_an_unreadable_old_file_is_a_clear_error(sqlite_store: SqliteStore, tmp_path: Path) -> None:
    (tmp_path / REVOCATION_FILE).mkdir()
    with pytest.raises(ValueError, match=f"cannot read the old revocation file {tmp_path / REVOCATION_FILE}"):
        await import_revocation_file(RevocationList(sqlite_store), tmp_path / REVOCATION_FILE)


async def test_revocation_rejects_non_ids() -> None:
    store = MemoryStore()
    with pytest.raises(ValueError, match="not a token id"):
        await RevocationList(store).revoke("../../etc/passwd")
    with pytest.raises(ValueError, match="not a token id"):
        await RevocationList(store).revoke("0" * 32 + "\n")  # `$` would match before the newline
    assert (await store.revoked_tokens_since(0)).token_ids == ()


async def _until(predicate: object, timeout: float = DEADLINE) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def test_sqlite_full_error_is_what_the_test_above_forces() -> None:
    """Guard for test_a_failed_write_is_not_a_revocation: max_page_count really yields SQLITE_FULL."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 100)
