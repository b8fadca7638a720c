"""Cluster builder and configurers: local application clusters, EDS service clusters, tracing clusters.

Connect timeout is Kuma's ≥ 2.6 default (5 s). Hostnames get STRICT_DNS and IP literals STATIC, like
Kuma's `ProvidedEndpointCluster` (reference §3.3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2, protocol_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import any_pb2

from controlplane.resources.addresses import is_ip
from controlplane.xds import types
from controlplane.xds.generate import names
from controlplane.xds.generate.listeners import socket_address

ClusterConfigurer = Callable[[cluster_pb2.Cluster], None]

CONNECT_TIMEOUT_SECONDS: Final = 5


def build_cluster(name: str, *configurers: ClusterConfigurer) -> cluster_pb2.Cluster:
    """Create a Cluster with Kuma's connect timeout and stat name, apply configurers, check invariants."""
    cluster = cluster_pb2.Cluster(name=name, alt_stat_name=names.stat_name(name))
    cluster.connect_timeout.seconds = CONNECT_TIMEOUT_SECONDS
    for configure in configurers:
        configure(cluster)
    if not cluster.HasField("type"):
        raise ValueError(f"cluster {name!r} has no discovery type")
    if cluster.type != cluster_pb2.Cluster.EDS and not cluster.HasField("load_assignment"):
        raise ValueError(f"cluster {name!r} has no endpoints")
    return cluster


def provided_endpoint(host: str, port: int, ipv6_dataplane: bool = False) -> ClusterConfigurer:
    """One fixed endpoint: STATIC for an IP literal, STRICT_DNS (V4_ONLY, or AUTO on IPv6 dataplanes) otherwise."""

    def configure(cluster: cluster_pb2.Cluster) -> None:
        if is_ip(host):
            cluster.type = cluster_pb2.Cluster.STATIC
        else:
            cluster.type = cluster_pb2.Cluster.STRICT_DNS
            cluster.dns_lookup_family = (
                cluster_pb2.Cluster.AUTO if ipv6_dataplane else cluster_pb2.Cluster.V4_ONLY
            )
        cluster.load_assignment.cluster_name = cluster.name
        lb_endpoint = cluster.load_assignment.endpoints.add().lb_endpoints.add()
        lb_endpoint.endpoint.address.CopyFrom(socket_address(host, port))

    return configure


def eds() -> ClusterConfigurer:
    """Endpoints come over EDS on the same ADS stream, named like the cluster."""

    def configure(cluster: cluster_pb2.Cluster) -> None:
        cluster.type = cluster_pb2.Cluster.EDS
        cluster.eds_cluster_config.eds_config.ads.SetInParent()
        cluster.eds_cluster_config.eds_config.resource_api_version = config_source_pb2.V3

    return configure


def _http2_options() -> any_pb2.Any:
    options = http_protocol_options_pb2.HttpProtocolOptions(
        explicit_http_config=http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig(
            http2_protocol_options=protocol_pb2.Http2ProtocolOptions()
        )
    )
    packed = any_pb2.Any()
    packed.Pack(options)
    return packed


def http2_upstream(enabled: bool = True) -> ClusterConfigurer:
    """Speak HTTP/2 to the upstream (http2/grpc services); a no-op when `enabled` is false."""

    def configure(cluster: cluster_pb2.Cluster) -> None:
        if enabled:
            cluster.typed_extension_protocol_options[types.HTTP_PROTOCOL_OPTIONS].CopyFrom(_http2_options())

    return configure


def tls_upstream(host: str) -> ClusterConfigurer:
    """TLS to an https collector via a catch-all transport socket match, as Kuma does (§3.3).

    SNI only for DNS names, allow_renegotiation, and no CA validation (Kuma's behaviour; a CA option would
    need a Mesh schema field Kuma does not have).
    """

    def configure(cluster: cluster_pb2.Cluster) -> None:
        context = tls_pb2.UpstreamTlsContext(sni="" if is_ip(host) else host, allow_renegotiation=True)
        match = cluster.transport_socket_matches.add(name=host)
        match.match.SetInParent()
        socket = base_pb2.TransportSocket(name=types.TLS_TRANSPORT_SOCKET)
        socket.typed_config.Pack(context)
        match.transport_socket.CopyFrom(socket)

    return configure
