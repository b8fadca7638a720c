"""The policy-plugin seam: what one policy kind (TrafficTrace, later MeshTrace) provides.

A plugin is given a mesh's policies of its kind once per mesh context (`prepare`: sort, parse backends,
index selectors) and then decides, per proxy, which of them apply and what tracing that makes
(`decide`): the effective configuration, the policies in their ranking or merge order, and when there is
no tracing, why. Generation consumes only the `EffectiveTracing` of the decision that applies
(`plugins.py` picks it); inspection and the reconciler's "which proxies changed" read the whole
`Decision`. Plugins are pure: no store, no asyncio, no logging; equal inputs give equal decisions, which
is what lets the reconciler compare them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from controlplane.resources.kind import Kind
from controlplane.resources.model import Resource
from controlplane.tracing.backend import EffectiveTracing


@dataclass(frozen=True, slots=True)
class Decision:
    """What one policy kind decided for one proxy.

    `matched` names the policies of the kind that target the proxy, in the kind's order of precedence
    (the one that decides last). `tracing` is what they configure, or None, with a machine `reason` and a
    human `message`. `backend` is the backend the policies asked for, also when it was not found.
    """

    kind: str
    matched: tuple[str, ...] = ()
    tracing: EffectiveTracing | None = None
    reason: str = ""
    message: str = ""
    backend: str = ""
    conf: Mapping[str, Any] | None = None
    """The merged policy conf in the kind's own JSON form, for kinds that merge (MeshTrace's `_rules`)."""

    @property
    def targets(self) -> bool:
        """Some policy of this kind selects the proxy (whether or not that yields tracing)."""
        return bool(self.matched)


class Prepared(Protocol):
    """A plugin's per-mesh index, built once per mesh context; opaque to everyone but its plugin."""


class PolicyPlugin(Protocol):
    @property
    def kind(self) -> Kind:
        """The policy kind this plugin implements (its descriptor is registered in resources/registry.py)."""
        ...

    def prepare(self, mesh: Resource, policies: Sequence[Resource]) -> Prepared:
        """Index the mesh's policies of this kind (every input sorted, so the result is order-free)."""
        ...

    def decide(self, prepared: Prepared, dataplane: Resource) -> Decision:
        """The decision for one Dataplane of the mesh."""
        ...

    def by_tags(self, prepared: Prepared) -> bool:
        """True when `decide` reads nothing of a Dataplane but its inbounds' tag sets (in this mesh
        context), so Dataplanes with equal tag sets get one decision (policies/plugins.py memoizes it)."""
        ...
