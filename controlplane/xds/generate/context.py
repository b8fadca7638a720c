"""Inputs of generation: the per-mesh context (built once per mesh change) and the per-proxy view.

Everything that is the same for every proxy of a mesh (who serves which service, which protocol a
destination speaks, the policy plugins' indexes) is computed once in `build_mesh_context`, so generating N
proxies stays O(N × own inbounds/outbounds) instead of rescanning every Dataplane per outbound. The context
is an immutable value: caching across proxies and passes is the interner's job (xds/entries.py), keyed by
content, never state hidden in here.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any, Final

from controlplane.policies.plugins import (
    PreparedPolicies,
    ProxyPolicies,
    TagsKey,
    decide,
    prepare_policies,
    tags_key,
)
from controlplane.resources.addresses import is_unspecified_ip
from controlplane.resources.dataplane import identifying_service
from controlplane.resources.kind import Kind
from controlplane.resources.model import Resource
from controlplane.resources.protocol import Protocol, infer_protocol
from controlplane.resources.tags import SERVICE_TAG, ZONE_TAG
from controlplane.tracing.backend import EffectiveTracing
from controlplane.xds.generate import names
from controlplane.xds.node import node_id

LEGACY_SERVICE_TAG: Final = "service"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One inbound of some Dataplane, as seen by a client: where to connect, and the inbound's tags."""

    address: str
    port: int
    tags: Mapping[str, str]
    dataplane: str

    @property
    def zone(self) -> str:
        return self.tags.get(ZONE_TAG, "")


class ContentKey:
    """A tuple of content inputs whose hash is computed once (a destination's endpoints are looked up
    for every proxy reaching it, and hashing a long tuple each time would cost more than the lookup)."""

    __slots__ = ("_hash", "parts")

    def __init__(self, *parts: Hashable) -> None:
        self.parts = parts
        self._hash = hash(parts)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, ContentKey) and self._hash == other._hash
                                 and self.parts == other.parts)


@dataclass(frozen=True, slots=True)
class Destination:
    """A service as a destination: its endpoints, inferred protocol, and the content key of its endpoints
    (what its ClusterLoadAssignment is built from)."""

    service: str
    endpoints: tuple[Endpoint, ...]
    protocol: Protocol
    endpoints_key: ContentKey


@dataclass(frozen=True, slots=True)
class Indexed:
    """What the topology derives from one Dataplane, kept while the Dataplane object stays the same."""

    dataplane: Resource
    node_id: str
    endpoints: tuple[tuple[str, Endpoint], ...]
    """(service, endpoint) per inbound with a service."""
    tags_key: TagsKey
    """Its inbound tag sets: the key of its policy decision (policies/plugins.py)."""


@dataclass(frozen=True, slots=True, eq=False)
class Topology:
    """Who serves what in a mesh: its Dataplanes by name and every served service as a destination.

    Depends on the Dataplanes only, so a Mesh or policy change keeps it. `build_topology` from the previous
    topology re-derives only the Dataplanes that changed (`indexed` is kept per Dataplane object) and only
    the destinations of the services they serve or served; every other `Destination` object is kept, so
    generator inputs naming it compare by identity (generators.py), and changing one Dataplane of 100k
    costs about as much as changing one of ten.
    """

    dataplanes: tuple[Resource, ...]
    destinations: Mapping[str, Destination]
    indexed: Mapping[str, Indexed]
    serving: Mapping[str, frozenset[str]]
    """Service → names of the Dataplanes with an inbound of it."""


