"""The Store seam: what every backend (memory, sqlite, postgres) must provide.

Kept free of any backend detail so a backend can be swapped by URL (`--store memory | sqlite:PATH |
postgres://...`). One contract suite (tests/store/test_contract.py) runs against every implementation.

Semantics every backend guarantees:
- `create` stamps version=1 and creation_time=modification_time=now (UTC), unless the resource carries its
  own times (an import keeps them); raises AlreadyExists.
- `update` requires `expected_version` to equal the stored version (Conflict otherwise), bumps the version,
  keeps creation_time, sets modification_time; raises NotFound if missing.
- `delete` raises NotFound if missing. Deleting a Mesh also deletes every resource whose `mesh` is that
  mesh, atomically, and emits one DELETED change per removed resource.
- `list` orders by (mesh, name); `total` counts all matches, `items` is the requested page.
- `watch()` returns an independent async iterator per caller; it sees every change committed after the call,
  in commit order, until the iterator is closed or the store is closed.
- Deleting a Mesh emits the DELETED changes of its resources (sorted by kind, then name) before the Mesh's own.
- A backend whose change feed can break (PostgreSQL: the LISTEN connection drops while the database
  restarts) reports what it missed once the feed is back, as the net difference per resource (one
  CREATED, UPDATED or DELETED each, intermediate versions collapsed), so a consumer that re-reads the
  store on CREATED/UPDATED and forgets on DELETED, as the reconciler does, ends up exactly right.

Token revocations (`TokenRevocations`) are data too, kept beside the resources so every replica of one store
shares them and a lost file cannot un-revoke a token:
- `revoke_token` commits the id before it returns (a failed write raises StoreUnavailable, never a partial
  id) and says whether it was new (False: it was already revoked); a malformed id is a ValueError.
- `revoked_tokens_since(cursor)` returns the ids revoked after `cursor` (0 = from the beginning) and the
  cursor for the next call. It never misses an id committed by any process sharing the store; it may return
  an id again (callers keep a set), which is how PostgreSQL covers a revocation that commits after a later
  one (postgres.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from controlplane.resources.kind import Kind
from controlplane.resources.model import Resource, ResourceKey


class ChangeKind(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Change:
    """A committed change; `version` is the resource's version after it (the last version for DELETED)."""

    kind: ChangeKind
    key: ResourceKey
    version: int


@dataclass(frozen=True, slots=True)
class Page:
    items: tuple[Resource, ...]
    total: int


class ChangeIterator(Protocol):
    """What `watch()` returns: an async iterator of changes that the consumer closes when done."""

    def __aiter__(self) -> ChangeIterator: ...

    async def __anext__(self) -> Change: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RevokedTokens:
    """Ids revoked after a cursor, and the cursor to pass next time."""

    token_ids: tuple[str, ...]
    cursor: int


class TokenRevocations(Protocol):
    async def revoke_token(self, token_id: str) -> bool: ...

    async def is_token_revoked(self, token_id: str) -> bool: ...

    async def revoked_tokens_since(self, cursor: int) -> RevokedTokens: ...


class Store(TokenRevocations, Protocol):
    async def get(self, key: ResourceKey) -> Resource: ...

    async def list(
        self, kind: Kind, mesh: str | None = None, *, offset: int = 0, size: int | None = None
    ) -> Page: ...

    async def create(self, resource: Resource) -> Resource: ...

    async def update(self, resource: Resource, expected_version: int) -> Resource: ...

    async def delete(self, key: ResourceKey) -> None: ...

    def watch(self) -> ChangeIterator: ...

    async def close(self) -> None: ...
