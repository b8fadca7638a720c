"""Revoked token ids (`jti`), kept in a text file next to the signing key, one id a line.

Why a file and not the store: the store holds Kuma's resource kinds only (Mesh, TrafficTrace, Dataplane),
each with its API routes, codec and schema migrations in three backends; a secret-ish list of ids does not
belong in that model. The file sits beside the signing key, so replicas sharing the key (same
`--signing-key-file`) share revocations too. Appends are single small `O_APPEND` writes, atomic between
processes on one host. A reader re-reads the file when its size or mtime changed, off the event loop.

The memory store's list (`RevocationList(None)`) lives in the process only.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Final

REVOCATION_FILE: Final = "controlplane-revoked-tokens.txt"
TOKEN_ID: Final = re.compile(r"^[0-9a-f]{32}\Z")


class RevocationList:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._ids: frozenset[str] = frozenset()
        self._stamp: tuple[int, int] | None = None

    async def revoke(self, token_id: str) -> None:
        if not TOKEN_ID.match(token_id):
            raise ValueError(f"not a token id: {token_id!r}")
        if self.path is None:
            self._ids = self._ids | {token_id}
            return
        await asyncio.to_thread(self._append, self.path, token_id)

    async def is_revoked(self, token_id: str) -> bool:
        if self.path is not None:
            await asyncio.to_thread(self._refresh, self.path)
        return token_id in self._ids

    def _append(self, path: Path, token_id: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{token_id}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _refresh(self, path: Path) -> None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._ids, self._stamp = frozenset(), None
            return
        stamp = (stat.st_size, stat.st_mtime_ns)
        if stamp != self._stamp:
            lines = path.read_text(encoding="ascii", errors="replace").split()
            self._ids, self._stamp = frozenset(line for line in lines if TOKEN_ID.match(line)), stamp
