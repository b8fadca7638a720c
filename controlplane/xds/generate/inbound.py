"""Inbound generators: for each inbound with a service, a local cluster `localhost:<servicePort>` to the
application and its route (`generate_inbound_routing`), and a listener on the dataplane address
(`generate_inbound_listeners`); Kuma's `inbound_proxy_generator.go` in two concerns, because a tracing
change alters the listeners only (generators.py).

HTTP-family inbounds (http, http2, grpc) get an HCM with RDS and the tracing block for the inbound's
service; everything else gets tcp_proxy and no tracing (reference §3.1). Serviceless inbounds are skipped.
Every resource is looked up in the interner by the inputs it is built from, so an unchanged inbound costs
a lookup, not a rebuild, when its proxy is regenerated.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2

from controlplane.resources.protocol import Protocol, protocol_of
from controlplane.tracing.backend import Direction, HcmSite
from controlplane.xds import types
from controlplane.xds.entries import ResourceInterner
from controlplane.xds.generate import names
from controlplane.xds.generate.clusters import build_cluster, http2_upstream, provided_endpoint
from controlplane.xds.generate.context import MeshContext, Proxy
from controlplane.xds.generate.hcm import build_hcm, build_route_configuration, rds, stat_prefix
from controlplane.xds.generate.listeners import (
    INBOUND,
    build_listener,
    filter_chain,
    listen_on,
    network_filter,
    tags_metadata,
    tcp_proxy_filter,
    traffic_direction,
)
from controlplane.xds.generate.notes import listener_note
from controlplane.xds.generate.resource_set import ResourceSet
from controlplane.xds.generate.traced_listener import traced_listener


def inbound_routing_inputs(ctx: MeshContext, proxy: Proxy) -> tuple[object, ...]:
    return (proxy.dataplane,)


def generate_inbound_routing(ctx: MeshContext, proxy: Proxy, cache: ResourceInterner) -> ResourceSet:
    """Local clusters and inbound routes of one proxy: they depend on its Dataplane only."""
    resources = ResourceSet()
    networking = proxy.dataplane.spec.networking
    ipv6 = ":" in networking.address
    for view in proxy.inbounds:
        inbound, service, service_port, route_name = view.inbound, view.service, view.service_port, view.route_name
        protocol = protocol_of(inbound.tags)
        cluster_name = names.local_cluster_name(service_port)
        app_address = inbound.service_address or networking.address
        resources.add(cache.shared(types.CLUSTER_TYPE, ("local", cluster_name, app_address, service_port,
                                                        protocol.uses_http2_upstream, ipv6),
                                   _local_cluster, cluster_name, app_address, service_port, protocol, ipv6))
        if protocol.is_http:
            # Same for every instance of the service: built (and serialised) once for all of them.
            resources.add(cache.shared(types.ROUTE_TYPE, ("inbound-route", route_name, service, cluster_name),
                                       build_route_configuration, route_name, names.virtual_host_name(service),
                                       cluster_name))
    return resources


def inbound_listener_inputs(ctx: MeshContext, proxy: Proxy) -> tuple[object, ...]:
    return (proxy.dataplane, proxy.tracing)


def generate_inbound_listeners(ctx: MeshContext, proxy: Proxy, cache: ResourceInterner) -> ResourceSet:
    """One listener per inbound, traced (HTTP only) under the inbound's or the proxy's service."""
    resources = ResourceSet()
    networking = proxy.dataplane.spec.networking
    proxy_service = proxy.identifying_service
    for view in proxy.inbounds:
        inbound, service, service_port, route_name = view.inbound, view.service, view.service_port, view.route_name
        protocol = protocol_of(inbound.tags)
        address = inbound.address or networking.address
        tracing = proxy.tracing if protocol.is_http else None
        site = HcmSite(service if tracing is None or tracing.service_per_inbound else proxy_service,
                       Direction.INBOUND)
        tags = tuple(sorted(inbound.tags.items()))
        inputs = ("inbound", address, int(inbound.port), tags, protocol, service_port, route_name)
        args = (address, int(inbound.port), dict(tags), protocol, service_port, route_name)
        if protocol.is_http:
            listener = traced_listener(cache, inputs, tracing, site, _inbound_listener, *args)
        else:
            listener = cache.shared(types.LISTENER_TYPE, inputs, _inbound_listener, *args)
        resources.add(listener)
        resources.note(listener_note(listener.name, "inbound", service, protocol.value, protocol.is_http,
                                     tracing is not None))
    return resources


def _local_cluster(name: str, address: str, port: int, protocol: Protocol, ipv6: bool) -> cluster_pb2.Cluster:
    return build_cluster(name, provided_endpoint(address, port, ipv6), http2_upstream(protocol.uses_http2_upstream))


def _inbound_listener(address: str, port: int, tags: dict[str, str], protocol: Protocol, service_port: int,
                      route_name: str) -> listener_pb2.Listener:
    """The inbound listener without tracing (traced_listener.py adds the block)."""
    return build_listener(
        names.inbound_listener_name(address, port),
        listen_on(address, port),
        traffic_direction(INBOUND),
        tags_metadata(tags),
        filter_chain(_inbound_filter(protocol, service_port, route_name)),
    )


def _inbound_filter(protocol: Protocol, service_port: int, route_name: str) -> listener_components_pb2.Filter:
    prefix = names.inbound_stat_prefix(service_port)
    if not protocol.is_http:
        return tcp_proxy_filter(prefix, names.local_cluster_name(service_port))
    hcm = build_hcm(stat_prefix(prefix), rds(route_name))
    return network_filter(types.HTTP_CONNECTION_MANAGER, hcm)
