"""Envoy v3 bootstrap for a sidecar that takes all its configuration from our ADS server.

Responsible for: the static part of an Envoy configuration — node identity, the ADS config source, the
static ``ads_cluster`` that reaches the control plane, the admin listener, the runtime layers and the stats
sink that reports Envoy's tracing counters to the control plane — built as
Envoy's own ``Bootstrap`` message, the way Kuma's ``pkg/xds/bootstrap/template_v3.go`` does, so a misspelt
field or a wrong type is a Python error here and not an Envoy start-up failure. Everything else (listeners,
clusters, tracing) arrives over ADS.

Shape: one configurer per aspect (``node``, ``ads``, ``admin``, ``runtime_layers``, ``stats_sink``), each a
``Callable[[Bootstrap], None]`` as in ``xds/generate`` (STYLE §4.2), applied in order by
``assemble_bootstrap``. A new aspect (a stats sink, say) is one more configurer passed as ``extra=``; no
caller changes. ``build_bootstrap`` renders the message as proto3 JSON with proto field names
(``json_format.MessageToDict``), the plain dict that the CLI writes as YAML and ``dataplane run``, the demo
and the tests write as JSON for ``envoy -c``; ``envoy --mode validate`` stays the judge of its correctness
(tests/unit/dataplane/test_bootstrap.py).

Must not: touch the filesystem, start processes or know about meshes and policies.
Shape follows the ADS bootstrap observed with Envoy 1.40 (reference/xds-protocol.md, "[observed]" set-up).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, grpc_service_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.metrics.v3 import metrics_service_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import descriptor_pool, duration_pb2, json_format, message_factory
from google.protobuf.message import Message

from controlplane.spans.stats import stats_inclusion_list

ADS_CLUSTER_NAME: Final = "ads_cluster"
"""Name of the static cluster pointing at the control plane (referenced by ``ads_config``)."""

BootstrapConfigurer = Callable[[bootstrap_pb2.Bootstrap], None]
"""Sets one aspect of the bootstrap under construction (STYLE §4.2)."""

_V3: Final = config_source_pb2.ApiVersion.V3


@dataclass(frozen=True, slots=True)
class ReconnectBackoff:
    """Jittered exponential back-off Envoy uses to re-open the ADS stream after it breaks.

    Envoy's default (when ``envoy_grpc.retry_policy`` is unset) is base 500 ms, max 30 s. That is fine
    in production; tests that restart the control plane want a shorter maximum so that Envoy comes
    back within their deadline instead of after up to 30 s.
    """

    base_s: float = 0.5
    max_s: float = 30.0


@dataclass(frozen=True, slots=True)
class StatsReporting:
    """Envoy's stats to the control plane's metrics service, every ``flush_interval_s`` (Envoy's default 5 s).

    Only the stats the control plane reads, plus a small operational core, are kept (``all_stats=False``,
    controlplane/spans/stats.py lists them and says why): Envoy's metrics service sink has no filter of its
    own, so the bootstrap's ``stats_matcher`` decides what exists, and so what flows. ``all_stats`` keeps
    Envoy's default (every stat, all sent each flush).
    """

    flush_interval_s: float = 5.0
    all_stats: bool = False


DEFAULT_STATS: Final = StatsReporting()


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
    stats: StatsReporting | None = DEFAULT_STATS,
    extra: Sequence[BootstrapConfigurer] = (),
) -> dict[str, object]:
    """The bootstrap of one sidecar (``sidecar_bootstrap``) as a JSON/YAML-ready dict with proto field names."""
    return render_bootstrap(sidecar_bootstrap(
        node_id=node_id, service=service, cp_host=cp_host, cp_port=cp_port, admin_port=admin_port, delta=delta,
        runtime=runtime, reconnect_backoff=reconnect_backoff, token=token, ca_cert_pem=ca_cert_pem, stats=stats,
        extra=extra,
    ))


def sidecar_bootstrap(
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
    stats: StatsReporting | None = DEFAULT_STATS,
    extra: Sequence[BootstrapConfigurer] = (),
) -> bootstrap_pb2.Bootstrap:
    """Build the typed bootstrap of one sidecar.

    ``node.cluster`` is the dataplane's identifying service because Envoy's zipkin tracer uses it as
    the span's local service name (reference/kuma-tracing.md §3.4), exactly as Kuma's bootstrap does.

    ``admin_port=0`` lets the kernel pick the admin port; pass ``--admin-address-path`` on Envoy's
    command line to learn it (the admin address file is a CLI flag, not a bootstrap field).

    ``runtime`` becomes a static runtime layer, e.g. ``{"tracing.zipkin.min_flush_spans": 1}`` to make
    zipkin flush every span at once instead of buffering 5 (or waiting for the 5 s flush timer).

    ``token`` (a dataplane token) is sent as gRPC initial metadata ``authorization: Bearer <token>`` on the
    ADS stream (`controlplane run --dataplane-auth token`). ``ca_cert_pem`` makes the ADS connection TLS,
    trusting only that CA and checking that the server certificate names ``cp_host``.

    ``stats`` (on by default) streams the stats the control plane judges span flow by to the same address,
    with the same token and TLS (``stats_sink``); None leaves Envoy without a stats sink.
    """
    _check_port("cp_port", cp_port, lowest=1)
    _check_port("admin_port", admin_port, lowest=0)
    if reconnect_backoff is not None and not 0 < reconnect_backoff.base_s <= reconnect_backoff.max_s:
        raise ValueError("reconnect_backoff: need 0 < base_s <= max_s")
    if stats is not None and not 0.001 <= stats.flush_interval_s <= 300:
        raise ValueError("stats: flush_interval_s must be in 0.001-300 s (Envoy's bounds)")
    return assemble_bootstrap(
        node(node_id, service),
        ads(cp_host, cp_port, delta=delta, backoff=reconnect_backoff, token=token, ca_cert_pem=ca_cert_pem),
        admin(admin_port),
        runtime_layers(runtime or {}),
        *([stats_sink(stats, token)] if stats is not None else []),
        *extra,
    )


def assemble_bootstrap(*configurers: BootstrapConfigurer) -> bootstrap_pb2.Bootstrap:
    """A Bootstrap with `configurers` applied in order (the builder, STYLE §4.2)."""
    bootstrap = bootstrap_pb2.Bootstrap()
    for configure in configurers:
        configure(bootstrap)
    return bootstrap


def render_bootstrap(bootstrap: bootstrap_pb2.Bootstrap) -> dict[str, object]:
    """proto3 JSON with proto field names (``set_node_on_first_message_only``), as Envoy reads it with ``-c``,
    in plain dicts and lists.

    Durations keep their shortest form ("0.25s"; MessageToDict writes "0.250s"): the same value, but the
    bootstrap's text has always said it that way and tests pin it.
    """
    rendered: dict[str, object] = _plain(json_format.MessageToDict(bootstrap, preserving_proto_field_name=True))
    _shorten_durations(bootstrap, rendered)
    return rendered


def _plain(value: Any) -> Any:
    """MessageToDict returns OrderedDicts for Any payloads; yaml.safe_dump wants plain dicts and lists."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def node(node_id: str, service: str) -> BootstrapConfigurer:
    def configure(bootstrap: bootstrap_pb2.Bootstrap) -> None:
        bootstrap.node.id, bootstrap.node.cluster = node_id, service

    return configure


def ads(host: str, port: int, *, delta: bool = False, backoff: ReconnectBackoff | None = None,
        token: str | None = None, ca_cert_pem: str | None = None) -> BootstrapConfigurer:
    """Every xDS type over one ADS stream to ``host:port`` (the static ``ads_cluster``)."""

    def configure(bootstrap: bootstrap_pb2.Bootstrap) -> None:
        ads_config = bootstrap.dynamic_resources.ads_config
        ads_config.api_type = (config_source_pb2.ApiConfigSource.DELTA_GRPC if delta
                               else config_source_pb2.ApiConfigSource.GRPC)
        ads_config.transport_api_version = _V3
        ads_config.grpc_services.append(_grpc_service(backoff, token))
        # The node is identical on every request of a stream; sending it once saves bytes on every
        # ACK. The server must therefore remember the node per stream (xds-protocol.md §1.3).
        ads_config.set_node_on_first_message_only = True
        for source in (bootstrap.dynamic_resources.cds_config, bootstrap.dynamic_resources.lds_config):
            source.ads.SetInParent()
            source.resource_api_version = _V3
        cluster = bootstrap.static_resources.clusters.add()
        cluster.CopyFrom(_ads_cluster(host, port))
        if ca_cert_pem is not None:
            cluster.transport_socket.CopyFrom(_tls_transport_socket(host, ca_cert_pem))

    return configure


def admin(port: int) -> BootstrapConfigurer:
    """The admin listener, on loopback only: it can change runtime and quit Envoy."""

    def configure(bootstrap: bootstrap_pb2.Bootstrap) -> None:
        bootstrap.admin.address.CopyFrom(_address("127.0.0.1", port))

    return configure


def runtime_layers(static: Mapping[str, object]) -> BootstrapConfigurer:
    """A static layer with the caller's keys, then an admin layer.

    The admin layer lets a test flip runtime keys via ``POST /runtime_modify`` without restarting
    Envoy; it outranks the static layer because it comes later.
    """

    def configure(bootstrap: bootstrap_pb2.Bootstrap) -> None:
        static_layer = bootstrap.layered_runtime.layers.add(name="static_layer")
        static_layer.static_layer.SetInParent()
        static_layer.static_layer.update(dict(static))
        bootstrap.layered_runtime.layers.add(name="admin_layer").admin_layer.SetInParent()

    return configure


def stats_sink(reporting: StatsReporting, token: str | None = None) -> BootstrapConfigurer:
    """``envoy.stat_sinks.metrics_service`` to the control plane over the static ``ads_cluster`` (its address,
    TLS and keepalives), with the dataplane token as for ADS; cumulative counters (a lost report loses no
    count), full stat names (no tag extraction), flushed every ``flush_interval_s``; and the stats matcher."""

    def configure(bootstrap: bootstrap_pb2.Bootstrap) -> None:
        config = metrics_service_pb2.MetricsServiceConfig(grpc_service=_grpc_service(None, token),
                                                          transport_api_version=_V3)
        sink = bootstrap.stats_sinks.add(name="envoy.stat_sinks.metrics_service")
        sink.typed_config.Pack(config)
        bootstrap.stats_flush_interval.CopyFrom(_duration(reporting.flush_interval_s))
        if not reporting.all_stats:
            bootstrap.stats_config.stats_matcher.inclusion_list.patterns.extend(stats_inclusion_list())

    return configure


def _grpc_service(backoff: ReconnectBackoff | None, token: str | None) -> grpc_service_pb2.GrpcService:
    """The ADS grpc_service; a dataplane token travels as initial metadata on every stream it opens.
    Without a back-off Envoy keeps its 500 ms .. 30 s default."""
    service = grpc_service_pb2.GrpcService()
    service.envoy_grpc.cluster_name = ADS_CLUSTER_NAME
    if backoff is not None:
        retry_back_off = service.envoy_grpc.retry_policy.retry_back_off
        retry_back_off.base_interval.CopyFrom(_duration(backoff.base_s))
        retry_back_off.max_interval.CopyFrom(_duration(backoff.max_s))
    if token is not None:
        service.initial_metadata.append(base_pb2.HeaderValue(key="authorization", value=f"Bearer {token}"))
    return service


def _ads_cluster(host: str, port: int) -> cluster_pb2.Cluster:
    """Static cluster reaching the control plane over HTTP/2 (gRPC needs it).

    STATIC for IP literals, STRICT_DNS for host names, as Kuma does for its tracing clusters
    (kuma-tracing.md §3.3). TCP keepalive and HTTP/2 PING detect a control plane that vanished without
    closing the connection (host down, partition), so Envoy reconnects instead of waiting forever on a
    dead stream. connect_timeout is short because the control plane is near and a retry is cheap.
    """
    cluster = cluster_pb2.Cluster(
        name=ADS_CLUSTER_NAME,
        type=cluster_pb2.Cluster.STATIC if _is_ip(host) else cluster_pb2.Cluster.STRICT_DNS,
        connect_timeout=_duration(1),
        load_assignment=endpoint_pb2.ClusterLoadAssignment(cluster_name=ADS_CLUSTER_NAME, endpoints=[
            endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[endpoint_components_pb2.LbEndpoint(
                endpoint=endpoint_components_pb2.Endpoint(address=_address(host, port)))]),
        ]),
    )
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.CopyFrom(protocol_pb2.Http2ProtocolOptions(
        connection_keepalive=protocol_pb2.KeepaliveSettings(interval=_duration(30), timeout=_duration(5))))
    cluster.typed_extension_protocol_options[options.DESCRIPTOR.full_name].Pack(options)
    keepalive = cluster.upstream_connection_options.tcp_keepalive
    keepalive.keepalive_probes.value, keepalive.keepalive_time.value, keepalive.keepalive_interval.value = 3, 30, 5
    if not _is_ip(host):
        # "localhost" may resolve to ::1 first while the control plane listens on IPv4 only.
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
    return cluster


