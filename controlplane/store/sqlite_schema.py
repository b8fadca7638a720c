"""Schema of the sqlite store and its versioned migrations.

The database records which migrations it has had in `schema_version` (one row per applied migration), so a
newer control plane can upgrade an older file in place, and an older one refuses a file it does not
understand instead of corrupting it. Migrations are append-only: never edit a released one, add the next.
SQLite DDL is transactional, so a migration and its `schema_version` row commit together or not at all.

Runs on the store's worker thread only (see sqlite.py); nothing here touches the event loop.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Final

import structlog

from controlplane.errors import StoreUnavailable
from controlplane.store import rules

log = structlog.get_logger(__name__)

# MIGRATIONS[n - 1] takes the schema from version n - 1 to version n.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """
        CREATE TABLE resources (
            kind TEXT NOT NULL,
            mesh TEXT NOT NULL,
            name TEXT NOT NULL,
            spec TEXT NOT NULL,
            version INTEGER NOT NULL,
            creation_time TEXT NOT NULL,
            modification_time TEXT NOT NULL,
            PRIMARY KEY (kind, mesh, name)
        )
        """,
        # Mesh delete looks up everything in a mesh regardless of kind.
        "CREATE INDEX resources_by_mesh ON resources (mesh, kind, name)",
    ),
    (
        # Revoked token ids (store/base.py, TokenRevocations). `seq` is the poll cursor: AUTOINCREMENT never
        # reuses a number, and writers are serialised (BEGIN IMMEDIATE), so seq order is commit order.
        """
        CREATE TABLE token_revocations (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            token_id TEXT NOT NULL UNIQUE,
            revoked_at TEXT NOT NULL
        )
        """,
    ),
    (
        # The user's resource labels (Kuma 2.x `labels`) as a JSON object, keys sorted; rows written before
        # this migration have none.
        "ALTER TABLE resources ADD COLUMN labels TEXT NOT NULL DEFAULT '{}'",
    ),
    (
        # The spec once more as protobuf binary, prefixed with the CRC-32 of the `spec` text it was written
        # with (sqlite.py `_spec_blob`): decoding it is ~20x cheaper than the JSON, which is what a load of
        # 100k Dataplanes spends most of its time on. `spec` stays the authority: a blob whose CRC does not
        # match the text (a hand edit of `spec`) is ignored, and rows written before this migration have none.
        "ALTER TABLE resources ADD COLUMN spec_pb BLOB",
    ),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)


@contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool = True) -> Iterator[None]:
    """BEGIN IMMEDIATE for writes (takes the write lock up front, so a read-then-write cannot be overtaken
    by another connection), BEGIN DEFERRED for reads (one consistent snapshot for count + page)."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
    try:
        yield
    except BaseException:
        # SQLITE_FULL and some I/O errors roll the transaction back themselves; a second ROLLBACK would
        # replace the real error ("database or disk is full") with "no transaction is active".
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def connect(path: str, *, create: bool = True) -> sqlite3.Connection:
    """Open the database, check it is intact, switch it to WAL and bring its schema up to date.

    A missing directory is an error, never created: a typo in `--store sqlite:PATH` must not leave an
    empty store somewhere. With `create=False` (export) the file itself must exist too.
    """
    check_location(path, create)
    # isolation_level=None: no implicit transactions; `transaction()` says where each one begins and ends.
    # mode=rw never creates the file (race-free, unlike checking first); rwc is sqlite3's default.
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode={'rwc' if create else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        # Wait for another writer (another store instance or process) instead of failing at once.
        conn.execute("PRAGMA busy_timeout = 5000")
        check_intact(conn, path)
        # WAL: readers do not block the writer and vice versa; the setting persists in the file.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreUnavailable(f"sqlite database {path}: cannot enable WAL mode (journal_mode={mode})")
        # NORMAL is durable across application crashes in WAL mode; only power loss may drop the last commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def check_location(path: str, create: bool) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise StoreUnavailable(f"cannot open sqlite database {path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise StoreUnavailable(f"cannot open sqlite database {path}: it is a directory")
    if not create and not os.path.exists(path):
        raise StoreUnavailable(f"sqlite database {path} does not exist")


def check_intact(conn: sqlite3.Connection, path: str) -> None:
    """`PRAGMA quick_check` (every page's structure, not index contents; linear in the file size): a
    damaged file is refused at start with one clear line instead of failing later, mid-request."""
    try:
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        raise StoreUnavailable(f"sqlite database {path} is unreadable: {exc}") from None
    if problems != ["ok"]:
        raise StoreUnavailable(
            f"sqlite database {path} is corrupt (quick_check: {problems[0]}); restore it from an export"
        )


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Apply missing migrations; return the schema version the database is at afterwards."""
    with transaction(conn):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])
        if current > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"sqlite database {path} has schema version {current}, newer than the {SCHEMA_VERSION} "
                "this control plane understands; upgrade the control plane"
            )
        for number in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (number, format_time(rules.utc_now())))
            log.info("sqlite_migration_applied", path=path, version=number)
    return SCHEMA_VERSION


def format_time(value: datetime) -> str:
    """ISO-8601 in UTC with microseconds, e.g. 2024-05-01T12:00:00.000000+00:00 (sorts as text)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
