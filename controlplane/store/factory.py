"""Turn a store URL (`--store`, env CONTROLPLANE_STORE) into an open Store.

The only place that knows which backends exist, so the CLI stays backend-neutral and a backend is swapped
by URL alone (DESIGN.md, "Contracts"). The PostgreSQL backend is imported only when asked for, since its
driver (asyncpg) is an optional extra. Reading the environment is the CLI's job; this module only exports
the variable's name.
"""

from __future__ import annotations

from typing import Final

from controlplane.store.base import Store
from controlplane.store.memory import MemoryStore
from controlplane.store.sqlite import SqliteStore

DEFAULT_STORE_URL: Final = "sqlite:"
STORE_ENV: Final = "CONTROLPLANE_STORE"
DEFAULT_SQLITE_PATH: Final = "controlplane.db"

_MEMORY: Final = "memory"
_SQLITE_PREFIX: Final = "sqlite:"
_POSTGRES_PREFIXES: Final = ("postgres://", "postgresql://")
ACCEPTED_FORMS: Final = "'memory', 'sqlite:PATH' (empty PATH = ./controlplane.db), 'postgres://...'"


async def open_store(url: str) -> Store:
    """Open the store `url` names; ValueError (listing the accepted forms) for anything else."""
    if url == _MEMORY:
        return MemoryStore()
    if url.startswith(_SQLITE_PREFIX):
        return await SqliteStore.open(url.removeprefix(_SQLITE_PREFIX) or DEFAULT_SQLITE_PATH)
    if url.startswith(_POSTGRES_PREFIXES):
        try:
            # Imported here: asyncpg is an optional dependency (extra `postgres`).
            from controlplane.store.postgres import PostgresStore
        except ImportError as exc:
            raise ValueError(
                f"the PostgreSQL store needs asyncpg ({exc}); install it with pip install 'controlplane[postgres]'"
            ) from None
        return await PostgresStore.open(url)
    raise ValueError(f"unsupported store URL {url!r}; accepted forms: {ACCEPTED_FORMS}")
