"""Envoy resource names (reference/kuma-tracing.md §4.4)."""

from __future__ import annotations

from controlplane.xds.generate import names


def test_listener_names() -> None:
    assert names.inbound_listener_name("192.168.0.1", 80) == "inbound:192.168.0.1:80"
    assert names.inbound_listener_name("fd00::1", 80) == "inbound:[fd00::1]:80"
    assert names.outbound_listener_name("127.0.0.1", 10001) == "outbound:127.0.0.1:10001"
    assert names.outbound_listener_name("::1", 10001) == "outbound:[::1]:10001"


def test_cluster_names() -> None:
    assert names.local_cluster_name(8080) == "localhost:8080"
    assert names.service_cluster_name("backend") == "backend"
    assert names.tracing_cluster_name("zipkin") == "tracing:zipkin"


def test_route_and_virtual_host_names() -> None:
    assert names.inbound_route_name("web") == "inbound:web"
    assert names.inbound_route_name("web", 8080) == "inbound:web:8080"
    assert names.outbound_route_name("backend") == "outbound:backend"
    assert names.virtual_host_name("backend") == "backend"


def test_stat_names() -> None:
    assert names.inbound_stat_prefix(8080) == "localhost_8080"
    assert names.outbound_stat_prefix("backend.svc:80") == "backend_svc_80"
    assert names.stat_name("tracing:zipkin") == "tracing_zipkin"
