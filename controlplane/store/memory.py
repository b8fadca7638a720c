"""In-process store: a dict per kind, changes fanned out to watchers. Used by tests and `--store memory`.

Nothing survives a restart. Every operation runs on the event loop thread with no `await` between its
read and its write, so each one is atomic without a lock, and `update`'s version check cannot race. Specs
are copied on the way in and out: the store never shares a message object with a caller.
"""

from __future__ import annotations

from controlplane.errors import AlreadyExists, Conflict, MeshNotFound, NotFound, StoreUnavailable
from controlplane.resources.kind import Kind
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.resources.registry import KINDS
from controlplane.store import rules
from controlplane.store.base import Change, ChangeKind, Page, RevokedTokens
from controlplane.store.fanout import ChangeFanout, ChangeStream


class MemoryStore:
    """The Store protocol (controlplane/store/base.py) over plain dicts."""

    def __init__(self) -> None:
        # (mesh, name) -> resource, per kind: (mesh, name) is also the list order.
        self._by_kind: dict[Kind, dict[tuple[str, str], Resource]] = {kind: {} for kind in KINDS}
        self._fanout = ChangeFanout()
        self._closed = False
        self._revoked: list[str] = []  # in revocation order: the cursor is an index into it
        self._revoked_set: set[str] = set()

    async def get(self, key: ResourceKey) -> Resource:
        self._check_open()
        return _copy(self._find(key))

    async def list(
        self, kind: Kind, mesh: str | None = None, *, offset: int = 0, size: int | None = None
    ) -> Page:
        self._check_open()
        rules.check_page(offset, size)
        table = self._by_kind[kind]
        matches = [table[k] for k in sorted(table) if mesh is None or k[0] == mesh]
        end = None if size is None else offset + size
        return Page(items=tuple(_copy(r) for r in matches[offset:end]), total=len(matches))

    async def create(self, resource: Resource) -> Resource:
        self._check_open()
        rules.check_resource(resource)
        table = self._by_kind[resource.kind]
        slot = (resource.mesh, resource.name)
        if slot in table:
            raise AlreadyExists(str(resource.key))
        if resource.kind.mesh_scoped and ("", resource.mesh) not in self._by_kind[MESH]:
            raise MeshNotFound(resource.mesh)
        created, modified = rules.create_times(resource)
        stored = Resource(resource.key, rules.copy_spec(resource.spec), 1, created, modified,
                          rules.copy_labels(resource.labels))
        table[slot] = stored
        self._fanout.publish([Change(ChangeKind.CREATED, stored.key, stored.version)])
        return _copy(stored)

    async def update(self, resource: Resource, expected_version: int) -> Resource:
        self._check_open()
        rules.check_resource(resource)
        current = self._find(resource.key)
        if current.version != expected_version:
            raise Conflict(
                f"{resource.key}: expected version {expected_version}, stored version is {current.version}"
            )
        assert current.modification_time is not None  # stamped by create
        stored = Resource(
            resource.key,
            rules.copy_spec(resource.spec),
            current.version + 1,
            current.creation_time,
            rules.next_modification_time(current.modification_time),
            rules.copy_labels(resource.labels),
        )
        self._by_kind[resource.kind][(resource.mesh, resource.name)] = stored
        self._fanout.publish([Change(ChangeKind.UPDATED, stored.key, stored.version)])
        return _copy(stored)

    async def delete(self, key: ResourceKey) -> None:
        self._check_open()
        removed = [self._find(key)]
        if key.kind is MESH:
            owned = [
                r
                for kind in KINDS
                if kind.mesh_scoped
                for r in self._by_kind[kind].values()
                if r.mesh == key.name
            ]
            removed = sorted(owned, key=lambda r: rules.cascade_order(r.key)) + removed
        for resource in removed:
            del self._by_kind[resource.kind][(resource.mesh, resource.name)]
        self._fanout.publish(Change(ChangeKind.DELETED, r.key, r.version) for r in removed)

    async def revoke_token(self, token_id: str) -> bool:
        self._check_open()
        rules.check_token_id(token_id)
        if token_id in self._revoked_set:
            return False
        self._revoked.append(token_id)
        self._revoked_set.add(token_id)
        return True

    async def is_token_revoked(self, token_id: str) -> bool:
        self._check_open()
        return token_id in self._revoked_set

    async def revoked_tokens_since(self, cursor: int) -> RevokedTokens:
        self._check_open()
        return RevokedTokens(tuple(self._revoked[max(cursor, 0):]), len(self._revoked))

    def watch(self) -> ChangeStream:
        return self._fanout.subscribe()

    async def close(self) -> None:
        self._closed = True
        self._fanout.close()

    def _find(self, key: ResourceKey) -> Resource:
        found = self._by_kind[key.kind].get((key.mesh, key.name))
        if found is None:
            raise NotFound(str(key))
        return found

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("store is closed")


def _copy(resource: Resource) -> Resource:
    return Resource(
        resource.key,
        rules.copy_spec(resource.spec),
        resource.version,
        resource.creation_time,
        resource.modification_time,
        resource.labels,  # read-only (rules.copy_labels), so sharing it is safe
    )
