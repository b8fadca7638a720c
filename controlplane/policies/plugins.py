"""The policy plugins of this control plane, and how their decisions combine into one per proxy.

`PLUGINS` is in order of precedence: when the decisions of several kinds target a proxy, the first one's
tracing is applied and the others are reported as not applied (DESIGN.md: MeshTrace, once it exists, wins
over TrafficTrace). Adding a policy kind is one folder plus its plugin's entry here and its descriptor's in
resources/registry.py (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from controlplane.policies.meshtrace.plugin import PLUGIN as MESH_TRACE_PLUGIN
from controlplane.policies.plugin import Decision, PolicyPlugin, Prepared
from controlplane.policies.traffictrace.plugin import PLUGIN as TRAFFIC_TRACE_PLUGIN
from controlplane.resources.kind import Kind
from controlplane.resources.model import Resource
from controlplane.tracing.backend import EffectiveTracing

PLUGINS: Final[tuple[PolicyPlugin, ...]] = (MESH_TRACE_PLUGIN, TRAFFIC_TRACE_PLUGIN)
"""MeshTrace first: on a proxy a MeshTrace targets, the merged MeshTrace conf is generated and any
TrafficTrace is reported as not applied (DESIGN.md; Kuma only says "don't combine them")."""


TagsKey = tuple[tuple[tuple[str, str], ...], ...]
"""A Dataplane's inbound tag sets, each sorted: all that a `by_tags` decision reads."""


@dataclass(frozen=True, slots=True)
class PreparedPolicies:
    """Every plugin's per-mesh index, in `PLUGINS` order.

    `by_tags`: every plugin decides from the inbound tags alone, so `decide` keeps one ProxyPolicies per
    distinct tag sets (`_memo`, as long as this mesh context lives): 100 replicas of a service are decided
    once, and equal decisions are the same object (the reconciler's comparison with the last pass is then
    an identity check)."""

    prepared: tuple[tuple[PolicyPlugin, Prepared], ...]
    by_tags: bool = False
    _memo: dict[TagsKey, ProxyPolicies] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ProxyPolicies:
    """Every plugin's decision for one proxy (in `PLUGINS` order) and the one that is applied."""

    decisions: tuple[Decision, ...]
    applied: Decision | None

    @property
    def tracing(self) -> EffectiveTracing | None:
        return self.applied.tracing if self.applied is not None else None

    def decision(self, kind: Kind) -> Decision:
        for decision in self.decisions:
            if decision.kind == kind.name:
                return decision
        raise KeyError(kind.name)

    def displaced(self) -> tuple[Decision, ...]:
        """Decisions that target the proxy but are not applied (another kind takes precedence)."""
        return tuple(d for d in self.decisions if d.targets and d is not self.applied)


def prepare_policies(mesh: Resource, policies: Mapping[Kind, Sequence[Resource]]) -> PreparedPolicies:
    prepared = tuple((p, p.prepare(mesh, policies.get(p.kind, ()))) for p in PLUGINS)
    return PreparedPolicies(prepared, all(plugin.by_tags(index) for plugin, index in prepared))


def tags_key(dataplane: Resource) -> TagsKey:
    return tuple(tuple(sorted(inbound.tags.items())) for inbound in dataplane.spec.networking.inbound)


def decide(prepared: PreparedPolicies, dataplane: Resource, key: TagsKey | None = None) -> ProxyPolicies:
    """Every plugin's decision for `dataplane`; `key`: its `tags_key`, when the caller keeps it."""
    if not prepared.by_tags:
        return _decide(prepared, dataplane)
    if key is None:
        key = tags_key(dataplane)
    found = prepared._memo.get(key)
    if found is None:
        found = prepared._memo[key] = _decide(prepared, dataplane)
    return found


def _decide(prepared: PreparedPolicies, dataplane: Resource) -> ProxyPolicies:
    decisions = tuple(plugin.decide(index, dataplane) for plugin, index in prepared.prepared)
    applied = next((d for d in decisions if d.targets), None)
    return ProxyPolicies(decisions, applied)
