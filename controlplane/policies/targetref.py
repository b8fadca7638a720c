"""Which Dataplanes a top-level `targetRef` selects, and the order in which matched policies merge.

Kuma 2.11 `pkg/plugins/policies/core/matchers/dataplane.go` (`DppSelectedByPolicy`, `SortByTargetRef`) and
`api/common/v1alpha1/targetref.go` (kind order, `CompareDataplaneKind`); reference kuma-meshtrace.md §3.
For this control plane's proxies, which are all sidecars of one zone with no namespaces: `Mesh` and
`MeshSubset` honour `proxyTypes` (`Sidecar`), `MeshSubset`/`MeshService`/`MeshServiceSubset` match *inbound
tags* (not resource labels), `Dataplane` selects all, by name, or by resource labels (the user's plus the
computed `kuma.io/mesh`), and `MeshGateway` selects no sidecar. Sorting is ascending: the last policy wins
a merge. Pure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from controlplane.resources.model import Resource
from controlplane.resources.tags import SERVICE_TAG
from controlplane.resources.targetref import KIND_ORDER

MESH_LABEL: Final = "kuma.io/mesh"
WILDCARD: Final = "*"
MESH_REF: Final[Mapping[str, Any]] = {"kind": "Mesh"}
T = TypeVar("T")


def selects(ref: Mapping[str, Any] | None, dataplane: Resource) -> bool:
    """Does the targetRef (None = `{kind: Mesh}`) select this sidecar?"""
    ref = ref or MESH_REF
    kind = ref.get("kind")
    inbounds = [inbound.tags for inbound in dataplane.spec.networking.inbound]
    if kind == "Mesh":
        return _sidecar(ref) and bool(inbounds)
    if kind == "MeshSubset":
        return _sidecar(ref) and any(_matches(ref.get("tags") or {}, tags) for tags in inbounds)
    if kind == "MeshService":
        return any(_matches({SERVICE_TAG: ref.get("name", "")}, tags) for tags in inbounds)
    if kind == "MeshServiceSubset":
        selector = {**(ref.get("tags") or {}), SERVICE_TAG: ref.get("name", "")}
        return any(_matches(selector, tags) for tags in inbounds)
    if kind == "Dataplane":
        return bool(inbounds) and _dataplane(ref, dataplane)
    return False  # MeshGateway and route kinds select no sidecar


def _sidecar(ref: Mapping[str, Any]) -> bool:
    types = ref.get("proxyTypes") or ()
    return not types or "Sidecar" in types


def _matches(selector: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    """Kuma's `TagSelector.Matches`: every selector key present, with an equal value or `*`."""
    for key, value in selector.items():
        actual = tags.get(key)
        if actual is None or (value != WILDCARD and value != actual):
            return False
    return True


def _dataplane(ref: Mapping[str, Any], dataplane: Resource) -> bool:
    name, namespace, labels = ref.get("name") or "", ref.get("namespace") or "", ref.get("labels")
    if not name and not namespace and labels is None:
        return True
    if name:
        return not namespace and dataplane.name == name  # universal dataplanes have no namespace
    if labels is not None:
        own = {**dataplane.labels, MESH_LABEL: dataplane.mesh}
        return all(own.get(key) == value for key, value in labels.items())
    return False


def _compare(a: tuple[str, Mapping[str, Any]], b: tuple[str, Mapping[str, Any]]) -> int:
    """Kuma's SortByTargetRef comparison for (policy name, targetRef) pairs of one zone and role."""
    (name_a, ref_a), (name_b, ref_b) = a, b
    kind_a, kind_b = ref_a.get("kind", ""), ref_b.get("kind", "")
    diff = KIND_ORDER.get(kind_a, 0) - KIND_ORDER.get(kind_b, 0)
    if diff:
        return diff
    if kind_a == kind_b == "Dataplane":
        by_name_a, by_name_b = bool(ref_a.get("name")), bool(ref_b.get("name"))
        labels_a, labels_b = bool(ref_a.get("labels")), bool(ref_b.get("labels"))
        if by_name_a and labels_b:
            return 1
        if labels_a and by_name_b:
            return -1
    if kind_a == kind_b == "MeshGateway":
        diff = len(ref_a.get("tags") or {}) - len(ref_b.get("tags") or {})
        if diff:
            return diff
    return (name_b > name_a) - (name_b < name_a)  # name descending: the alphabetically first decides last


def merge_order(policies: Sequence[T], key: Callable[[T], tuple[str, Mapping[str, Any] | None]]) -> list[T]:
    """`policies` in Kuma's merge order (ascending precedence; the last one wins)."""
    def compare(a: T, b: T) -> int:
        (name_a, ref_a), (name_b, ref_b) = key(a), key(b)
        return _compare((name_a, ref_a or MESH_REF), (name_b, ref_b or MESH_REF))

    return sorted(policies, key=functools.cmp_to_key(compare))
