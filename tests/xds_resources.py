"""Small Envoy resources for the snapshot, cache and ADS protocol tests.

Independent of controlplane/xds/generate on purpose: protocol tests must not change when generation does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.config.trace.v3 import http_tracer_pb2, zipkin_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message

from controlplane.tracing import zipkin as zipkin_tracer
from controlplane.xds import types
from controlplane.xds.snapshot import Snapshot

CDS = types.CLUSTER_TYPE
EDS = types.ENDPOINT_TYPE
LDS = types.LISTENER_TYPE
RDS = types.ROUTE_TYPE

MESSAGE_CLASSES: Mapping[str, type[Message]] = {
    CDS: cluster_pb2.Cluster,
    EDS: endpoint_pb2.ClusterLoadAssignment,
    LDS: listener_pb2.Listener,
    RDS: route_pb2.RouteConfiguration,
}


def pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def ads_source() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(), resource_api_version=config_source_pb2.V3
    )


def cluster(name: str, *, eds: bool = True, connect_timeout_ms: int = 1000,
            service_name: str = "") -> cluster_pb2.Cluster:
    result = cluster_pb2.Cluster(
        name=name, connect_timeout=duration_pb2.Duration(nanos=connect_timeout_ms * 1_000_000 % 10**9,
                                                         seconds=connect_timeout_ms // 1000)
    )
    if eds:
        result.type = cluster_pb2.Cluster.EDS
        result.eds_cluster_config.eds_config.CopyFrom(ads_source())
        result.eds_cluster_config.service_name = service_name
    else:
        result.type = cluster_pb2.Cluster.STATIC
        result.load_assignment.CopyFrom(cla(name, 9999))
    return result


def cla(name: str, *ports: int, address: str = "127.0.0.1") -> endpoint_pb2.ClusterLoadAssignment:
    endpoints = [
        endpoint_components_pb2.LbEndpoint(
            endpoint=endpoint_components_pb2.Endpoint(
                address=address_pb2.Address(
                    socket_address=address_pb2.SocketAddress(address=address, port_value=port)
                )
            )
        )
        for port in ports
    ]
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=name, endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=endpoints)]
    )


def route_config(name: str, cluster_name: str) -> route_pb2.RouteConfiguration:
    route = route_components_pb2.Route(
        match=route_components_pb2.RouteMatch(prefix="/"),
        route=route_components_pb2.RouteAction(cluster=cluster_name),
    )
    return route_pb2.RouteConfiguration(
        name=name, virtual_hosts=[route_components_pb2.VirtualHost(name=name, domains=["*"], routes=[route])]
    )


def _listener(name: str, port: int, network_filter: listener_components_pb2.Filter) -> listener_pb2.Listener:
    return listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address="127.0.0.1",
                                                                              port_value=port)),
        filter_chains=[listener_components_pb2.FilterChain(filters=[network_filter])],
    )


def http_listener(name: str, port: int, route_name: str, *,
                  zipkin_cluster: str = "") -> listener_pb2.Listener:
    """Listener whose HCM takes its routes from RDS over ADS (optionally with a zipkin tracer)."""
    hcm = hcm_pb2.HttpConnectionManager(
        stat_prefix=name,
        rds=hcm_pb2.Rds(route_config_name=route_name, config_source=ads_source()),
        http_filters=[hcm_pb2.HttpFilter(name=types.ROUTER, typed_config=pack(router_pb2.Router()))],
    )
    if zipkin_cluster:
        zipkin = zipkin_pb2.ZipkinConfig(collector_cluster=zipkin_cluster, collector_endpoint="/api/v2/spans")
        hcm.tracing.provider.CopyFrom(
            http_tracer_pb2.Tracing.Http(name=zipkin_tracer.TRACER, typed_config=pack(zipkin))
        )
    return _listener(name, port, listener_components_pb2.Filter(name=types.HTTP_CONNECTION_MANAGER,
                                                                typed_config=pack(hcm)))


def tcp_listener(name: str, port: int, cluster_name: str) -> listener_pb2.Listener:
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=name, cluster=cluster_name)
    return _listener(name, port, listener_components_pb2.Filter(name=types.TCP_PROXY, typed_config=pack(proxy)))


def config(*, clusters: Iterable[str] = ("c1",), listeners: Iterable[tuple[str, str]] = (("l1", "r1"),),
           routes: Mapping[str, str] | None = None, endpoint_ports: Mapping[str, int] | None = None,
           connect_timeout_ms: int = 1000) -> dict[str, dict[str, Message]]:
    """A consistent resource map: EDS clusters with one endpoint each, HTTP listeners with RDS routes.

    `listeners` are (listener name, route name); `routes` maps route name → cluster (default: first cluster).
    """
    names = list(clusters)
    ports = endpoint_ports or {}
    listener_list = list(listeners)
    route_map = routes if routes is not None else {route: names[0] for _, route in listener_list}
    return {
        CDS: {name: cluster(name, connect_timeout_ms=connect_timeout_ms) for name in names},
        EDS: {name: cla(name, ports.get(name, 8080)) for name in names},
        LDS: {name: http_listener(name, 10000 + i, route) for i, (name, route) in enumerate(listener_list)},
        RDS: {name: route_config(name, target) for name, target in route_map.items()},
    }


def snapshot(**kwargs: object) -> Snapshot:
    return Snapshot.build(config(**kwargs))  # type: ignore[arg-type]


def resource_name(packed: any_pb2.Any) -> str:
    """Name of a packed CDS/EDS/LDS/RDS resource."""
    message = MESSAGE_CLASSES[packed.type_url]()
    packed.Unpack(message)
    if isinstance(message, endpoint_pb2.ClusterLoadAssignment):
        return str(message.cluster_name)
    return str(message.name)  # type: ignore[attr-defined]


def unpack(packed: any_pb2.Any) -> Message:
    message = MESSAGE_CLASSES[packed.type_url]()
    packed.Unpack(message)
    return message

NODE = "default.web-1"
OTHER_NODE = "default.backend-1"
