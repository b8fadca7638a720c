"""Tracing generator: one `tracing:<backend>` cluster when the proxy's tracing resolves to a backend
(Kuma's `tracing_proxy_generator.go`, reference §3.3), nothing otherwise.

The cluster is emitted regardless of listener protocols, so a TCP-only proxy still gets it, as in Kuma.
The HCM tracing blocks are set by the listener generators through `tracer.tracing(...)`.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2

from controlplane.policy import datadog_config, zipkin_config
from controlplane.policy.tracing import DATADOG, ZIPKIN
from controlplane.resources.generated import mesh_pb2
from controlplane.xds.generate import names
from controlplane.xds.generate.clusters import build_cluster, provided_endpoint, tls_upstream
from controlplane.xds.generate.context import MeshContext, Proxy
from controlplane.xds.generate.resource_set import ResourceSet
from controlplane.xds.generate.tracer import parse_zipkin_url


def generate_tracing(ctx: MeshContext, proxy: Proxy) -> ResourceSet:
    resources = ResourceSet()
    backend = proxy.tracing.backend
    if backend is not None:
        ipv6 = ":" in proxy.dataplane.spec.networking.address
        key = ("tracing-cluster", backend.SerializeToString(deterministic=True), ipv6)
        resources.add(ctx.memo(key, build_tracing_cluster, backend, ipv6))
    return resources


def build_tracing_cluster(
    backend: mesh_pb2.TracingBackend, ipv6_dataplane: bool = False
) -> cluster_pb2.Cluster:
    """The collector cluster: zipkin's URL host/port (TLS for https), or datadog's address/port (plaintext)."""
    name = names.tracing_cluster_name(backend.name)
    if backend.type == ZIPKIN:
        url = parse_zipkin_url(zipkin_config(backend).url)
        configurers = [provided_endpoint(url.host, url.port, ipv6_dataplane)]
        if url.secure:
            configurers.append(tls_upstream(url.host))
        return build_cluster(name, *configurers)
    if backend.type == DATADOG:
        config = datadog_config(backend)
        if not 1 <= config.port <= 65535:
            raise ValueError(f"invalid Datadog port number {config.port}. Must be in range 1-65535")
        return build_cluster(name, provided_endpoint(config.address, config.port, ipv6_dataplane))
    raise ValueError(f"tracing backend {backend.name!r} has unsupported type {backend.type!r}")
