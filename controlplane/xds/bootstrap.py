"""Envoy v3 bootstrap for a sidecar that takes all its configuration from our ADS server.

Responsible for: the static part of an Envoy configuration — node identity, the ADS config source,
the static ``ads_cluster`` that reaches the control plane, the admin listener and the runtime layers.
Everything else (listeners, clusters, tracing) arrives over ADS.

Must not: touch the filesystem, start processes or know about meshes and policies. It returns a plain
dict (YAML/JSON-dumpable, proto3-JSON field names) so that tests, the CLI and docs can write it out as
they like; ``envoy --mode validate`` is the judge of its correctness (see tests/unit/xds/test_bootstrap.py).

Shape follows the ADS bootstrap observed with Envoy 1.40 (reference/xds-protocol.md, "[observed]" set-up).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

ADS_CLUSTER_NAME: Final = "ads_cluster"
"""Name of the static cluster pointing at the control plane (referenced by ``ads_config``)."""

_HTTP_PROTOCOL_OPTIONS: Final = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_UPSTREAM_TLS: Final = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


@dataclass(frozen=True, slots=True)
class ReconnectBackoff:
    """Jittered exponential back-off Envoy uses to re-open the ADS stream after it breaks.

    Envoy's default (when ``envoy_grpc.retry_policy`` is unset) is base 500 ms, max 30 s. That is fine
    in production; tests that restart the control plane want a shorter maximum so that Envoy comes
    back within their deadline instead of after up to 30 s.
    """

    base_s: float = 0.5
    max_s: float = 30.0


def build_bootstrap(
    *,
    node_id: str,
    service: str,
    cp_host: str,
    cp_port: int,
    admin_port: int = 0,
    delta: bool = False,
    runtime: Mapping[str, object] | None = None,
    reconnect_backoff: ReconnectBackoff | None = None,
    token: str | None = None,
    ca_cert_pem: str | None = None,
) -> dict[str, object]:
    """Build the bootstrap of one sidecar.

    ``node.cluster`` is the dataplane's identifying service because Envoy's zipkin tracer uses it as
    the span's local service name (reference/kuma-tracing.md §3.4), exactly as Kuma's bootstrap does.

    ``admin_port=0`` lets the kernel pick the admin port; pass ``--admin-address-path`` on Envoy's
    command line to learn it (the admin address file is a CLI flag, not a bootstrap field).

    ``runtime`` becomes a static runtime layer, e.g. ``{"tracing.zipkin.min_flush_spans": 1}`` to make
    zipkin flush every span at once instead of buffering 5 (or waiting for the 5 s flush timer).

    ``token`` (a dataplane token) is sent as gRPC initial metadata ``authorization: Bearer <token>`` on the
    ADS stream (`controlplane run --dataplane-auth token`). ``ca_cert_pem`` makes the ADS connection TLS,
    trusting only that CA and checking that the server certificate names ``cp_host``.
    """
    _check_port("cp_port", cp_port, lowest=1)
    _check_port("admin_port", admin_port, lowest=0)
    if reconnect_backoff is not None and not 0 < reconnect_backoff.base_s <= reconnect_backoff.max_s:
        raise ValueError("reconnect_backoff: need 0 < base_s <= max_s")
    ads_cluster = _ads_cluster(cp_host, cp_port)
    if ca_cert_pem is not None:
        ads_cluster["transport_socket"] = _tls_transport_socket(cp_host, ca_cert_pem)
    ads_config = _ads_config(delta, reconnect_backoff, token)
    return {
        "node": {"id": node_id, "cluster": service},
        "dynamic_resources": {
            "ads_config": ads_config,
            "cds_config": _ads_config_source(),
            "lds_config": _ads_config_source(),
        },
        "static_resources": {"clusters": [ads_cluster]},
        "admin": {"address": _socket_address("127.0.0.1", admin_port)},
        "layered_runtime": _layered_runtime(runtime or {}),
    }


def _ads_config(delta: bool, backoff: ReconnectBackoff | None, token: str | None) -> dict[str, object]:
    return {
        "api_type": "DELTA_GRPC" if delta else "GRPC",
        "transport_api_version": "V3",
        "grpc_services": [_grpc_service(backoff, token)],
        # The node is identical on every request of a stream; sending it once saves bytes on every
        # ACK. The server must therefore remember the node per stream (xds-protocol.md §1.3).
        "set_node_on_first_message_only": True,
    }


def _ads_config_source() -> dict[str, object]:
    """A fresh dict per use: shared sub-dicts would make yaml.safe_dump emit anchors (&id001)."""
    return {"ads": {}, "resource_api_version": "V3"}


def _grpc_service(backoff: ReconnectBackoff | None, token: str | None) -> dict[str, object]:
    """The ADS grpc_service; a dataplane token travels as initial metadata on every stream it opens."""
    service: dict[str, object] = {"envoy_grpc": _envoy_grpc(backoff)}
    if token is not None:
        service["initial_metadata"] = [{"key": "authorization", "value": f"Bearer {token}"}]
    return service


def _envoy_grpc(backoff: ReconnectBackoff | None) -> dict[str, object]:
    """The ``envoy_grpc`` target; without a back-off Envoy keeps its 500 ms .. 30 s default."""
    envoy_grpc: dict[str, object] = {"cluster_name": ADS_CLUSTER_NAME}
    if backoff is not None:
        envoy_grpc["retry_policy"] = {
            "retry_back_off": {
                "base_interval": _duration(backoff.base_s),
                "max_interval": _duration(backoff.max_s),
            }
        }
    return envoy_grpc


def _ads_cluster(host: str, port: int) -> dict[str, object]:
    """Static cluster reaching the control plane over HTTP/2 (gRPC needs it).

    STATIC for IP literals, STRICT_DNS for host names, as Kuma does for its tracing clusters
    (kuma-tracing.md §3.3). TCP keepalive and HTTP/2 PING detect a control plane that vanished without
    closing the connection (host down, partition), so Envoy reconnects instead of waiting forever on a
    dead stream. connect_timeout is short because the control plane is near and a retry is cheap.
    """
    cluster: dict[str, object] = {
        "name": ADS_CLUSTER_NAME,
        "type": "STATIC" if _is_ip(host) else "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": ADS_CLUSTER_NAME,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}}]}],
        },
        "typed_extension_protocol_options": {
            _HTTP_PROTOCOL_OPTIONS: {
                "@type": f"type.googleapis.com/{_HTTP_PROTOCOL_OPTIONS}",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": {"interval": "30s", "timeout": "5s"},
                    }
                },
            }
        },
        "upstream_connection_options": {
            "tcp_keepalive": {"keepalive_probes": 3, "keepalive_time": 30, "keepalive_interval": 5}
        },
    }
    if not _is_ip(host):
        # "localhost" may resolve to ::1 first while the control plane listens on IPv4 only.
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    return cluster


def _tls_transport_socket(host: str, ca_cert_pem: str) -> dict[str, object]:
    """TLS to the control plane: only `ca_cert_pem` is trusted and the certificate must name `host`.

    Envoy checks no name unless told to, so the subject alternative name is matched explicitly (an IP SAN
    for an IP literal, a DNS SAN otherwise). SNI is sent for host names only (RFC 6066 forbids IP literals).
    ALPN `h2`: gRPC servers expect it.
    """
    san_type = "IP_ADDRESS" if _is_ip(host) else "DNS"
    context: dict[str, object] = {
        "@type": f"type.googleapis.com/{_UPSTREAM_TLS}",
        "common_tls_context": {
            "alpn_protocols": ["h2"],
            "validation_context": {
                "trusted_ca": {"inline_string": ca_cert_pem},
                "match_typed_subject_alt_names": [{"san_type": san_type, "matcher": {"exact": host}}],
            },
        },
    }
    if not _is_ip(host):
        context["sni"] = host
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def _layered_runtime(static: Mapping[str, object]) -> dict[str, object]:
    """A static layer with the caller's keys, then an admin layer.

    The admin layer lets a test flip runtime keys via ``POST /runtime_modify`` without restarting
    Envoy; it outranks the static layer because it comes later.
    """
    return {
        "layers": [
            {"name": "static_layer", "static_layer": dict(static)},
            {"name": "admin_layer", "admin_layer": {}},
        ]
    }


def _socket_address(host: str, port: int) -> dict[str, object]:
    return {"socket_address": {"address": host, "port_value": port}}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _duration(seconds: float) -> str:
    """proto3-JSON Duration ("0.25s"): fixed-point, since "1e-05s" would not parse."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _check_port(field: str, port: int, *, lowest: int) -> None:
    if not lowest <= port <= 65535:
        raise ValueError(f"{field}: port {port} outside {lowest}-65535")
