"""xDS constants shared by generation, the snapshot cache and the ADS server: type URLs, ADS order, and the
Envoy extension names we emit.

Constants only (no logic, no imports of other project modules), so every layer can depend on it without
creating a cycle.
"""

from __future__ import annotations

from typing import Final

_PREFIX: Final = "type.googleapis.com/"

CLUSTER_TYPE: Final = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT_TYPE: Final = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER_TYPE: Final = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE_TYPE: Final = _PREFIX + "envoy.config.route.v3.RouteConfiguration"

# ADS ordering (xDS protocol "Eventual consistency considerations"): CDS before EDS so clusters do not warm
# forever, LDS before RDS so a listener's route config is requested only once the listener exists.
ADS_ORDER: Final[tuple[str, ...]] = (CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE)

# Network and HTTP filters.
HTTP_CONNECTION_MANAGER: Final = "envoy.filters.network.http_connection_manager"
TCP_PROXY: Final = "envoy.filters.network.tcp_proxy"
ROUTER: Final = "envoy.filters.http.router"

# Transport sockets and upstream protocol options.
TLS_TRANSPORT_SOCKET: Final = "envoy.transport_sockets.tls"
HTTP_PROTOCOL_OPTIONS: Final = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
