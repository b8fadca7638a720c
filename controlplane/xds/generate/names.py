"""Every Envoy resource name and stat prefix the generators emit (Kuma's `resource_names.go`, §4.4).

Generators never format names inline: a listener's reference to a cluster and the cluster itself both come
from here, so they cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Final

_ILLEGAL_STAT_CHARS: Final = re.compile(r"[^a-zA-Z0-9_\-]")


def join_host_port(host: str, port: int) -> str:
    """Go's net.JoinHostPort: IPv6 literals are bracketed so the port stays unambiguous."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def inbound_listener_name(address: str, port: int) -> str:
    return f"inbound:{join_host_port(address, port)}"


def outbound_listener_name(address: str, port: int) -> str:
    return f"outbound:{join_host_port(address, port)}"


def local_cluster_name(service_port: int) -> str:
    """Cluster for the application behind an inbound: `localhost:<servicePort>`."""
    return f"localhost:{service_port}"


def service_cluster_name(service: str) -> str:
    """EDS cluster (and its ClusterLoadAssignment) of a destination service."""
    return service


def tracing_cluster_name(backend: str) -> str:
    return f"tracing:{backend}"


def inbound_route_name(service: str, service_port: int | None = None) -> str:
    """`inbound:<service>`; the port is appended only to tell apart inbounds of one service that reach
    different application ports (their routes differ, so they cannot share one RDS name)."""
    return f"inbound:{service}" if service_port is None else f"inbound:{service}:{service_port}"


def outbound_route_name(service: str) -> str:
    return f"outbound:{service}"


def virtual_host_name(service: str) -> str:
    return service


def stat_name(name: str) -> str:
    """Kuma's SanitizeMetric: anything outside [a-zA-Z0-9_-] becomes '_' (`localhost:8080` → `localhost_8080`).

    Dots would otherwise split Envoy's stat tree, and ':' breaks Prometheus-style stat parsing.
    """
    return _ILLEGAL_STAT_CHARS.sub("_", name)


def inbound_stat_prefix(service_port: int) -> str:
    return stat_name(local_cluster_name(service_port))


def outbound_stat_prefix(service: str) -> str:
    return stat_name(service)