def build_topology(dataplanes: Sequence[Resource], previous: Topology | None = None) -> Topology:
    """Index the Dataplanes of a mesh (sorted by name, so everything after is order-independent)."""
    kept = previous.indexed if previous is not None else {}
    indexed: dict[str, Indexed] = {}
    changed: set[str] = set()
    for dataplane in dataplanes:
        old = kept.get(dataplane.name)
        if old is not None and old.dataplane is dataplane:
            indexed[dataplane.name] = old
        else:
            indexed[dataplane.name] = _index(dataplane)
            changed.add(dataplane.name)
    removed = kept.keys() - indexed.keys()
    if previous is None:
        serving = _serving(indexed.values())
        affected: Iterable[str] = serving
        destinations: dict[str, Destination] = {}
    elif not changed and not removed:
        return previous
    else:
        serving, affected = _reindex(previous, indexed, changed, removed)
        destinations = dict(previous.destinations)
    for service in affected:
        names = serving.get(service)
        if not names:
            destinations.pop(service, None)
            serving.pop(service, None)
            continue
        group = tuple(sorted((e for n in names for s, e in indexed[n].endpoints if s == service),
                             key=lambda e: (e.address, e.port, e.dataplane)))
        destination = Destination(service, group, infer_protocol(e.tags for e in group),
                                  ContentKey(*((e.address, e.port, e.zone) for e in group)))
        old_destination = destinations.get(service)
        if old_destination is None or old_destination != destination:
            destinations[service] = destination
    if previous is not None and not removed and len(indexed) == len(kept):
        ordered = tuple(indexed[d.name].dataplane for d in previous.dataplanes)  # same names, same order
    else:
        ordered = tuple(sorted((i.dataplane for i in indexed.values()), key=lambda resource: resource.name))
    return Topology(ordered, MappingProxyType(dict(sorted(destinations.items()))), MappingProxyType(indexed),
                    MappingProxyType(serving))


def _serving(indexed: Iterable[Indexed]) -> dict[str, frozenset[str]]:
    grouped: dict[str, set[str]] = {}
    for item in indexed:
        for service, _ in item.endpoints:
            grouped.setdefault(service, set()).add(item.dataplane.name)
    return {service: frozenset(names) for service, names in grouped.items()}


def _reindex(previous: Topology, indexed: Mapping[str, Indexed], changed: set[str],
             removed: set[str]) -> tuple[dict[str, frozenset[str]], set[str]]:
    """`previous.serving` updated for the changed and removed Dataplanes, and the services whose
    endpoints may differ (served by one of them before or after)."""
    serving = dict(previous.serving)
    affected: set[str] = set()
    for name in changed | removed:
        old = previous.indexed.get(name)
        for service in {s for s, _ in old.endpoints} if old is not None else ():
            serving[service] = serving[service] - {name}
            affected.add(service)
        new = indexed.get(name) if name in changed else None
        for service in {s for s, _ in new.endpoints} if new is not None else ():
            serving[service] = serving.get(service, frozenset()) | {name}
            affected.add(service)
    return serving, affected


@dataclass(frozen=True, slots=True)
class MeshContext:
    """Everything generation needs about one mesh; build it with `build_mesh_context`."""

    mesh: Resource
    dataplanes: tuple[Resource, ...]
    destinations: Mapping[str, Destination]
    policies: PreparedPolicies
    indexed: Mapping[str, Indexed]

    def endpoints(self, service: str) -> tuple[Endpoint, ...]:
        destination = self.destinations.get(service)
        return destination.endpoints if destination is not None else ()

    def protocol(self, service: str) -> Protocol:
        destination = self.destinations.get(service)
        return destination.protocol if destination is not None else Protocol.UNKNOWN

    def destination(self, service: str) -> Destination:
        """The destination of `service`; one with no endpoints (an empty assignment) when nobody serves it."""
        found = self.destinations.get(service)
        return found if found is not None else Destination(service, (), Protocol.UNKNOWN, ContentKey())


@dataclass(frozen=True, slots=True)
class InboundView:
    """One inbound with a service, as the inbound generators read it."""

    inbound: Any
    service: str
    service_port: int
    route_name: str


