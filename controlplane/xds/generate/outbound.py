"""Outbound generator: for each outbound, a listener (default 127.0.0.1) to the EDS cluster `<service>`,
plus that cluster's ClusterLoadAssignment built from every inbound of the mesh serving the service.

The protocol comes from the destination's endpoints (reference §3.1), so a destination whose endpoints
disagree or lack `kuma.io/protocol` is plain TCP and untraced. Tracing on outbounds is reported under the
proxy's identifying service, with the destination for Datadog's splitService.
"""

from __future__ import annotations

from typing import Any, Final

from envoy.config.listener.v3 import listener_components_pb2

from controlplane.xds import types
from controlplane.xds.generate import names
from controlplane.xds.generate.clusters import build_cluster, eds, http2_upstream
from controlplane.xds.generate.context import MeshContext, Proxy, identifying_service, service_of
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
from controlplane.xds.generate.resource_set import ResourceSet
from controlplane.xds.generate.tracer import Direction, Tracer, shared_tracer, tracing

DEFAULT_OUTBOUND_ADDRESS: Final = "127.0.0.1"
# Resources that many proxies share are built once per MeshContext and kept in `ctx.shared`
# (reference/performance.md §6.3: generation, not the wire, is the cost at scale). A destination's cluster,
# endpoints and route depend only on the service's endpoints and protocol, which are fixed for one context;
# an outbound listener only on its address, port, destination, protocol and HCM tracing block. Returned
# messages are shared: never mutate them. The rejected alternative, a module-level memo that survives
# contexts, saves a little more but is global state in a pure package.


def generate_outbound(ctx: MeshContext, proxy: Proxy) -> ResourceSet:
    """Outbound listeners, service clusters, their endpoints and outbound routes of one proxy."""
    resources = ResourceSet()
    source = identifying_service(proxy.dataplane)
    tracer = shared_tracer(ctx, proxy.tracing.backend)
    outbounds = sorted(proxy.dataplane.spec.networking.outbound, key=lambda o: (o.address, o.port))
    for outbound in outbounds:
        service = service_of(outbound.tags)
        if not service:
            raise ValueError(f"outbound on port {outbound.port} has no kuma.io/service tag")
        resources.add(*_destination(ctx, service))
        resources.add(_outbound_listener(ctx, tracer, outbound, service, source))
    return resources


def _destination(ctx: MeshContext, service: str) -> tuple[Any, ...]:
    return ctx.memo(("destination", service), _build_destination, ctx, service)


def _build_destination(ctx: MeshContext, service: str) -> tuple[Any, ...]:
    """EDS cluster + endpoints (+ route when HTTP) for a destination; identical for every outbound to it."""
    protocol = ctx.protocol(service)
    cluster_name = names.service_cluster_name(service)
    built: tuple[Any, ...] = (
        build_cluster(cluster_name, eds(), http2_upstream(protocol.uses_http2_upstream)),
        build_load_assignment(cluster_name, ctx.endpoints(service)),
    )
    if protocol.is_http:
        route_name = names.outbound_route_name(service)
        built += (build_route_configuration(route_name, names.virtual_host_name(service), cluster_name),)
    return built


def _outbound_listener(ctx: MeshContext, tracer: Tracer | None, outbound: Any, service: str, source: str) -> Any:
    """Shared when the HCM tracing block is the same object (zipkin: per backend; datadog: per source)."""
    protocol = ctx.protocol(service)
    block = tracer.block(source, Direction.OUTBOUND, service) if tracer is not None and protocol.is_http else None
    key = ("listener", outbound.address or DEFAULT_OUTBOUND_ADDRESS, int(outbound.port), service, id(block))
    cached = ctx.shared.get(key)
    if cached is not None and cached[0] is block:
        return cached[1]
    listener = _build_outbound_listener(ctx, tracer, outbound, service, source)
    ctx.shared[key] = (block, listener)  # holding `block` keeps its id from being reused while cached
    return listener


def _build_outbound_listener(
    ctx: MeshContext, tracer: Tracer | None, outbound: Any, service: str, source: str
) -> Any:
    address = outbound.address or DEFAULT_OUTBOUND_ADDRESS
    return build_listener(
        names.outbound_listener_name(address, outbound.port),
        listen_on(address, outbound.port),
        traffic_direction(OUTBOUND),
        filter_chain(_outbound_filter(ctx, tracer, service, source)),
    )


def _outbound_filter(
    ctx: MeshContext, tracer: Tracer | None, service: str, source: str
) -> listener_components_pb2.Filter:
    cluster_name = names.service_cluster_name(service)
    prefix = names.outbound_stat_prefix(service)
    if not ctx.protocol(service).is_http:
        return tcp_proxy_filter(prefix, cluster_name)
    hcm = build_hcm(
        stat_prefix(prefix),
        rds(names.outbound_route_name(service)),
        tracing(tracer, source, Direction.OUTBOUND, service),
    )
    return network_filter(types.HTTP_CONNECTION_MANAGER, hcm)
