"""Damage an SQLite file the way a bad disk or a stray write does, and undo it: for the store-failure tests.

Responsible for: finding the pages of a table or index (`dbstat`), overwriting them with garbage bytes
(keeping the originals to put back), and making every open connection notice (`poke`). Must not: go
through the store; everything here is plain sqlite3 and file writes, like the damage it stands for.

Why `poke`: SQLite keeps pages it has read in a per-connection cache and, in WAL mode, trusts it as long
as no other connection has committed. A running control plane would therefore only see damage to pages it
has not cached yet (on a large database, most of them). One commit from another connection (a harmless
`user_version` bump) makes it drop the cache, so the damage is seen deterministically on the next read.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

GARBAGE = b"\x0d\xff\xff\xff\xff" + b"\xa5" * 59  # a leaf-page header with impossible cell counts


def checkpoint(db: Path) -> None:
    """Move everything from the WAL into the main file, so damage to the file is damage to the data."""
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def leaf_pages(db: Path, name: str) -> list[int]:
    """Leaf page numbers of table or index `name` (e.g. "resources", "sqlite_autoindex_resources_1")."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'", (name,))
        return [int(row[0]) for row in rows]


def page_size(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


def damage(db: Path, pages: list[int]) -> dict[int, bytes]:
    """Overwrite the start of each page with garbage; returns the original bytes for `repair`."""
    size = page_size(db)
    originals: dict[int, bytes] = {}
    with db.open("r+b") as file:
        for page in pages:
            file.seek((page - 1) * size)
            originals[page] = file.read(len(GARBAGE))
            file.seek((page - 1) * size)
            file.write(GARBAGE)
    poke(db)
    return originals


def repair(db: Path, originals: dict[int, bytes]) -> None:
    size = page_size(db)
    with db.open("r+b") as file:
        for page, data in originals.items():
            file.seek((page - 1) * size)
            file.write(data)
    poke(db)


def poke(db: Path) -> None:
    """Commit from another connection, so every open connection re-reads pages from the file."""
    with closing(sqlite3.connect(db)) as conn:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.commit()
