"""ClusterLoadAssignment builder for EDS service clusters.

Endpoints are grouped by `kuma.io/zone` into localities, each with `load_balancing_weight: 1`: proxyless
gRPC clients (xDS in grpc-go/grpc-java) drop localities without a weight, and Envoy ignores the weight
unless locality-weighted balancing is on, so setting it costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.endpoint.v3 import endpoint_pb2

from controlplane.xds.generate.context import Endpoint
from controlplane.xds.generate.listeners import socket_address


def build_load_assignment(
    cluster_name: str, endpoints: Sequence[Endpoint]
) -> endpoint_pb2.ClusterLoadAssignment:
    """All endpoints of a service; an empty assignment is still emitted so EDS never waits on a missing name."""
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster_name)
    for zone in sorted({endpoint.zone for endpoint in endpoints}):
        locality = assignment.endpoints.add()
        locality.locality.SetInParent()  # present even without a zone: gRPC keys localities by it
        locality.locality.zone = zone
        locality.load_balancing_weight.value = 1
        for endpoint in endpoints:
            if endpoint.zone == zone:
                lb_endpoint = locality.lb_endpoints.add()
                lb_endpoint.endpoint.address.CopyFrom(socket_address(endpoint.address, endpoint.port))
                lb_endpoint.load_balancing_weight.value = 1
    return assignment
