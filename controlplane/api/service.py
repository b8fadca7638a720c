"""Apply/delete rules that sit between the HTTP handlers and the store.

Order matters for "bad input never corrupts state": decode + validate (pure), then check the mesh exists,
then one store write. `apply` reports created / updated / unchanged; an unchanged spec is not written at
all, so it bumps no version and triggers no xDS push.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from controlplane.errors import MeshNotFound, NotFound, ValidationError, Violation
from controlplane.resources.codec import spec_equal
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.store.base import Store


class Outcome(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class ApplyResult:
    outcome: Outcome
    resource: Resource
    warnings: tuple[str, ...]


async def get_or_none(store: Store, key: ResourceKey) -> Resource | None:
    try:
        return await store.get(key)
    except NotFound:
        return None


def _mesh_not_found(mesh: str) -> ValidationError:
    return ValidationError([Violation("mesh", f"mesh of name {mesh} is not found")], "Mesh is not found")


async def apply_resource(store: Store, resource: Resource, *, dry_run: bool = False) -> ApplyResult:
    """Create or update `resource` (already decoded and validated); nothing is written when dry_run."""
    warnings: tuple[str, ...] = ()
    if resource.kind.mesh_scoped:
        mesh = await get_or_none(store, ResourceKey(MESH, "", resource.mesh))
        if mesh is None:
            raise _mesh_not_found(resource.mesh)
        warnings = tuple(resource.kind.warnings(resource.spec, mesh))
    existing = await get_or_none(store, resource.key)
    if existing is None:
        try:
            stored = resource if dry_run else await store.create(resource)
        except MeshNotFound as exc:  # the mesh was deleted since the check above
            raise _mesh_not_found(exc.mesh) from exc
        return ApplyResult(Outcome.CREATED, stored, warnings)
    if spec_equal(existing, resource):
        return ApplyResult(Outcome.UNCHANGED, existing, warnings)
    stored = resource if dry_run else await store.update(resource, expected_version=existing.version)
    return ApplyResult(Outcome.UPDATED, stored, warnings)
