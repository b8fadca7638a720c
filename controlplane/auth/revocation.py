"""Revoked token ids (`jti`): kept in the store, mirrored in memory, and announced to open streams.

Why the store: revocations are data that must not be lost. The old text file beside the signing key could
be deleted (making revoked tokens valid again) and, on a full disk, took a truncated id while the API
answered 200. The store writes an id atomically or raises (the API answers 503), and every replica of one
PostgreSQL store shares the table. `RevocationList(None)` keeps them in this process only (tests, and the
same lifetime as the memory store's resources).

Checks read an in-memory set, so verifying a token on every ADS stream and API write does no I/O and keeps
working while a database is briefly down. The set learns about revocations
- made through this process at once (`revoke`), and
- made through another replica within one poll interval (`run`, `refresh`: `revoked_tokens_since`).
Every new id is announced to its watchers (`watching`), which is how an open ADS stream that authenticated
with a token is closed when that token is revoked (xds/authn.py).

Must not: verify tokens (tokens.py) or decide what a revoked token means for a stream (xds/authn.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import structlog

from controlplane.errors import StoreUnavailable
from controlplane.store.base import TokenRevocations
from controlplane.store.memory import MemoryStore
from controlplane.store.rules import TOKEN_ID

log = structlog.get_logger(__name__)

__all__ = ["DEFAULT_POLL_INTERVAL_S", "REVOCATION_FILE", "TOKEN_ID", "RevocationList", "import_revocation_file"]

REVOCATION_FILE: Final = "controlplane-revoked-tokens.txt"
"""Where revocations were kept before they moved into the store (imported at start, see below)."""
DEFAULT_POLL_INTERVAL_S: Final = 2.0


class RevocationList:
    """The revoked ids of one store, with watchers per token id. Loop thread only."""

    def __init__(self, store: TokenRevocations | None = None) -> None:
        self._store: TokenRevocations = store if store is not None else MemoryStore()
        self._ids: set[str] = set()
        self._cursor = 0
        self._loaded = False
        self._watchers: dict[str, set[asyncio.Event]] = {}

    async def revoke(self, token_id: str) -> bool:
        """Store the revocation (raises StoreUnavailable if it could not be written, ValueError for a non-id);
        True if it is new, False if the token was already revoked."""
        new = await self._store.revoke_token(token_id)
        self._learn([token_id])
        return new

    async def is_revoked(self, token_id: str) -> bool:
        if not self._loaded:
            await self.refresh()
        return token_id in self._ids

    async def refresh(self) -> int:
        """Read what was revoked since the last call (by any process sharing the store); return how many ids
        were new here. StoreUnavailable propagates; nothing learnt so far is forgotten."""
        page = await self._store.revoked_tokens_since(self._cursor)
        learnt = self._learn(page.token_ids)
        self._cursor, self._loaded = page.cursor, True
        return learnt

    async def run(self, interval_s: float = DEFAULT_POLL_INTERVAL_S) -> None:
        """Poll for revocations made through other replicas until cancelled; a store outage is logged once
        and polling goes on (the last known set stays in force)."""
        failing = False
        while True:
            await asyncio.sleep(interval_s)
            try:
                learnt = await self.refresh()
            except StoreUnavailable as exc:
                if not failing:
                    log.warning("revocations_refresh_failed", error=str(exc))
                failing = True
                continue
            except Exception:  # task boundary: a bad poll must not stop the control plane (STYLE §4.5)
                log.exception("revocations_refresh_crashed")
                failing = True
                continue
            if failing:
                log.info("revocations_refresh_recovered")
            failing = False
            if learnt:
                log.info("revocations_learnt", count=learnt)

    @contextmanager
    def watching(self, token_id: str) -> Iterator[asyncio.Event]:
        """An event set once `token_id` is (or already was) revoked, for the duration of the block."""
        event = asyncio.Event()
        watchers = self._watchers.setdefault(token_id, set())
        watchers.add(event)
        if token_id in self._ids:
            event.set()
        try:
            yield event
        finally:
            watchers.discard(event)
            if not watchers:
                self._watchers.pop(token_id, None)

    @property
    def watcher_count(self) -> int:
        return sum(len(events) for events in self._watchers.values())

    def _learn(self, token_ids: Iterable[str]) -> int:
        new = [token_id for token_id in dict.fromkeys(token_ids) if token_id not in self._ids]
        self._ids.update(new)
        for token_id in new:
            for event in self._watchers.get(token_id, ()):
                event.set()
        return len(new)


async def import_revocation_file(revocations: RevocationList, path: Path) -> int:
    """Upgrade from the file era: store every valid id of `path` that the store does not have yet.

    Runs at every start and is idempotent, so nothing is lost whichever replica or restart gets there first;
    the log line appears only when something was imported. Lines that are not whole ids (a write torn by a
    full disk) are skipped and counted. The file is left alone: it is no longer read after this.
    """
    try:
        text = await asyncio.to_thread(path.read_text, encoding="ascii", errors="replace")
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise ValueError(f"cannot read the old revocation file {path}: {exc.strerror or exc}") from None
    lines = text.split()
    valid = [line for line in lines if TOKEN_ID.match(line)]
    imported = 0
    for token_id in valid:
        imported += await revocations.revoke(token_id)
    if imported:
        log.info("legacy_revocations_imported", path=str(path), imported=imported, skipped=len(lines) - len(valid),
                 hint="revocations now live in the store; this file is no longer read and can be removed")
    return imported
