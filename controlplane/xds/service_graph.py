"""A mesh as services and their dependencies, with where tracing works: what the GUI's service graph draws.

Nodes are services (`kuma.io/service` of the Dataplanes' inbounds, plus services only reached, which nobody
in the mesh serves); an edge A → B means a proxy of A has an outbound to B. Whether an edge is traced is
read from the listener notes of the published snapshot (the reconciler's records: the outbound listener's
`traced` and its reason), never re-derived, so the graph cannot disagree with the config Envoy has. Only
connected proxies are generated (xds/reconciler.py), so one that is not connected counts as `pending` on
its edges. Node states are the span-flow
verdicts of the service's proxies, counted, and how many of them have an open ADS stream.

Pure (values in, a value out, sorted): the inspector (xds/inspect.py) gathers the records, verdicts and
connections; the API renders the body.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from controlplane.resources.model import Resource
from controlplane.spans.verdict import Verdict
from controlplane.xds.generate.context import service_of
from controlplane.xds.node import node_id
from controlplane.xds.reconciler import ProxyRecord

PENDING: Final = "not connected: the control plane generates a proxy's configuration when it connects"


@dataclass(frozen=True, slots=True)
class ServiceNode:
    """One service: its dataplanes (sorted), how many are online, and their verdicts by state value."""

    name: str
    dataplanes: tuple[str, ...]
    online: int
    verdicts: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ServiceEdge:
    """Outbounds from proxies of `source` to `destination`: how many, how many traced, and why the others
    are not (reason → count)."""

    source: str
    destination: str
    outbounds: int
    traced: int
    not_traced: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ServiceGraph:
    mesh: str
    services: tuple[ServiceNode, ...]
    edges: tuple[ServiceEdge, ...]


def _outbounds(dataplane: Resource, record: ProxyRecord | None) -> list[tuple[str, bool, str]]:
    """(destination, traced, reason) of each outbound of the dataplane."""
    if record is not None and record.generation is not None:
        return [(n.service, n.traced, n.reason) for n in record.listeners if n.direction == "outbound"]
    return [(service_of(o.tags), False, PENDING) for o in dataplane.spec.networking.outbound if service_of(o.tags)]


def build_service_graph(mesh: str, dataplanes: Iterable[Resource], records: Mapping[str, ProxyRecord],
                        verdicts: Mapping[str, Verdict], online: Iterable[str]) -> ServiceGraph:
    """`records` and `verdicts` by node id; `online` the node ids with an open ADS stream."""
    connected = set(online)
    members: dict[str, list[str]] = {}
    states: dict[str, Counter[str]] = {}
    up: Counter[str] = Counter()
    edges: dict[tuple[str, str], tuple[int, int, Counter[str]]] = {}
    for dataplane in sorted(dataplanes, key=lambda r: r.name):
        node = node_id(mesh, dataplane.name)
        served = sorted({s for s in (service_of(i.tags) for i in dataplane.spec.networking.inbound) if s})
        verdict = verdicts.get(node)
        for service in served:
            members.setdefault(service, []).append(dataplane.name)
            if verdict is not None:
                states.setdefault(service, Counter())[verdict.state.value] += 1
            up[service] += node in connected
        for destination, traced, reason in _outbounds(dataplane, records.get(node)):
            members.setdefault(destination, [])
            for source in served:
                count, n_traced, reasons = edges.get((source, destination), (0, 0, Counter()))
                if not traced:
                    reasons[reason] += 1
                edges[(source, destination)] = (count + 1, n_traced + traced, reasons)
    services = tuple(ServiceNode(name, tuple(names), up[name], dict(sorted(states.get(name, Counter()).items())))
                     for name, names in sorted(members.items()))
    links = tuple(ServiceEdge(source, destination, count, n_traced, dict(sorted(reasons.items())))
                  for (source, destination), (count, n_traced, reasons) in sorted(edges.items()))
    return ServiceGraph(mesh, services, links)
