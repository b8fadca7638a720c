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


class Store(Protocol):
    async def get(self, key: ResourceKey) -> Resource: ...

    async def list(
        self, kind: Kind, mesh: str | None = None, *, offset: int = 0, size: int | None = None
    ) -> Page: ...

    async def create(self, resource: Resource) -> Resource: ...

    async def update(self, resource: Resource, expected_version: int) -> Resource: ...

    async def delete(self, key: ResourceKey) -> None: ...

    def watch(self) -> ChangeIterator: ...

    async def close(self) -> None: ...
