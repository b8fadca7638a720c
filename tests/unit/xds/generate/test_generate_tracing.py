"""The tracing block and tracing cluster against hand-built messages from reference/kuma-tracing.md §3.2/§3.3
(Kuma's tracing_configurer_test.go and tracing_proxy_generator_test.go goldens), compared whole.
"""

from __future__ import annotations

import pytest
from builders import datadog_backend, dataplane, inbound, mesh, traffic_trace, zipkin_backend
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.trace.v3 import datadog_pb2, http_tracer_pb2, zipkin_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.protobuf.message import Message

from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.policies.traffictrace.plugin import effective_tracing
from controlplane.resources.generated import mesh_pb2
from controlplane.tracing.backend import Direction, EffectiveTracing, HcmSite
from controlplane.tracing.block import build_collector_cluster, build_tracing_block
from controlplane.xds import types
from controlplane.xds.generate.context import build_mesh_context, build_proxy
from controlplane.xds.generate.generators import generate_snapshot


def _tracing(backend: mesh_pb2.TracingBackend) -> EffectiveTracing:
    tracing = effective_tracing(backend)
    assert tracing is not None
    return tracing


def build_tracing(backend: mesh_pb2.TracingBackend, service: str, direction: Direction,
                  destination: str = "") -> hcm_pb2.HttpConnectionManager.Tracing:
    """The block a TrafficTrace with this Mesh backend gives one HCM."""
    return build_tracing_block(_tracing(backend), HcmSite(service, direction, destination))


def build_tracing_cluster(backend: mesh_pb2.TracingBackend, ipv6_dataplane: bool = False) -> cluster_pb2.Cluster:
    return build_collector_cluster(_tracing(backend), ipv6_dataplane)


def _any(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _expected_block(
    name: str, provider: Message, sampling: float | None
) -> hcm_pb2.HttpConnectionManager.Tracing:
    block = hcm_pb2.HttpConnectionManager.Tracing(
        provider=http_tracer_pb2.Tracing.Http(name=name, typed_config=_any(provider)),
        spawn_upstream_span=wrappers_pb2.BoolValue(value=False),
    )
    if sampling is not None:
        block.overall_sampling.CopyFrom(percent_pb2.Percent(value=sampling))
    return block


ZIPKIN_PROVIDER = zipkin_pb2.ZipkinConfig(
    collector_cluster="tracing:zipkin",
    collector_endpoint="/v2/spans",
    collector_hostname="zipkin.us:9090",
    collector_endpoint_version=zipkin_pb2.ZipkinConfig.HTTP_JSON,
)


@pytest.mark.parametrize("sampling", [30.5, None], ids=["sampling-30.5", "sampling-unset"])
def test_zipkin_block(sampling: float | None) -> None:
    backend = zipkin_backend("zipkin", "http://zipkin.us:9090/v2/spans", sampling=sampling)
    expected = _expected_block("envoy.tracers.zipkin", ZIPKIN_PROVIDER, sampling)
    assert build_tracing(backend, "web", Direction.INBOUND) == expected


def test_zipkin_block_all_options() -> None:
    backend = zipkin_backend(
        "zipkin",
        "http://zipkin.us:9090/v2/spans?x=1#f",
        traceId128bit=True,
        apiVersion="httpProto",
        sharedSpanContext=False,
    )
    provider = zipkin_pb2.ZipkinConfig()
    provider.CopyFrom(ZIPKIN_PROVIDER)
    provider.trace_id_128bit = True
    provider.collector_endpoint_version = zipkin_pb2.ZipkinConfig.HTTP_PROTO
    provider.shared_span_context.CopyFrom(wrappers_pb2.BoolValue(value=False))
    assert build_tracing(backend, "web", Direction.OUTBOUND, "db") == _expected_block(
        "envoy.tracers.zipkin", provider, None
    )


@pytest.mark.parametrize("api_version", ["", "httpJson", "httpJsonV1"])
def test_zipkin_json_versions_map_to_http_json(api_version: str) -> None:
    conf = {"apiVersion": api_version} if api_version else {}
    block = build_tracing(zipkin_backend(**conf), "web", Direction.INBOUND)
    provider = zipkin_pb2.ZipkinConfig()
    block.provider.typed_config.Unpack(provider)
    assert provider.collector_endpoint_version == zipkin_pb2.ZipkinConfig.HTTP_JSON


@pytest.mark.parametrize(
    ("split", "direction", "service_name"),
    [
        (False, Direction.INBOUND, "service"),
        (False, Direction.OUTBOUND, "service"),
        (True, Direction.UNSPECIFIED, "service"),
        (True, Direction.INBOUND, "service_INBOUND"),
        (True, Direction.OUTBOUND, "service_OUTBOUND_db"),
    ],
    ids=["inbound", "outbound", "split-unspecified", "split-inbound", "split-outbound"],
)
def test_datadog_block(split: bool, direction: Direction, service_name: str) -> None:
    backend = datadog_backend("datadog", "1.1.1.1", 1111, sampling=100.0, splitService=split)
    provider = datadog_pb2.DatadogConfig(collector_cluster="tracing:datadog", service_name=service_name)
    expected = _expected_block("envoy.tracers.datadog", provider, 100.0)
    assert build_tracing(backend, "service", direction, "db") == expected


def _expected_cluster(name: str, host: str, port: int, discovery: int) -> cluster_pb2.Cluster:
    socket = address_pb2.Address(socket_address=address_pb2.SocketAddress(address=host, port_value=port))
    cluster = cluster_pb2.Cluster(
        name=name,
        alt_stat_name=name.replace(":", "_"),
        type=discovery,
        connect_timeout=duration_pb2.Duration(seconds=5),
        load_assignment=endpoint_pb2.ClusterLoadAssignment(
            cluster_name=name,
            endpoints=[
                endpoint_components_pb2.LocalityLbEndpoints(
                    lb_endpoints=[
                        endpoint_components_pb2.LbEndpoint(
                            endpoint=endpoint_components_pb2.Endpoint(address=socket)
                        )
                    ]
                )
            ],
        ),
    )
    if discovery == cluster_pb2.Cluster.STRICT_DNS:
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_ONLY
    return cluster


def test_zipkin_cluster() -> None:
    expected = _expected_cluster("tracing:zipkin", "zipkin.us", 9090, cluster_pb2.Cluster.STRICT_DNS)
    assert build_tracing_cluster(zipkin_backend("zipkin", "http://zipkin.us:9090/v2/spans")) == expected


def test_zipkin_https_cluster() -> None:
    expected = _expected_cluster("tracing:zipkin", "zipkin.us", 9090, cluster_pb2.Cluster.STRICT_DNS)
    tls = tls_pb2.UpstreamTlsContext(sni="zipkin.us", allow_renegotiation=True)
    match = expected.transport_socket_matches.add(name="zipkin.us")
    match.match.SetInParent()
    match.transport_socket.CopyFrom(
        base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=_any(tls))
    )
    assert build_tracing_cluster(zipkin_backend("zipkin", "https://zipkin.us:9090/v2/spans")) == expected