def _tls_transport_socket(host: str, ca_cert_pem: str) -> base_pb2.TransportSocket:
    """TLS to the control plane: only `ca_cert_pem` is trusted and the certificate must name `host`.

    Envoy checks no name unless told to, so the subject alternative name is matched explicitly (an IP SAN
    for an IP literal, a DNS SAN otherwise). SNI is sent for host names only (RFC 6066 forbids IP literals).
    ALPN `h2`: gRPC servers expect it.
    """
    san_type = common_pb2.SubjectAltNameMatcher.IP_ADDRESS if _is_ip(host) else common_pb2.SubjectAltNameMatcher.DNS
    context = tls_pb2.UpstreamTlsContext(common_tls_context=tls_pb2.CommonTlsContext(
        alpn_protocols=["h2"],
        validation_context=common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(inline_string=ca_cert_pem),
            match_typed_subject_alt_names=[common_pb2.SubjectAltNameMatcher(
                san_type=san_type, matcher=string_pb2.StringMatcher(exact=host))],
        ),
    ))
    if not _is_ip(host):
        context.sni = host
    socket = base_pb2.TransportSocket(name="envoy.transport_sockets.tls")
    socket.typed_config.Pack(context)
    return socket


def _address(host: str, port: int) -> address_pb2.Address:
    """`port_value` sits in a oneof, so an explicit 0 (admin on any port) is kept, not dropped as a default."""
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=host, port_value=port))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(seconds * 1_000_000_000))
    return duration


