"""Outbound generators: for each outbound, the EDS cluster `<service>` with its ClusterLoadAssignment
(built from every inbound of the mesh serving the service) and route (`generate_destinations`), and a
listener (default 127.0.0.1) to it (`generate_outbound_listeners`): two concerns, because a tracing change
alters the listeners only and an endpoint change the destinations only (generators.py).

The protocol comes from the destination's endpoints (reference §3.1), so a destination whose endpoints
disagree or lack `kuma.io/protocol` is plain TCP and untraced. Tracing on outbounds is reported under the
proxy's identifying service, with the destination for Datadog's splitService.

Proxies share most of these resources byte for byte (reference/performance.md §6.3: generation, not the
wire, is the cost at scale): a destination's cluster, endpoints and route depend only on the service, its
protocol and its endpoints; an outbound listener only on its address, port, destination, protocol and
tracing block. Each is looked up in the interner by exactly those inputs, so it is built and serialised
once for every proxy that has it, and again only when one of those inputs changes.
"""

from __future__ import annotations

from typing import Any, Final

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2

from controlplane.resources.protocol import Protocol
from controlplane.tracing.backend import Direction, EffectiveTracing, HcmSite
from controlplane.xds import types
from controlplane.xds.entries import ResourceEntry, ResourceInterner
from controlplane.xds.generate import names
from controlplane.xds.generate.clusters import build_cluster, eds, http2_upstream
from controlplane.xds.generate.context import Destination, MeshContext, Proxy
from controlplane.xds.generate.endpoints import build_load_assignment
from controlplane.xds.generate.hcm import build_hcm, build_route_configuration, rds, stat_prefix
from controlplane.xds.generate.listeners import (
    OUTBOUND,
    build_listener,
    filter_chain,
    listen_on,
    network_filter,
    tcp_proxy_filter,
    traffic_direction,
)
from controlplane.xds.generate.notes import listener_note
from controlplane.xds.generate.resource_set import ResourceSet
from controlplane.xds.generate.traced_listener import traced_listener

DEFAULT_OUTBOUND_ADDRESS: Final = "127.0.0.1"


def destination_inputs(ctx: MeshContext, proxy: Proxy) -> tuple[object, ...]:
    return (proxy.dataplane, *(ctx.destination(service) for _, service in proxy.outbounds))


def generate_destinations(ctx: MeshContext, proxy: Proxy, cache: ResourceInterner) -> ResourceSet:
    """The cluster, endpoints and (HTTP) route of every service the proxy reaches."""
    resources = ResourceSet()
    for _, service in proxy.outbounds:
        _add_destination(resources, cache, ctx.destination(service))
    return resources


def outbound_listener_inputs(ctx: MeshContext, proxy: Proxy) -> tuple[object, ...]:
    return (proxy.dataplane, proxy.tracing, *(ctx.protocol(service) for _, service in proxy.outbounds))


def generate_outbound_listeners(ctx: MeshContext, proxy: Proxy, cache: ResourceInterner) -> ResourceSet:
    """One listener per outbound, traced (HTTP destinations only) under the proxy's identifying service."""
    resources = ResourceSet()
    source = proxy.identifying_service
    for outbound, service in proxy.outbounds:
        destination = ctx.destination(service)
        listener = _outbound_listener(cache, proxy.tracing, outbound, destination, source)
        resources.add(listener)
        http = destination.protocol.is_http
        resources.note(listener_note(listener.name, "outbound", service, destination.protocol.value, http,
                                     http and proxy.tracing is not None))
    return resources


def _add_destination(resources: ResourceSet, cache: ResourceInterner, destination: Destination) -> None:
    """EDS cluster + endpoints (+ route when HTTP) of a destination; identical for every outbound to it."""
    service, protocol = destination.service, destination.protocol
    cluster_name = names.service_cluster_name(service)
    http2 = protocol.uses_http2_upstream
    resources.add(cache.shared(types.CLUSTER_TYPE, ("eds-cluster", cluster_name, http2),
                               _eds_cluster, cluster_name, http2))
    resources.add(cache.shared(types.ENDPOINT_TYPE, ("endpoints", cluster_name, destination.endpoints_key),
                               build_load_assignment, cluster_name, destination.endpoints))
    if protocol.is_http:
        route_name = names.outbound_route_name(service)
        resources.add(cache.shared(types.ROUTE_TYPE, ("outbound-route", route_name, service, cluster_name),
                                   build_route_configuration, route_name, names.virtual_host_name(service),
                                   cluster_name))


def _eds_cluster(name: str, http2: bool) -> cluster_pb2.Cluster:
    return build_cluster(name, eds(), http2_upstream(http2))


def _outbound_listener(cache: ResourceInterner, tracing: EffectiveTracing | None, outbound: Any,
                       destination: Destination, source: str) -> ResourceEntry:
    """Shared by every proxy with the same address, port, destination and tracing block (zipkin: per
    backend; datadog: per source service)."""
    address = outbound.address or DEFAULT_OUTBOUND_ADDRESS
    port, protocol = int(outbound.port), destination.protocol
    inputs = ("outbound", address, port, destination.service, protocol)
    if not protocol.is_http:
        return cache.shared(types.LISTENER_TYPE, inputs, _build_outbound_listener, address, port,
                            destination.service, protocol)
    site = HcmSite(source, Direction.OUTBOUND, destination.service)
    return traced_listener(cache, inputs, tracing, site, _build_outbound_listener, address, port,
                           destination.service, protocol)


def _build_outbound_listener(address: str, port: int, service: str, protocol: Protocol) -> listener_pb2.Listener:
    """The outbound listener without tracing (traced_listener.py adds the block to HTTP ones)."""
    return build_listener(
        names.outbound_listener_name(address, port),
        listen_on(address, port),
        traffic_direction(OUTBOUND),
        filter_chain(_outbound_filter(service, protocol)),
    )


def _outbound_filter(service: str, protocol: Protocol) -> listener_components_pb2.Filter:
    cluster_name = names.service_cluster_name(service)
    prefix = names.outbound_stat_prefix(service)
    if not protocol.is_http:
        return tcp_proxy_filter(prefix, cluster_name)
    hcm = build_hcm(stat_prefix(prefix), rds(names.outbound_route_name(service)))
    return network_filter(types.HTTP_CONNECTION_MANAGER, hcm)
