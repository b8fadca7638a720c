"""Selecting the one TrafficTrace that applies to a Dataplane (reference/kuma-tracing.md §2.3).

Mirrors Kuma's `SelectDataplanePolicyWithMatcher`: selectors match a single inbound's tags, the rank is
(total tags, exact tags), candidates are visited in name order and a later one wins only with a strictly
higher rank, or an equal rank and a strictly later creation time. Pure: no store access, no logging.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from controlplane.resources.model import Resource

WILDCARD: Final = "*"


@dataclass(frozen=True, slots=True, order=True)
class SelectorRank:
    """Kuma's TagSelectorRank. Field order makes tuple comparison equal `CompareTo`: total first, then exact."""

    total: int
    exact: int


def rank_selector(match: Mapping[str, str]) -> SelectorRank:
    """Rank of one selector; `{service:'*', version:'*'}` (2, 0) outranks `{service: web}` (1, 1)."""
    exact = sum(1 for value in match.values() if value != WILDCARD)
    return SelectorRank(total=len(match), exact=exact)


def match_tags(match: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    """True when `tags` has every selector key with an equal value, or any value for '*'."""
    for key, value in match.items():
        actual = tags.get(key)
        if actual is None or (value != WILDCARD and value != actual):
            return False
    return True


def inbound_tags(dataplane: Resource) -> list[Mapping[str, str]]:
    """Tag sets a selector may match: one per inbound, never a union across inbounds."""
    return [inbound.tags for inbound in dataplane.spec.networking.inbound]


def rank_policy(
    selectors: Iterable[Mapping[str, str]], tag_sets: Sequence[Mapping[str, str]]
) -> SelectorRank | None:
    """Best rank among the policy's selectors that match some inbound, or None when none matches."""
    best: SelectorRank | None = None
    for match in selectors:
        if any(match_tags(match, tags) for tags in tag_sets):
            rank = rank_selector(match)
            if best is None or rank > best:
                best = rank
    return best


def select_traffic_trace(dataplane: Resource, traffic_traces: Sequence[Resource]) -> Resource | None:
    """The TrafficTrace that applies to `dataplane`, or None. At most one policy applies per Dataplane.

    Stable-sorted by name so the result never depends on store order; ties on rank go to the strictly newer
    creation time, and a full tie keeps the alphabetically first name (Kuma's code uses creationTime, not
    modificationTime as the website suggests; §2.3).
    """
    tag_sets = inbound_tags(dataplane)
    best: Resource | None = None
    best_rank: SelectorRank | None = None
    for policy in sorted(traffic_traces, key=lambda resource: resource.name):
        selectors = [selector.match for selector in policy.spec.selectors]
        rank = rank_policy(selectors, tag_sets)
        if rank is None:
            continue
        if (
            best is None
            or best_rank is None
            or rank > best_rank
            or (rank == best_rank and _created_after(policy.creation_time, best.creation_time))
        ):
            best, best_rank = policy, rank
    return best


def _created_after(candidate: datetime | None, current: datetime | None) -> bool:
    """Go's `time.After` with the zero time for a missing timestamp: a missing time is never after anything."""
    if candidate is None:
        return False
    if current is None:
        return True
    return candidate > current
