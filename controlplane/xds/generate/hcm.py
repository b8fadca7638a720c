"""HttpConnectionManager and RouteConfiguration builders.

Routes are delivered over RDS (HCM `rds` with an ADS config source), not inline `route_config` as Kuma
does: it keeps listeners small and unchanged when only routing changes, and it exercises the ADS server's
RDS path (LDS before RDS ordering, named subscriptions) with real Envoys. The rejected alternative, inline
routes, would make every route change a listener drain.
"""

from __future__ import annotations

from collections.abc import Callable

from envoy.config.core.v3 import config_source_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from google.protobuf import any_pb2

from controlplane.xds import types

HcmConfigurer = Callable[[hcm_pb2.HttpConnectionManager], None]


def _packed_router() -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(router_pb2.Router())
    return packed


_ROUTER_CONFIG = _packed_router()


def build_hcm(*configurers: HcmConfigurer) -> hcm_pb2.HttpConnectionManager:
    """Create an HCM, apply configurers, then append the router (it must be the last HTTP filter)."""
    hcm = hcm_pb2.HttpConnectionManager()
    for configure in configurers:
        configure(hcm)
    hcm.http_filters.add(name=types.ROUTER).typed_config.CopyFrom(_ROUTER_CONFIG)
    if not hcm.stat_prefix:
        raise ValueError("HttpConnectionManager has no stat_prefix")
    if not hcm.HasField("rds"):
        raise ValueError("HttpConnectionManager has no route configuration")
    return hcm


def stat_prefix(prefix: str) -> HcmConfigurer:
    def configure(hcm: hcm_pb2.HttpConnectionManager) -> None:
        hcm.stat_prefix = prefix

    return configure


def rds(route_config_name: str) -> HcmConfigurer:
    """Fetch the named RouteConfiguration over the same ADS stream (v3 resources)."""

    def configure(hcm: hcm_pb2.HttpConnectionManager) -> None:
        hcm.rds.route_config_name = route_config_name
        hcm.rds.config_source.ads.SetInParent()
        hcm.rds.config_source.resource_api_version = config_source_pb2.V3

    return configure


def build_route_configuration(name: str, virtual_host: str, cluster: str) -> route_pb2.RouteConfiguration:
    """One virtual host matching any authority, sending every path to `cluster` (Kuma's default route)."""
    route = route_components_pb2.Route(
        match=route_components_pb2.RouteMatch(prefix="/"),
        route=route_components_pb2.RouteAction(cluster=cluster),
    )
    host = route_components_pb2.VirtualHost(name=virtual_host, domains=["*"], routes=[route])
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=[host])
