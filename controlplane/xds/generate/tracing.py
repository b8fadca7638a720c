"""Tracing generator: the collector cluster of the proxy's effective tracing (Kuma's
`tracing_proxy_generator.go`, reference §3.3), nothing when the proxy does not trace.

The cluster is emitted regardless of listener protocols, so a TCP-only proxy still gets it, as in Kuma.
The HCM tracing blocks are set by the listener generators (tracing/block.py).
"""

from __future__ import annotations

from controlplane.tracing.block import build_collector_cluster
from controlplane.xds import types
from controlplane.xds.entries import ResourceInterner
from controlplane.xds.generate.context import MeshContext, Proxy
from controlplane.xds.generate.resource_set import ResourceSet


def collector_inputs(ctx: MeshContext, proxy: Proxy) -> tuple[object, ...]:
    tracing = proxy.tracing
    return (proxy.dataplane, tracing.backend if tracing is not None else None)


def generate_tracing(ctx: MeshContext, proxy: Proxy, cache: ResourceInterner) -> ResourceSet:
    resources = ResourceSet()
    tracing = proxy.tracing
    if tracing is not None:
        ipv6 = ":" in proxy.dataplane.spec.networking.address
        resources.add(cache.shared(types.CLUSTER_TYPE, ("collector", tracing.backend, ipv6),
                                   build_collector_cluster, tracing, ipv6))
    return resources
