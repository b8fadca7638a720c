"""Whole-snapshot properties: determinism, internal consistency, error wrapping, ResourceSet rules."""

from __future__ import annotations

import random

import pytest
from builders import dataplane, inbound, mesh, outbound, traffic_trace, zipkin_backend
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from controlplane.errors import GenerationError
from controlplane.resources.model import Resource
from controlplane.xds import types
from controlplane.xds.generate.context import build_mesh_context, build_proxy
from controlplane.xds.generate.generators import generate_snapshot
from controlplane.xds.generate.resource_set import DuplicateResourceError, ResourceSet

MESH = mesh(backends=[zipkin_backend(sampling=50.0)], default_backend="zipkin")


def _mesh_dataplanes() -> list[Resource]:
    web = dataplane(
        "web-1",
        inbounds=[inbound(18080, "web", service_port=8080), inbound(18081, "web-admin", protocol="tcp")],
        outbounds=[outbound(10001, "backend"), outbound(10002, "db"), outbound(10003, "nobody")],
    )
    backends = [dataplane(f"backend-{i}", f"10.0.0.{i}", [inbound(9090, "backend")]) for i in range(1, 4)]
    db = dataplane("db-1", "10.0.1.1", [inbound(5432, "db", protocol="tcp")])
    return [web, *backends, db]


def _snapshot(dataplanes: list[Resource], traces: list[Resource] | None = None) -> ResourceSet:
    ctx = build_mesh_context(MESH, traces if traces is not None else [traffic_trace()], dataplanes)
    web = next(d for d in dataplanes if d.name == "web-1")
    return generate_snapshot(ctx, build_proxy(ctx, web))


def _serialised(resources: ResourceSet) -> list[tuple[str, str, bytes]]:
    return [
        (type_url, name, message.SerializeToString(deterministic=True))
        for type_url, by_name in resources.items()
        for name, message in by_name.items()
    ]


def test_output_does_not_depend_on_input_order() -> None:
    dataplanes = _mesh_dataplanes()
    expected = _serialised(_snapshot(dataplanes))
    shuffled = dataplanes[:]
    random.Random(7).shuffle(shuffled)
    assert _serialised(_snapshot(shuffled)) == expected


def test_types_iterate_in_ads_order_and_names_sorted() -> None:
    resources = _snapshot(_mesh_dataplanes())
    assert list(resources) == list(types.ADS_ORDER)
    for by_name in resources.values():
        assert list(by_name) == sorted(by_name)


def _filter_configs(
    listener: listener_pb2.Listener,
) -> list[hcm_pb2.HttpConnectionManager | tcp_proxy_pb2.TcpProxy]:
    configs: list[hcm_pb2.HttpConnectionManager | tcp_proxy_pb2.TcpProxy] = []
    for chain in listener.filter_chains:
        for network_filter in chain.filters:
            config = (
                hcm_pb2.HttpConnectionManager()
                if network_filter.name == types.HTTP_CONNECTION_MANAGER
                else tcp_proxy_pb2.TcpProxy()
            )
            assert network_filter.typed_config.Unpack(config)
            configs.append(config)
    return configs


def test_snapshot_is_consistent() -> None:
    """Every referenced cluster, route and EDS assignment exists (what the cache's consistency check needs)."""
    resources = _snapshot(_mesh_dataplanes())
    clusters = resources[types.CLUSTER_TYPE]
    routes: dict[str, route_pb2.RouteConfiguration] = dict(resources[types.ROUTE_TYPE])  # type: ignore[arg-type]
    wanted_clusters: set[str] = set()
    wanted_routes: set[str] = set()
    for listener in resources[types.LISTENER_TYPE].values():
        for config in _filter_configs(listener):  # type: ignore[arg-type]
            if isinstance(config, tcp_proxy_pb2.TcpProxy):
                wanted_clusters.add(config.cluster)
            else:
                wanted_routes.add(config.rds.route_config_name)
                if config.HasField("tracing"):
                    wanted_clusters.add("tracing:zipkin")
    for route in routes.values():
        wanted_clusters.update(r.route.cluster for vh in route.virtual_hosts for r in vh.routes)
    assert wanted_routes == set(routes)
    assert wanted_clusters == set(clusters)
    eds = {name for name, c in clusters.items() if c.type == cluster_pb2.Cluster.EDS}  # type: ignore[attr-defined]
    assert eds == set(resources[types.ENDPOINT_TYPE])