def _shortest(duration: duration_pb2.Duration) -> str:
    """proto3-JSON Duration in fixed point without trailing zeros ("0.25s", "2s"; never "1e-05s")."""
    return f"{duration.ToNanoseconds() / 1e9:.9f}".rstrip("0").rstrip(".") + "s"


def _shorten_durations(message: Message, rendered: dict[str, object]) -> None:
    """Rewrite, in place, every Duration of `rendered` (MessageToDict of `message`) in its shortest form,
    walking the message and its rendering together (Any payloads are rendered inline: unpacked and walked)."""
    for field, value in message.ListFields():
        if field.message_type is None or field.name not in rendered:
            continue
        sub: Any = rendered[field.name]
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for map_key, item in value.items():
                    sub[str(map_key)] = _visit(item, sub[str(map_key)])
        elif field.is_repeated:
            sub[:] = [_visit(item, item_rendered) for item, item_rendered in zip(value, sub, strict=True)]
        else:
            rendered[field.name] = _visit(value, sub)


def _visit(message: Message, rendered: Any) -> Any:
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Duration":
        return _shortest(message)
    if name == "google.protobuf.Any":
        type_name = message.type_url.rsplit("/", 1)[-1]
        payload = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(type_name))()
        message.Unpack(payload)
        _shorten_durations(payload, rendered)
    elif not name.startswith("google.protobuf."):  # Struct, wrappers, ...: plain JSON values, no Duration inside
        _shorten_durations(message, rendered)
    return rendered


def _check_port(field: str, port: int, *, lowest: int) -> None:
    if not lowest <= port <= 65535:
        raise ValueError(f"{field}: port {port} outside {lowest}-65535")

