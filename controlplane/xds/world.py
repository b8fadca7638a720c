"""In-memory mirror of the store's resources, grouped by mesh, kept current from `store.watch()`.

The reconciler needs every resource of a mesh to build its context; reading them from the store on every
change would put the database on the hot path (Kuma needed a 1 s read cache for the same reason, reference
performance.md §1.1). The mirror is fed only by the reconciler task on the loop thread. It is generic over
policy kinds: Mesh and Dataplane are the core kinds it knows by name, every other kind is a policy bucket.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.kind import Kind
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.xds.generate.context import service_of


@dataclass
class MeshResources:
    """One mesh's resources: the Mesh itself, its policies by kind then name, its Dataplanes by name."""

    mesh: Resource | None = None
    policies: dict[Kind, dict[str, Resource]] = field(default_factory=dict)
    dataplanes: dict[str, Resource] = field(default_factory=dict)
    revision: int = 0
    """Changes whenever `dataplanes` does, to a value never used before in this World: equal revisions mean
    the same Dataplanes (the reconciler keeps the mesh's topology while it stays the same)."""
    clients: dict[str, set[str]] = field(default_factory=dict)
    """Service → names of the dataplanes with an outbound to it. A dataplane change must regenerate its
    clients (their endpoints changed); an index keeps that O(clients) instead of a scan of the mesh per
    change, which made registering N dataplanes O(N²)."""

    def empty(self) -> bool:
        return self.mesh is None and not any(self.policies.values()) and not self.dataplanes

    def all_policies(self) -> list[Resource]:
        """Every policy of the mesh, all kinds."""
        return [policy for bucket in self.policies.values() for policy in bucket.values()]

    def bucket(self, kind: Kind) -> dict[str, Resource]:
        """The dataplanes or the policies of one kind (created empty on first use)."""
        if kind is DATAPLANE:
            return self.dataplanes
        return self.policies.setdefault(kind, {})

    def index(self, dataplane: Resource, add: bool) -> None:
        for service in _reached(dataplane):
            names = self.clients.setdefault(service, set())
            if add:
                names.add(dataplane.name)
            else:
                names.discard(dataplane.name)
                if not names:
                    del self.clients[service]


class World:
    """Current resources by mesh name. `put`/`remove` return the previous value so callers can diff."""

    def __init__(self) -> None:
        self._meshes: dict[str, MeshResources] = {}

    @staticmethod
    def mesh_of(key: ResourceKey) -> str:
        return key.name if key.kind is MESH else key.mesh

    def mesh(self, name: str) -> MeshResources:
        return self._meshes.get(name) or MeshResources()

    def mesh_names(self) -> list[str]:
        return sorted(self._meshes)

    def get(self, key: ResourceKey) -> Resource | None:
        group = self._meshes.get(self.mesh_of(key))
        if group is None:
            return None
        if key.kind is MESH:
            return group.mesh
        return group.bucket(key.kind).get(key.name)

    def put(self, resource: Resource) -> Resource | None:
        group = self._meshes.setdefault(self.mesh_of(resource.key), MeshResources())
        previous = self.get(resource.key)
        if resource.kind is MESH:
            group.mesh = resource
        elif resource.kind is DATAPLANE:
            if previous is not None:
                group.index(previous, add=False)
            group.dataplanes[resource.name] = resource
            group.index(resource, add=True)
            group.revision = next(_REVISIONS)
        else:
            group.bucket(resource.kind)[resource.name] = resource
        return previous

    def remove(self, key: ResourceKey) -> Resource | None:
        name = self.mesh_of(key)
        group = self._meshes.get(name)
        previous = self.get(key)
        if group is None or previous is None:
            return previous
        if key.kind is MESH:
            group.mesh = None
        elif key.kind is DATAPLANE:
            del group.dataplanes[key.name]
            group.index(previous, add=False)
            group.revision = next(_REVISIONS)
        else:
            del group.bucket(key.kind)[key.name]
        if group.empty():
            del self._meshes[name]
        return previous

    def overlay(self, meshes: Iterable[str]) -> World:
        """A World holding shallow copies of `meshes`' resources, which `put` can change without touching this
        one (a dry run applies a batch to it). Resources are immutable, so sharing them is safe."""
        copy = World()
        for name in meshes:
            group = self._meshes.get(name)
            if group is not None:
                copy._meshes[name] = MeshResources(
                    group.mesh, {kind: dict(bucket) for kind, bucket in group.policies.items()},
                    dict(group.dataplanes), group.revision,
                    {service: set(names) for service, names in group.clients.items()})
        return copy

    def clients_of(self, mesh: str, services: Iterable[str]) -> set[str]:
        """Names of the dataplanes of `mesh` with an outbound to any of `services`."""
        group = self._meshes.get(mesh)
        if group is None:
            return set()
        return set().union(*(group.clients.get(service, ()) for service in services))


_REVISIONS = itertools.count(1)
"""Shared by every World (overlays included), so two groups with equal revisions hold the same Dataplanes."""


def _reached(dataplane: Resource) -> set[str]:
    return {s for s in (service_of(o.tags) for o in dataplane.spec.networking.outbound) if s}