@dataclass(frozen=True)
class Proxy:
    """The Dataplane being configured plus its policy decisions (so generators never re-run matching).

    The views of the Dataplane the generators share (inbounds, outbounds, identifying service) are derived
    on first use, once per proxy and pass, instead of once per generator and its inputs."""

    dataplane: Resource
    policies: ProxyPolicies

    @property
    def tracing(self) -> EffectiveTracing | None:
        """What the proxy's HCMs trace with (the applied policy's decision), None for no tracing."""
        return self.policies.tracing

    @property
    def id(self) -> str:
        """`<mesh>.<name>`, the node id used in errors and as the cache key."""
        return node_id(self.dataplane.mesh, self.dataplane.name)

    @cached_property
    def outbounds(self) -> tuple[tuple[Any, str], ...]:
        """(outbound, service) of every outbound, by address and port; ValueError for one without service."""
        out = []
        for outbound in sorted(self.dataplane.spec.networking.outbound, key=lambda o: (o.address, o.port)):
            service = service_of(outbound.tags)
            if not service:
                raise ValueError(f"outbound on port {outbound.port} has no kuma.io/service tag")
            out.append((outbound, service))
        return tuple(out)

    @cached_property
    def inbounds(self) -> tuple[InboundView, ...]:
        """Every inbound with a service, by port, with its route name (`inbound:<service>` when all the
        service's inbounds reach one application port, else `inbound:<service>:<port>`)."""
        inbounds = [i for i in self.dataplane.spec.networking.inbound if i.tags.get(SERVICE_TAG)]
        ports: dict[str, set[int]] = {}
        for inbound in inbounds:
            ports.setdefault(inbound.tags[SERVICE_TAG], set()).add(inbound.service_port or inbound.port)
        out = []
        for inbound in sorted(inbounds, key=lambda inbound: inbound.port):
            service = inbound.tags[SERVICE_TAG]
            service_port = inbound.service_port or inbound.port
            route_name = names.inbound_route_name(service, None if len(ports[service]) == 1 else service_port)
            out.append(InboundView(inbound, service, service_port, route_name))
        return tuple(out)

    @cached_property
    def identifying_service(self) -> str:
        return identifying_service(self.dataplane.spec)


def build_mesh_context(mesh: Resource, policies: Iterable[Resource], dataplanes: Sequence[Resource] = (), *,
                       topology: Topology | None = None) -> MeshContext:
    """Index a mesh once. `policies` are the mesh's policies of any kinds; the Dataplanes come as a list or
    as their `topology` (the reconciler keeps it while no Dataplane of the mesh changes)."""
    topology = topology if topology is not None else build_topology(dataplanes)
    by_kind: dict[Kind, list[Resource]] = {}
    for policy in policies:
        by_kind.setdefault(policy.kind, []).append(policy)
    return MeshContext(mesh=mesh, dataplanes=topology.dataplanes, destinations=topology.destinations,
                       policies=prepare_policies(mesh, by_kind), indexed=topology.indexed)


def build_proxy(ctx: MeshContext, dataplane: Resource) -> Proxy:
    """Every policy plugin's decision for one Dataplane of the mesh."""
    found = ctx.indexed.get(dataplane.name)
    key = found.tags_key if found is not None and found.dataplane is dataplane else None
    return Proxy(dataplane=dataplane, policies=decide(ctx.policies, dataplane, key))


def service_of(tags: Mapping[str, str]) -> str:
    """`kuma.io/service`, or the deprecated `service` tag that old outbounds still use; "" when neither."""
    return tags.get(SERVICE_TAG) or tags.get(LEGACY_SERVICE_TAG, "")


def _index(dataplane: Resource) -> Indexed:
    """Clients connect where the inbound listener listens: its own `address` when set (Kuma's DataplaneIP,
    `ToInboundInterface`), else `networking.address`; an unspecified listen address (0.0.0.0, ::) is not
    reachable as a destination, so `networking.address` is used for it."""
    networking = dataplane.spec.networking
    endpoints = []
    for inbound in networking.inbound:
        service = inbound.tags.get(SERVICE_TAG, "")
        if not service:
            continue
        address = inbound.address if inbound.address and not is_unspecified_ip(inbound.address) else ""
        endpoints.append((service, Endpoint(address or networking.address, inbound.port,
                                            MappingProxyType(dict(inbound.tags)), dataplane.name)))
    return Indexed(dataplane, node_id(dataplane.mesh, dataplane.name), tuple(endpoints), tags_key(dataplane))
