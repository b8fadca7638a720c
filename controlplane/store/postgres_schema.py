"""Schema of the PostgreSQL store, its versioned migrations, and how database errors surface.

Migrations are append-only (never edit a released one, add the next) and run when a store opens. Several
replicas may start at the same moment, so the whole migration runs in one transaction holding
`pg_advisory_xact_lock(MIGRATION_LOCK)`: the second replica waits, then finds the schema current and does
nothing. Without the lock both would see version 0 and race on CREATE TABLE (even `IF NOT EXISTS` can fail
with a unique violation in pg_type when two sessions create the same table at once). PostgreSQL DDL is
transactional, so a migration and its `schema_version` row commit together or not at all.

Text columns use the "C" collation, so `ORDER BY mesh, name` is code-point order, as in the memory and
sqlite backends, whatever locale the cluster was initialised with.

Every write takes a fresh `revision` from one sequence. Change notifications carry it, which lets the
listener (postgres_listener.py) tell a resource deleted and re-created while it was disconnected (same
version 1, new revision) from one that did not change.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from controlplane.errors import StoreUnavailable

log = structlog.get_logger(__name__)

# A connection of its own (the listener) or one borrowed from the pool: both run the same queries.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
# What a database that is down, restarting or misbehaving raises.
DATABASE_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

# Arbitrary but fixed: the advisory lock key every replica's migration takes ("cp-schema" in ASCII).
MIGRATION_LOCK: Final = 0x63702D736368656D
CHANGES_CHANNEL: Final = "controlplane_changes"

# MIGRATIONS[n - 1] takes the schema from version n - 1 to version n.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        "CREATE SEQUENCE resource_revision AS bigint",
        """
        CREATE TABLE resources (
            kind text COLLATE "C" NOT NULL,
            mesh text COLLATE "C" NOT NULL,
            name text COLLATE "C" NOT NULL,
            spec jsonb NOT NULL,
            version bigint NOT NULL,
            creation_time timestamptz NOT NULL,
            modification_time timestamptz NOT NULL,
            revision bigint NOT NULL,
            PRIMARY KEY (kind, mesh, name)
        )
        """,
        # Mesh delete looks up everything in a mesh regardless of kind.
        "CREATE INDEX resources_by_mesh ON resources (mesh, kind, name)",
    ),
    (
        # Revoked token ids, shared by every replica (postgres_revocations.py explains the cursor).
        """
        CREATE TABLE token_revocations (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            token_id text COLLATE "C" NOT NULL UNIQUE,
            revoked_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """,
    ),
    (
        # The user's resource labels (Kuma 2.x `labels`); rows written before this migration have none.
        "ALTER TABLE resources ADD COLUMN labels jsonb NOT NULL DEFAULT '{}'::jsonb",
    ),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)

# SQLSTATE classes that mean "the database is not there or not usable right now", not "your request is
# wrong": 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdown, admin
# terminated the session), 58 system error.
_UNAVAILABLE_CLASSES: Final = ("08", "53", "57", "58")


async def migrate(conn: Connection) -> int:
    """Apply missing migrations under the advisory lock; return the schema version afterwards."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
        if current > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"PostgreSQL database has schema version {current}, newer than the {SCHEMA_VERSION} this "
                "control plane understands; upgrade the control plane"
            )
        for number in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number - 1]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
            log.info("postgres_migration_applied", version=number)
    return SCHEMA_VERSION


def is_unavailable(exc: BaseException) -> bool:
    """True for errors that mean the database cannot be reached or used at the moment."""
    if isinstance(exc, (OSError, TimeoutError, asyncpg.InterfaceError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state[:2] in _UNAVAILABLE_CLASSES
    return False


def unavailable(exc: BaseException, where: str) -> StoreUnavailable:
    """A StoreUnavailable for `exc` whose message names the server (`where`: host:port/db, no password)."""
    reason = str(exc) or type(exc).__name__
    if is_unavailable(exc):
        return StoreUnavailable(f"PostgreSQL database {where} is unavailable: {reason}")
    return StoreUnavailable(f"PostgreSQL database {where} failed: {reason}")
