"""OpenTelemetry tracing backend: OTLP to a collector, with `envoy.tracers.opentelemetry`.

Kuma's MeshTrace OpenTelemetry backend (reference kuma-meshtrace.md §4.3–4.4): OTLP over gRPC,
`grpc_service.envoy_grpc.cluster_name` = the collector cluster and `service_name` = the proxy's service, on
an HTTP/2 collector cluster (`host:port`, default port 4317). Beyond Kuma 2.11 (Kuma 2.14 does the same for
its backend resource): an endpoint written as an `http://` / `https://` URL exports OTLP over HTTP with
Envoy's `http_service` (`http_uri` = that URL, 10 s timeout, as Kuma 2.14), to a plain HTTP/1.1 cluster, TLS
for https. Only MeshTrace selects this backend: the Mesh's TrafficTrace-era backends are zipkin and datadog,
so it is not a `MeshBackendType` and a Mesh naming it gets Kuma's "unknown backend type" message.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import grpc_service_pb2, http_service_pb2, http_uri_pb2
from envoy.config.trace.v3 import opentelemetry_pb2
from google.protobuf import any_pb2, duration_pb2

from controlplane.resources.urls import parse_endpoint
from controlplane.tracing.backend import CollectorConf, HcmSite
from controlplane.xds.generate.clusters import build_cluster, http2_upstream, provided_endpoint, tls_upstream

TYPE: Final = "opentelemetry"
TRACER: Final = "envoy.tracers.opentelemetry"
HTTP_TIMEOUT_S: Final = 10


@dataclass(frozen=True, slots=True)
class OpenTelemetryConf(CollectorConf):
    """Where the collector listens; `http_uri` set = OTLP over HTTP to that URL, else OTLP over gRPC."""

    host: str
    port: int
    http_uri: str = ""
    secure: bool = False

    @classmethod
    def from_endpoint(cls, endpoint: str) -> OpenTelemetryConf:
        """A validated MeshTrace `openTelemetry.endpoint` (ValueError if it is not one)."""
        parsed = parse_endpoint(endpoint)
        if parsed is None:
            raise ValueError(f"not an OpenTelemetry endpoint: {endpoint!r}")
        return cls(parsed.host, parsed.port, parsed.http_uri, parsed.secure)


class OpenTelemetry:
    """`BackendType` for OpenTelemetry."""

    type_name: Final = TYPE
    tracer_name: Final = TRACER
    def cluster(self, name: str, conf: CollectorConf, *, ipv6_dataplane: bool) -> cluster_pb2.Cluster:
        otel = _own(conf)
        if otel.http_uri:
            configurers = [provided_endpoint(otel.host, otel.port, ipv6_dataplane)]
            if otel.secure:
                configurers.append(tls_upstream(otel.host))
            return build_cluster(name, *configurers)
        return build_cluster(name, http2_upstream(), provided_endpoint(otel.host, otel.port, ipv6_dataplane))

    def provider(self, cluster: str, conf: CollectorConf, site: HcmSite) -> opentelemetry_pb2.OpenTelemetryConfig:
        otel = _own(conf)
        if otel.http_uri:
            uri = http_uri_pb2.HttpUri(uri=otel.http_uri, cluster=cluster,
                                       timeout=duration_pb2.Duration(seconds=HTTP_TIMEOUT_S))
            return opentelemetry_pb2.OpenTelemetryConfig(
                http_service=http_service_pb2.HttpService(http_uri=uri), service_name=site.service)
        grpc = grpc_service_pb2.GrpcService(envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=cluster))
        return opentelemetry_pb2.OpenTelemetryConfig(grpc_service=grpc, service_name=site.service)

    def site_key(self, conf: CollectorConf, site: HcmSite) -> Hashable:
        return site.service

    def referenced_clusters(self, typed_config: any_pb2.Any) -> tuple[str, ...]:
        provider = opentelemetry_pb2.OpenTelemetryConfig()
        if not typed_config.Unpack(provider):
            return ()
        if provider.HasField("http_service"):
            return (str(provider.http_service.http_uri.cluster),)
        cluster = str(provider.grpc_service.envoy_grpc.cluster_name)
        return (cluster,) if cluster else ()


def _own(conf: CollectorConf) -> OpenTelemetryConf:
    if not isinstance(conf, OpenTelemetryConf):
        raise TypeError(f"opentelemetry backend given a {type(conf).__name__}")
    return conf


OPENTELEMETRY: Final = OpenTelemetry()