def test_destination_without_endpoints_is_tcp_with_empty_assignment() -> None:
    resources = _snapshot(_mesh_dataplanes())
    assert resources[types.ENDPOINT_TYPE]["nobody"] == endpoint_pb2.ClusterLoadAssignment(
        cluster_name="nobody"
    )
    (config,) = _filter_configs(resources[types.LISTENER_TYPE]["outbound:127.0.0.1:10003"])  # type: ignore[arg-type]
    assert config == tcp_proxy_pb2.TcpProxy(stat_prefix="nobody", cluster="nobody")


def test_one_service_on_two_app_ports_gets_two_routes() -> None:
    web = dataplane(
        inbounds=[inbound(18080, "web", service_port=8080), inbound(18081, "web", service_port=8081)]
    )
    resources = _snapshot([web])
    assert set(resources[types.ROUTE_TYPE]) == {"inbound:web:8080", "inbound:web:8081"}


def test_no_traffic_trace_means_no_tracing_anywhere() -> None:
    resources = _snapshot(_mesh_dataplanes(), traces=[])
    assert "tracing:zipkin" not in resources[types.CLUSTER_TYPE]
    for listener in resources[types.LISTENER_TYPE].values():
        for config in _filter_configs(listener):  # type: ignore[arg-type]
            assert not (isinstance(config, hcm_pb2.HttpConnectionManager) and config.HasField("tracing"))


def test_outbound_without_service_is_a_generation_error() -> None:
    web = dataplane(inbounds=[inbound()], outbounds=[{"port": 10001, "tags": {"team": "x"}}])
    with pytest.raises(GenerationError) as raised:
        _snapshot([web])
    assert (raised.value.generator, raised.value.proxy) == ("outbound", "default.web-1")


def test_conflicting_outbound_ports_are_a_generation_error() -> None:
    web = dataplane(inbounds=[inbound()], outbounds=[outbound(10001, "a"), outbound(10001, "b")])
    with pytest.raises(
        GenerationError, match="two different Listener resources named 'outbound:127.0.0.1:10001'"
    ):
        _snapshot([web])


def test_resource_set_accepts_identical_duplicates_only() -> None:
    resources = ResourceSet().add(cluster_pb2.Cluster(name="a"), cluster_pb2.Cluster(name="a"))
    assert resources.names(types.CLUSTER_TYPE) == ("a",)
    with pytest.raises(DuplicateResourceError):
        resources.add(cluster_pb2.Cluster(name="a", alt_stat_name="other"))


def test_endpoint_is_where_the_inbound_listens() -> None:
    """An inbound with its own address listens there (inbound listener), so clients must connect there, as
    Kuma's ToInboundInterface does; an unspecified listen address falls back to networking.address."""
    web = dataplane(inbounds=[inbound()], outbounds=[outbound(10001, "backend")])
    own = dataplane("backend-1", "10.0.0.1", [inbound(9090, "backend", address="10.0.0.9")])
    anywhere = dataplane("backend-2", "10.0.0.2", [inbound(9090, "backend", address="0.0.0.0")])
    resources = _snapshot([web, own, anywhere])
    cla = resources[types.ENDPOINT_TYPE]["backend"]
    addresses = [
        (e.endpoint.address.socket_address.address, e.endpoint.address.socket_address.port_value)
        for locality in cla.endpoints  # type: ignore[attr-defined]
        for e in locality.lb_endpoints
    ]
    assert addresses == [("10.0.0.2", 9090), ("10.0.0.9", 9090)]
