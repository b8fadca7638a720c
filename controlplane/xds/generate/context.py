"""Inputs of generation: the per-mesh context (built once per mesh change) and the per-proxy view.

Everything that is the same for every proxy of a mesh (who serves which service, which protocol a
destination speaks) is indexed once in `build_mesh_context`, so generating N proxies stays O(N × own
inbounds/outbounds) instead of rescanning every Dataplane per outbound.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeVar

from controlplane.policy import (
    Protocol,
    TracingResolution,
    infer_protocol,
    resolve_tracing,
    select_traffic_trace,
)
from controlplane.resources.model import Resource

T = TypeVar("T")

SERVICE_TAG: Final = "kuma.io/service"
LEGACY_SERVICE_TAG: Final = "service"
ZONE_TAG: Final = "kuma.io/zone"
UNKNOWN_SERVICE: Final = "unknown"


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


@dataclass(frozen=True, slots=True)
class MeshContext:
    """Everything generation needs about one mesh. Treat as immutable; indexes come from build_mesh_context."""

    mesh: Resource
    traffic_traces: tuple[Resource, ...]
    dataplanes: tuple[Resource, ...]
    endpoints_by_service: Mapping[str, tuple[Endpoint, ...]]
    protocol_by_service: Mapping[str, Protocol]
    shared: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)
    """Resources built once per context and shared by every proxy of the mesh (see outbound.py). The only
    mutable part: a memo whose entries are pure functions of the context, so output stays deterministic."""

    def memo(self, key: Hashable, build: Callable[..., T], *args: object) -> T:
        """`build(*args)` once per context for `key`, then the same object: a resource many proxies share is
        built, serialised and hashed once per pass (the interner recognises the object). `key` must hold
        every input of `build` that is not fixed by the context. Arguments rather than a closure: this runs
        several times per proxy."""
        try:
            value: T = self.shared[key]
        except KeyError:
            value = self.shared[key] = build(*args)
        return value

    def endpoints(self, service: str) -> tuple[Endpoint, ...]:
        return self.endpoints_by_service.get(service, ())

    def protocol(self, service: str) -> Protocol:
        return self.protocol_by_service.get(service, Protocol.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Proxy:
    """The Dataplane being configured plus its resolved tracing (so generators never re-run policy matching)."""

    dataplane: Resource
    tracing: TracingResolution

    @property
    def id(self) -> str:
        """`<mesh>.<name>`, the node id form used in errors; the server owns parsing node ids."""
        return f"{self.dataplane.mesh}.{self.dataplane.name}"


def build_mesh_context(
    mesh: Resource, traffic_traces: Sequence[Resource], dataplanes: Sequence[Resource]
) -> MeshContext:
    """Index a mesh once. Inputs are sorted by name so the context (and all output) is order-independent."""
    ordered = tuple(sorted(dataplanes, key=lambda resource: resource.name))
    endpoints = _index_endpoints(ordered)
    protocols = {service: infer_protocol(e.tags for e in group) for service, group in endpoints.items()}
    return MeshContext(
        mesh=mesh,
        traffic_traces=tuple(sorted(traffic_traces, key=lambda resource: resource.name)),
        dataplanes=ordered,
        endpoints_by_service=MappingProxyType(endpoints),
        protocol_by_service=MappingProxyType(protocols),
    )


def build_proxy(ctx: MeshContext, dataplane: Resource) -> Proxy:
    """Select the TrafficTrace and resolve its backend for one Dataplane of the mesh."""
    traffic_trace = select_traffic_trace(dataplane, ctx.traffic_traces)
    return Proxy(dataplane=dataplane, tracing=resolve_tracing(ctx.mesh, traffic_trace))


def service_of(tags: Mapping[str, str]) -> str:
    """`kuma.io/service`, or the deprecated `service` tag that old outbounds still use; "" when neither."""
    return tags.get(SERVICE_TAG) or tags.get(LEGACY_SERVICE_TAG, "")


def identifying_service(dataplane: Resource) -> str:
    """Kuma's GetIdentifyingService: the alphabetically first inbound service, `unknown` without inbounds."""
    services = sorted(s for s in (service_of(i.tags) for i in dataplane.spec.networking.inbound) if s)
    return services[0] if services else UNKNOWN_SERVICE


def _index_endpoints(dataplanes: Iterable[Resource]) -> dict[str, tuple[Endpoint, ...]]:
    """service → endpoints, each sorted by (address, port, dataplane) for stable EDS output.

    Clients connect where the inbound listener listens: its own `address` when set (Kuma's DataplaneIP,
    `ToInboundInterface`), else `networking.address`; an unspecified listen address (0.0.0.0, ::) is not
    reachable as a destination, so `networking.address` is used for it.
    """
    grouped: dict[str, list[Endpoint]] = {}
    for dataplane in dataplanes:
        networking = dataplane.spec.networking
        for inbound in networking.inbound:
            service = inbound.tags.get(SERVICE_TAG, "")
            if not service:
                continue
            address = inbound.address if inbound.address and not _unspecified(inbound.address) else ""
            endpoint = Endpoint(
                address or networking.address, inbound.port, MappingProxyType(dict(inbound.tags)), dataplane.name
            )
            grouped.setdefault(service, []).append(endpoint)
    return {
        service: tuple(sorted(group, key=lambda e: (e.address, e.port, e.dataplane)))
        for service, group in sorted(grouped.items())
    }


def _unspecified(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False
