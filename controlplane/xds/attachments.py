"""Where one policy applies, and where it selects a proxy but something else decides instead.

For the GUI's policy view ("the proxies it applies to, and those it was outranked on"). Three roles, per
Dataplane of the mesh, from the reconciler's records (what was decided, never re-decided):
- `applied`: the policy is among its kind's matched policies and that kind's decision is the one applied
  (a TrafficTrace that won the ranking; a MeshTrace in the merge order, with its position);
- `displaced`: it matched, but another kind's decision is applied (a MeshTrace targets the proxy, so its
  TrafficTrace is not applied; `by` names the deciding policy);
- `outranked`: the policy's selectors select the proxy, but another policy of the same kind ranked higher
  (TrafficTrace: at most one applies). Records keep only the matched policies, so this one asks the kind's
  own plugin whether the policy alone would target the proxy: the plugin seam, no per-kind code here.

Pure; proxies not generated yet are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controlplane.policies.plugins import PLUGINS
from controlplane.resources.kind import Kind
from controlplane.resources.model import Resource
from controlplane.xds.node import node_id
from controlplane.xds.reconciler import ProxyRecord


@dataclass(frozen=True, slots=True)
class Attachment:
    """How the policy relates to one dataplane. `position` is its place in the kind's order (1 = decides
    first, for a merging kind; TrafficTrace has one); `by_kind`/`by` name what decides instead."""

    dataplane: str
    role: str
    position: int = 0
    by_kind: str = ""
    by: str = ""


def policy_attachments(kind: Kind, policy: Resource, mesh: Resource, dataplanes: Iterable[Resource],
                       records: Mapping[str, ProxyRecord]) -> list[Attachment]:
    plugin = next(p for p in PLUGINS if p.kind is kind)
    alone = plugin.prepare(mesh, [policy])
    found = []
    for dataplane in sorted(dataplanes, key=lambda r: r.name):
        record = records.get(node_id(mesh.name, dataplane.name))
        if record is None:
            continue
        decision = record.policies.decision(kind)
        applied = record.policies.applied
        if policy.name in decision.matched:
            position = decision.matched.index(policy.name) + 1
            if applied is decision:
                found.append(Attachment(dataplane.name, "applied", position))
            else:
                found.append(Attachment(dataplane.name, "displaced", position, applied.kind if applied else "",
                                        applied.matched[-1] if applied and applied.matched else ""))
        elif plugin.decide(alone, dataplane).targets:
            found.append(Attachment(dataplane.name, "outranked", 0, kind.name,
                                    decision.matched[-1] if decision.matched else ""))
    return found
