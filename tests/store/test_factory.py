"""Store URLs (`--store`, CONTROLPLANE_STORE) map to the right backend, and bad ones say what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from postgres_server import free_port

from controlplane.errors import StoreUnavailable
from controlplane.store.factory import DEFAULT_STORE_URL, STORE_ENV, StoreUrl, check_store_url, open_store
from controlplane.store.memory import MemoryStore
from controlplane.store.sqlite import SqliteStore


def test_constants() -> None:
    assert (DEFAULT_STORE_URL, STORE_ENV) == ("sqlite:", "CONTROLPLANE_STORE")


async def test_memory() -> None:
    store = await open_store("memory")
    try:
        assert isinstance(store, MemoryStore)
    finally:
        await store.close()


async def test_sqlite_with_path(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:{tmp_path / 'x.db'}")
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == str(tmp_path / "x.db")
    finally:
        await store.close()
    assert (tmp_path / "x.db").is_file()


async def test_empty_sqlite_path_is_controlplane_db_in_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store(DEFAULT_STORE_URL)
    await store.close()
    assert (tmp_path / "controlplane.db").is_file()


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
async def test_unreachable_postgres_is_store_unavailable_without_the_password(scheme: str) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(StoreUnavailable) as info:
        await open_store(f"{scheme}://cp:secret@127.0.0.1:{port}/cp")
    message = str(info.value)
    assert message.startswith(f"PostgreSQL database cp@127.0.0.1:{port}/cp is unavailable: ")
    assert "secret" not in message


@pytest.mark.parametrize("url", ["", "mem", "Memory", "mysql://x", "sqlite/x.db"])
async def test_unknown_url_lists_accepted_forms(url: str) -> None:
    with pytest.raises(ValueError) as info:
        await open_store(url)
    assert str(info.value) == (
        f"unsupported store URL {url!r}; accepted forms: "
        "'memory', 'sqlite:PATH' (empty PATH = ./controlplane.db), 'postgres://...'"
    )


def test_checking_a_url_reads_only(tmp_path: Path) -> None:
    """`run` checks the store URL before it writes anything: nothing may be created by the check."""
    assert check_store_url(f"sqlite:{tmp_path / 'x.db'}") == StoreUrl("sqlite", str(tmp_path / "x.db"))
    assert check_store_url("memory") == StoreUrl("memory")
    with pytest.raises(StoreUnavailable, match="does not exist"):
        check_store_url(f"sqlite:{tmp_path / 'x.db'}", create=False)
    with pytest.raises(StoreUnavailable, match=f"directory {tmp_path / 'no'} does not exist"):
        check_store_url(f"sqlite:{tmp_path / 'no' / 'x.db'}")
    with pytest.raises(ValueError, match="unsupported store URL 'mysql://x'"):
        check_store_url("mysql://x")
    assert list(tmp_path.iterdir()) == []


async def test_export_never_creates_a_missing_sqlite_file(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="does not exist"):
        await open_store(f"sqlite:{tmp_path / 'x.db'}", create=False)
    assert list(tmp_path.iterdir()) == []
