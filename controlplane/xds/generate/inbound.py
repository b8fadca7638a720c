"""Inbound generator: for each inbound with a service, a listener on the dataplane address and a local
cluster `localhost:<servicePort>` to the application (Kuma's `inbound_proxy_generator.go`).

HTTP-family inbounds (http, http2, grpc) get an HCM with RDS and the tracing block for the inbound's
service; everything else gets tcp_proxy and no tracing (reference §3.1). Serviceless inbounds are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from envoy.config.listener.v3 import listener_components_pb2

from controlplane.policy.protocol import Protocol, protocol_of
from controlplane.xds import types
from controlplane.xds.generate import names
from controlplane.xds.generate.clusters import build_cluster, http2_upstream, provided_endpoint
from controlplane.xds.generate.context import SERVICE_TAG, MeshContext, Proxy
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
from controlplane.xds.generate.resource_set import ResourceSet
from controlplane.xds.generate.tracer import Direction, Tracer, shared_tracer, tracing


def generate_inbound(ctx: MeshContext, proxy: Proxy) -> ResourceSet:
    """Listeners, local clusters and inbound routes of one proxy."""
    resources = ResourceSet()
    inbounds = [
        inbound for inbound in proxy.dataplane.spec.networking.inbound if inbound.tags.get(SERVICE_TAG)
    ]
    shared_routes = _services_with_one_app_port(inbounds)
    tracer = shared_tracer(ctx, proxy.tracing.backend)
    for inbound in sorted(inbounds, key=lambda inbound: inbound.port):
        service = inbound.tags[SERVICE_TAG]
        service_port = inbound.service_port or inbound.port
        route_name = names.inbound_route_name(service, None if service in shared_routes else service_port)
        _add_inbound(ctx, resources, proxy, tracer, inbound, route_name)
    return resources


def _add_inbound(
    ctx: MeshContext, resources: ResourceSet, proxy: Proxy, tracer: Tracer | None, inbound: Any, route_name: str
) -> None:
    """One inbound's listener, local cluster and (for HTTP) route configuration."""
    networking = proxy.dataplane.spec.networking
    service = inbound.tags[SERVICE_TAG]
    service_port = inbound.service_port or inbound.port
    protocol = protocol_of(inbound.tags)
    cluster_name = names.local_cluster_name(service_port)
    resources.add(
        build_cluster(
            cluster_name,
            provided_endpoint(
                inbound.service_address or networking.address, service_port, ":" in networking.address
            ),
            http2_upstream(protocol.uses_http2_upstream),
        )
    )
    if protocol.is_http:
        # Same for every instance of the service: built (and serialised) once per context.
        resources.add(ctx.memo(("inbound-route", route_name, service, cluster_name), build_route_configuration,
                               route_name, names.virtual_host_name(service), cluster_name))
    address = inbound.address or networking.address
    resources.add(
        build_listener(
            names.inbound_listener_name(address, inbound.port),
            listen_on(address, inbound.port),
            traffic_direction(INBOUND),
            tags_metadata(inbound.tags),
            filter_chain(_inbound_filter(tracer, protocol, service, service_port, route_name)),
        )
    )


def _inbound_filter(
    tracer: Tracer | None, protocol: Protocol, service: str, service_port: int, route_name: str
) -> listener_components_pb2.Filter:
    prefix = names.inbound_stat_prefix(service_port)
    if not protocol.is_http:
        return tcp_proxy_filter(prefix, names.local_cluster_name(service_port))
    hcm = build_hcm(
        stat_prefix(prefix),
        rds(route_name),
        tracing(tracer, service, Direction.INBOUND),
    )
    return network_filter(types.HTTP_CONNECTION_MANAGER, hcm)


def _services_with_one_app_port(inbounds: Sequence[Any]) -> frozenset[str]:
    """Services whose inbounds all reach one application port, so `inbound:<service>` is unambiguous."""
    ports: dict[str, set[int]] = {}
    for inbound in inbounds:
        ports.setdefault(inbound.tags[SERVICE_TAG], set()).add(inbound.service_port or inbound.port)
    return frozenset(service for service, service_ports in ports.items() if len(service_ports) == 1)
