"""Token revocations on PostgreSQL (the `TokenRevocations` part of the Store protocol, store/base.py).

Replicas poll `revoked_tokens_since(cursor)` to learn about revocations made elsewhere, so the cursor must
never skip an id. A `seq` from an identity column is taken when a row is inserted, not when it commits: a
revocation that took seq 5 may commit after one that took seq 6, and a reader that moved its cursor to 6 in
between would never see 5. So the cursor only moves past rows that are SETTLED: inserted longer ago than any
insert can stay uncommitted (every statement is bounded by the pool's command timeout, well under
`SETTLE_S`). Newer rows are returned but read again on the next poll, which callers absorb (they keep a
set). `revoked_at` and the comparison both use the database's clock, so replicas' clocks do not matter.

Rejected alternative: LISTEN/NOTIFY alone. A notification sent while a replica's listener is reconnecting is
lost, and a poll is needed to recover anyway; the poll alone is simpler and its latency is the poll interval.
"""

from __future__ import annotations

from typing import Final

from controlplane.store.base import RevokedTokens
from controlplane.store.postgres_schema import Connection

SETTLE_S: Final = 60.0


async def insert_revocation(conn: Connection, token_id: str) -> bool:
    """A single-statement transaction: the whole id is committed, or nothing (the error propagates)."""
    seq = await conn.fetchval(
        "INSERT INTO token_revocations (token_id) VALUES ($1) ON CONFLICT (token_id) DO NOTHING RETURNING seq",
        token_id,
    )
    return seq is not None


async def is_revoked(conn: Connection, token_id: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM token_revocations WHERE token_id = $1)", token_id))


async def select_since(conn: Connection, cursor: int) -> RevokedTokens:
    rows = await conn.fetch(
        "SELECT seq, token_id, revoked_at < clock_timestamp() - make_interval(secs => $2) AS settled "
        "FROM token_revocations WHERE seq > $1 ORDER BY seq",
        cursor, SETTLE_S,
    )  # fmt: skip
    next_cursor = cursor
    for row in rows:
        if not row["settled"]:
            break  # everything from here on is read again next time
        next_cursor = int(row["seq"])
    return RevokedTokens(tuple(str(row["token_id"]) for row in rows), next_cursor)
