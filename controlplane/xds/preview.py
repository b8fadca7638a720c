"""What a batch of resources would do to every proxy's tracing, computed by the real pipeline, writing nothing.

`controlplane apply --dry-run` and `?dryRun=true` ask this: the reconciler's mirror of the store (`World`)
is overlaid with the batch, resource by resource in file order, and after each one the same pure pipeline a
real apply runs (`build_mesh_context`, every policy plugin's `decide`, and for the proxies that may change,
`generate_snapshot` for which listeners trace) is compared before and after. So each resource is credited
with exactly the changes it causes given the ones before it, as a sequential apply would make them.

Only the proxies that can change are generated: those whose decision changed, the batch's own Dataplanes,
and the clients of the services those serve (their outbound listeners follow the destination's protocol),
the reconciler's affected-set rule. Pure given its inputs: the overlay copies what it changes, generation
uses a private interner, so it may run off the event loop on a copy of the world taken on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from controlplane.policies.plugins import ProxyPolicies
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.model import Resource, ResourceKey
from controlplane.spans.verdict import untargeted_message
from controlplane.tracing.backend import CustomTag, Sampling
from controlplane.xds.entries import ResourceInterner
from controlplane.xds.generate.context import MeshContext, build_mesh_context, build_proxy, service_of
from controlplane.xds.generate.generators import generate_snapshot
from controlplane.xds.world import MeshResources, World


@dataclass(frozen=True, slots=True)
class TracingSummary:
    """A proxy's tracing as a user reads it: the deciding policy, backend, sampling, tags, traced listeners
    (None when they were not generated: the proxy cannot have changed), or why there is no tracing."""

    policy: str | None
    backend: str | None
    backend_type: str | None
    sampling: Sampling | None
    tags: tuple[CustomTag, ...]
    reason: str
    traced_listeners: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ProxyChange:
    """One proxy's tracing before and after (before None: the batch creates the Dataplane)."""

    mesh: str
    dataplane: str
    before: TracingSummary | None
    after: TracingSummary


@dataclass(frozen=True, slots=True)
class ResourceEffect:
    key: ResourceKey
    changes: tuple[ProxyChange, ...]


def preview(world: World, batch: Sequence[Resource]) -> list[ResourceEffect]:
    """The effect of each resource of `batch` applied in order on `world` (which is left unchanged)."""
    overlay = world.overlay({World.mesh_of(r.key) for r in batch})
    interner = ResourceInterner()
    decided: dict[str, dict[str, TracingSummary]] = {}
    effects = []
    for resource in batch:
        mesh = World.mesh_of(resource.key)
        before_group = overlay.overlay([mesh]).mesh(mesh)
        before = decided[mesh] if mesh in decided else _decisions(before_group)
        previous = overlay.put(resource)
        after_group = overlay.mesh(mesh)
        after = decided[mesh] = _decisions(after_group)
        candidates = {name for name, summary in after.items() if before.get(name) != summary}
        if resource.kind is DATAPLANE:
            candidates |= {resource.name} | overlay.clients_of(mesh, _served(previous) | _served(resource))
        after_listeners = _listeners(after_group, candidates, interner)
        before_listeners = _listeners(before_group, candidates & before.keys(), interner)
        changes = []
        for name in sorted(candidates & after.keys()):
            new = _with(after[name], after_listeners.get(name))
            old = _with(before[name], before_listeners.get(name)) if name in before else None
            if old != new:
                changes.append(ProxyChange(mesh, name, old, new))
        effects.append(ResourceEffect(resource.key, tuple(changes)))
    return effects


def _with(summary: TracingSummary, listeners: tuple[str, ...] | None) -> TracingSummary:
    return TracingSummary(summary.policy, summary.backend, summary.backend_type, summary.sampling, summary.tags,
                          summary.reason, listeners)


def _context(group: MeshResources) -> MeshContext | None:
    if group.mesh is None:
        return None
    return build_mesh_context(group.mesh, group.all_policies(), list(group.dataplanes.values()))


def _decisions(group: MeshResources) -> dict[str, TracingSummary]:
    ctx = _context(group)
    if ctx is None:
        return {}
    return {dp.name: summarize(build_proxy(ctx, dp).policies) for dp in ctx.dataplanes}


def _listeners(group: MeshResources, names: Iterable[str], interner: ResourceInterner) -> dict[str, tuple[str, ...]]:
    ctx = _context(group)
    if ctx is None:
        return {}
    out = {}
    for name in sorted(names):
        dataplane = group.dataplanes.get(name)
        if dataplane is not None:
            notes = generate_snapshot(ctx, build_proxy(ctx, dataplane), interner).listeners
            out[name] = tuple(sorted(n.listener for n in notes if n.traced))
    return out


def summarize(policies: ProxyPolicies) -> TracingSummary:
    applied = policies.applied
    tracing = policies.tracing
    if applied is None and len(policies.decisions) > 1:
        return TracingSummary(None, None, None, None, (), untargeted_message(policies.decisions))
    if applied is None or tracing is None:
        decision = applied or (policies.decisions[-1] if policies.decisions else None)
        policy = f"{decision.kind} {decision.matched[-1]}" if decision is not None and decision.matched else None
        return TracingSummary(policy, None, None, None, (), decision.message if decision is not None else "")
    return TracingSummary(f"{applied.kind} {applied.matched[-1]}", tracing.backend.name, tracing.backend.type_name,
                          tracing.sampling, tracing.tags, "")


def _served(dataplane: Resource | None) -> set[str]:
    if dataplane is None:
        return set()
    return {s for s in (service_of(i.tags) for i in dataplane.spec.networking.inbound) if s}
