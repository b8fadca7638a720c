"""Inbound generator: for each inbound with a service, a listener on the dataplane address and a local
cluster `localhost:<servicePort>` to the application (Kuma's `inbound_proxy_generator.go`).

HTTP-family inbounds (http, http2, grpc) get an HCM with RDS and the tracing block for the inbound's
service; everything else gets tcp_proxy and no tracing (reference §3.1). Serviceless inbounds are skipped.
Every resource is looked up in the interner by the inputs it is built from, so an unchanged inbound costs
a lookup, not a rebuild, when its proxy is regenerated.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2

from controlplane.resources.dataplane import identifying_service
from controlplane.resources.protocol import Protocol, protocol_of
from controlplane.resources.tags import SERVICE_TAG
from controlplane.tracing.backend import Direction, EffectiveTracing, HcmSite
from controlplane.tracing.block import build_tracing_block, tracing_configurer
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


def generate_inbound(ctx: MeshContext, proxy: Proxy, cache: ResourceInterner) -> ResourceSet:
    """Listeners, local clusters and inbound routes of one proxy."""
    resources = ResourceSet()
    inbounds = [
        inbound for inbound in proxy.dataplane.spec.networking.inbound if inbound.tags.get(SERVICE_TAG)
    ]
    shared_routes = _services_with_one_app_port(inbounds)
    reported = identifying_service(proxy.dataplane.spec)
    for inbound in sorted(inbounds, key=lambda inbound: inbound.port):
        service = inbound.tags[SERVICE_TAG]
        service_port = inbound.service_port or inbound.port
        route_name = names.inbound_route_name(service, None if service in shared_routes else service_port)
        _add_inbound(resources, cache, proxy, inbound, route_name, reported)
    return resources


def _add_inbound(resources: ResourceSet, cache: ResourceInterner, proxy: Proxy, inbound: Any, route_name: str,
                 proxy_service: str) -> None:
    """One inbound's listener, local cluster and (for HTTP) route configuration."""
    networking = proxy.dataplane.spec.networking
    service = inbound.tags[SERVICE_TAG]
    service_port = inbound.service_port or inbound.port
    protocol = protocol_of(inbound.tags)
    cluster_name = names.local_cluster_name(service_port)
    app_address = inbound.service_address or networking.address
    ipv6 = ":" in networking.address
    resources.add(cache.shared(types.CLUSTER_TYPE, ("local", cluster_name, app_address, service_port,
                                                    protocol.uses_http2_upstream, ipv6),
                               _local_cluster, cluster_name, app_address, service_port, protocol, ipv6))
    if protocol.is_http:
        # Same for every instance of the service: built (and serialised) once for all of them.
        resources.add(cache.shared(types.ROUTE_TYPE, ("inbound-route", route_name, service, cluster_name),
                                   build_route_configuration, route_name, names.virtual_host_name(service),
                                   cluster_name))
    address = inbound.address or networking.address
    tracing = proxy.tracing if protocol.is_http else None
    site = HcmSite(service if tracing is None or tracing.service_per_inbound else proxy_service, Direction.INBOUND)
    block_key: Hashable = tracing.block_key(site) if tracing is not None else None
    tags = tuple(sorted(inbound.tags.items()))
    inputs = ("inbound", address, int(inbound.port), tags, protocol, service_port, route_name, block_key)
    listener = cache.shared(types.LISTENER_TYPE, inputs, _inbound_listener, address, int(inbound.port),
                            dict(tags), protocol, site, service_port, route_name, tracing)
    resources.add(listener)
    resources.note(listener_note(listener.name, "inbound", service, protocol.value, protocol.is_http,
                                 tracing is not None))


def _local_cluster(name: str, address: str, port: int, protocol: Protocol, ipv6: bool) -> cluster_pb2.Cluster:
    return build_cluster(name, provided_endpoint(address, port, ipv6), http2_upstream(protocol.uses_http2_upstream))


def _inbound_listener(address: str, port: int, tags: dict[str, str], protocol: Protocol, site: HcmSite,
                      service_port: int, route_name: str, tracing: EffectiveTracing | None) -> listener_pb2.Listener:
    return build_listener(
        names.inbound_listener_name(address, port),
        listen_on(address, port),
        traffic_direction(INBOUND),
        tags_metadata(tags),
        filter_chain(_inbound_filter(tracing, protocol, site, service_port, route_name)),
    )


def _inbound_filter(
    tracing: EffectiveTracing | None, protocol: Protocol, site: HcmSite, service_port: int, route_name: str
) -> listener_components_pb2.Filter:
    prefix = names.inbound_stat_prefix(service_port)
    if not protocol.is_http:
        return tcp_proxy_filter(prefix, names.local_cluster_name(service_port))
    block = build_tracing_block(tracing, site) if tracing is not None else None
    hcm = build_hcm(stat_prefix(prefix), rds(route_name), tracing_configurer(block))
    return network_filter(types.HTTP_CONNECTION_MANAGER, hcm)


def _services_with_one_app_port(inbounds: Sequence[Any]) -> frozenset[str]:
    """Services whose inbounds all reach one application port, so `inbound:<service>` is unambiguous."""
    ports: dict[str, set[int]] = {}
    for inbound in inbounds:
        ports.setdefault(inbound.tags[SERVICE_TAG], set()).add(inbound.service_port or inbound.port)
    return frozenset(service for service, service_ports in ports.items() if len(service_ports) == 1)
