"""Apply/delete rules that sit between the HTTP handlers and the store.

Order matters for "bad input never corrupts state": decode + validate (pure), then check the mesh exists,
then one store write. `apply` reports created / updated / unchanged; an unchanged spec is not written at
all, so it bumps no version and triggers no xDS push.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
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


async def dry_run_batch(store: Store, resources: Sequence[Resource]) -> list[ApplyResult | ValidationError]:
    """`apply_resource(dry_run=True)` for a batch as one unit: each resource is checked against the store with
    the batch's earlier resources applied (a Mesh created earlier in the batch exists for the TrafficTrace that
    follows; a resource given twice is `updated` the second time). Nothing is written."""
    applied: dict[ResourceKey, Resource] = {}

    async def current(key: ResourceKey) -> Resource | None:
        return applied[key] if key in applied else await get_or_none(store, key)

    results: list[ApplyResult | ValidationError] = []
    for resource in resources:
        warnings: tuple[str, ...] = ()
        if resource.kind.mesh_scoped:
            mesh = await current(ResourceKey(MESH, "", resource.mesh))
            if mesh is None:
                results.append(_mesh_not_found(resource.mesh))
                continue
            warnings = tuple(resource.kind.warnings(resource.spec, mesh))
        existing = await current(resource.key)
        if existing is None:
            outcome = Outcome.CREATED
        else:
            outcome = Outcome.UNCHANGED if spec_equal(existing, resource) else Outcome.UPDATED
        applied[resource.key] = resource
        results.append(ApplyResult(outcome, resource, warnings))
    return results


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