def test_datadog_cluster() -> None:
    expected = _expected_cluster("tracing:datadog", "localhost", 2304, cluster_pb2.Cluster.STRICT_DNS)
    assert build_tracing_cluster(datadog_backend("datadog", "localhost", 2304)) == expected


def test_ip_collector_is_static() -> None:
    expected = _expected_cluster("tracing:zipkin", "10.0.0.9", 9411, cluster_pb2.Cluster.STATIC)
    assert build_tracing_cluster(zipkin_backend("zipkin", "http://10.0.0.9:9411/api/v2/spans")) == expected


def test_ipv6_dataplane_resolves_auto() -> None:
    cluster = build_tracing_cluster(zipkin_backend(), ipv6_dataplane=True)
    assert cluster.dns_lookup_family == cluster_pb2.Cluster.AUTO


def test_ipv6_collector_url() -> None:
    backend = zipkin_backend("zipkin", "http://[fd00::9]:9411/api/v2/spans")
    provider = zipkin_pb2.ZipkinConfig()
    build_tracing(backend, "web", Direction.INBOUND).provider.typed_config.Unpack(provider)
    assert provider.collector_hostname == "[fd00::9]:9411"
    assert build_tracing_cluster(backend) == _expected_cluster(
        "tracing:zipkin", "fd00::9", 9411, cluster_pb2.Cluster.STATIC
    )


def test_a_stored_backend_that_no_longer_validates_traces_nothing_and_says_why() -> None:
    """The port is checked once, by validation; a stored Mesh that predates a rule is not traced (and not
    a generation error for every proxy), and the decision says why."""
    the_mesh = mesh(backends=[datadog_backend("datadog", port=70000)], default_backend="datadog")
    web = dataplane(inbounds=[inbound(protocol="tcp")])
    ctx = build_mesh_context(the_mesh, [traffic_trace()], [web])
    proxy = build_proxy(ctx, web)
    assert proxy.policies.decision(TRAFFIC_TRACE).reason == "backend_invalid"
    assert "tracing:datadog" not in generate_snapshot(ctx, proxy)[types.CLUSTER_TYPE]
