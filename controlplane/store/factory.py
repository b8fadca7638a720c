"""Turn a store URL (`--store`, env CONTROLPLANE_STORE) into an open Store.

The only place that knows which backends exist, so the CLI stays backend-neutral and a backend is swapped
by URL alone (DESIGN.md, "Contracts"). The PostgreSQL backend is imported only when asked for, since its
driver (asyncpg) is an optional extra. Reading the environment is the CLI's job; this module only exports
the variable's name.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Final

from controlplane.store.base import Store
from controlplane.store.memory import MemoryStore
from controlplane.store.sqlite import SqliteStore
from controlplane.store.sqlite_schema import check_location

DEFAULT_STORE_URL: Final = "sqlite:"
STORE_ENV: Final = "CONTROLPLANE_STORE"
DEFAULT_SQLITE_PATH: Final = "controlplane.db"

_MEMORY: Final = "memory"
_SQLITE_PREFIX: Final = "sqlite:"
_POSTGRES_PREFIXES: Final = ("postgres://", "postgresql://")
ACCEPTED_FORMS: Final = "'memory', 'sqlite:PATH' (empty PATH = ./controlplane.db), 'postgres://...'"


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """A checked `--store` value: which backend, and where (the sqlite path, or the PostgreSQL URL)."""

    backend: str  # "memory" | "sqlite" | "postgres"
    location: str = ""


def parse_store_url(url: str) -> StoreUrl:
    """Check `url` without any I/O (the CLI does this before it writes anything); ValueError listing the
    accepted forms, or naming the missing driver, otherwise."""
    if url == _MEMORY:
        return StoreUrl("memory")
    if url.startswith(_SQLITE_PREFIX):
        return StoreUrl("sqlite", url.removeprefix(_SQLITE_PREFIX) or DEFAULT_SQLITE_PATH)
    if url.startswith(_POSTGRES_PREFIXES):
        if importlib.util.find_spec("asyncpg") is None:
            raise ValueError(
                "the PostgreSQL store needs asyncpg; install it with pip install 'controlplane[postgres]'"
            )
        return StoreUrl("postgres", url)
    raise ValueError(f"unsupported store URL {url!r}; accepted forms: {ACCEPTED_FORMS}")


def check_store_url(url: str, *, create: bool = True) -> StoreUrl:
    """`parse_store_url` plus, for SQLite, that the file can be where it is said to be (its directory
    exists; with `create=False` the file too). Reads only; StoreUnavailable names the path."""
    parsed = parse_store_url(url)
    if parsed.backend == "sqlite":
        check_location(parsed.location, create)
    return parsed


async def open_store(url: str, *, create: bool = True) -> Store:
    """Open the store `url` names. `create=False` (export) refuses an SQLite file that does not exist
    instead of creating an empty one; a missing directory is refused either way."""
    parsed = parse_store_url(url)
    if parsed.backend == "memory":
        return MemoryStore()
    if parsed.backend == "sqlite":
        return await SqliteStore.open(parsed.location, create=create)
    # Imported here: asyncpg is an optional dependency (extra `postgres`).
    from controlplane.store.postgres import PostgresStore

    return await PostgresStore.open(parsed.location)
