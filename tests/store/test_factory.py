"""Store URLs (`--store`, CONTROLPLANE_STORE) map to the right backend, and bad ones say what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.store.factory import DEFAULT_STORE_URL, STORE_ENV, open_store
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


@pytest.mark.parametrize("url", ["postgres://cp@localhost/cp", "postgresql://cp:secret@db:5432/cp"])
async def test_postgres_is_not_available_yet(url: str) -> None:
    with pytest.raises(ValueError, match="^PostgreSQL store is not available yet: install ") as info:
        await open_store(url)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("url", ["", "mem", "Memory", "mysql://x", "sqlite/x.db"])
async def test_unknown_url_lists_accepted_forms(url: str) -> None:
    with pytest.raises(ValueError) as info:
        await open_store(url)
    assert str(info.value) == (
        f"unsupported store URL {url!r}; accepted forms: "
        "'memory', 'sqlite:PATH' (empty PATH = ./controlplane.db), 'postgres://...'"
    )
