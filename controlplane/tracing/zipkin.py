"""Zipkin tracing backend: the Mesh `type: zipkin` conf, its collector cluster and `envoy.tracers.zipkin`.

Validation is Kuma's `mesh_validator.go` for zipkin (reference kuma-tracing.md §1.2: apiVersion, then url:
empty, unparsable, no explicit port), plus what Envoy would reject at runtime (a scheme other than http(s),
an invalid host, no collector path). The provider carries exactly Kuma's fields (§3.2): the URL path as
`collector_endpoint`, host:port as `collector_hostname` (the Host header), `trace_id_128bit`,
`shared_span_context` only when set, and HTTP_PROTO for `httpProto` else HTTP_JSON (`httpJsonV1` passes
validation but Kuma emits HTTP_JSON; HTTP_JSON_V1 is never produced). The collector cluster is the URL's
host and port, TLS (SNI, no CA check, as Kuma) for https.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.trace.v3 import zipkin_pb2
from google.protobuf import any_pb2, wrappers_pb2

from controlplane.errors import Violation
from controlplane.resources.addresses import valid_host
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.paths import field
from controlplane.resources.schema import json_field_names
from controlplane.tracing.backend import CollectorConf, HcmSite
from controlplane.tracing.conf import read_struct
from controlplane.xds.generate.clusters import build_cluster, provided_endpoint, tls_upstream

TYPE: Final = "zipkin"
TRACER: Final = "envoy.tracers.zipkin"
API_VERSIONS: Final = ("httpJsonV1", "httpJson", "httpProto")


@dataclass(frozen=True, slots=True)
class CollectorUrl:
    """The parts of a collector URL Envoy needs: Host header value, cluster host and port, request path."""

    authority: str
    host: str
    port: int
    path: str
    secure: bool


def parse_collector_url(url: str) -> CollectorUrl:
    """Split like Go's url.Parse: authority keeps the port (collector_hostname), host drops IPv6 brackets."""
    parts = urlsplit(url)
    authority = parts.netloc.rpartition("@")[2]
    port = parts.port
    if parts.hostname is None or port is None:
        raise ValueError(f"zipkin url {url!r}: port has to be explicitly specified")
    host = authority.rpartition(":")[0]
    host = host[1:-1] if host.startswith("[") else host
    return CollectorUrl(authority=authority, host=host, port=port, path=parts.path, secure=parts.scheme == "https")


def url_problems(url: str) -> list[str]:
    """Kuma's URL checks, then the ones Envoy would otherwise reject at runtime (empty collector path)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):  # urlsplit silently drops \t \n \r; Go rejects them
        return ["invalid URL"]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ["invalid URL"]
    if not parts.scheme or not parts.hostname:
        return ["invalid URL"]
    if port is None:
        return ["port has to be explicitly specified"]
    problems: list[str] = []
    if parts.scheme not in ("http", "https"):
        problems.append('scheme has to be "http" or "https"')
    if not valid_host(parts.hostname):
        problems.append("invalid URL")
    if parts.path in ("", "/"):
        problems.append("has to include the collector path, e.g. http://jaeger-collector:9411/api/v2/spans")
    return problems


@dataclass(frozen=True, slots=True)
class ZipkinConf(CollectorConf):
    """A validated zipkin conf. `shared_span_context` None means unset: the field is omitted (Envoy: true)."""

    url: CollectorUrl
    trace_id_128bit: bool = False
    api_version: str = ""
    shared_span_context: bool | None = None


class Zipkin:
    """`BackendType` for zipkin."""

    type_name: Final = TYPE
    tracer_name: Final = TRACER
    mesh_conf_fields: Final = tuple(json_field_names(mesh_pb2.ZipkinTracingBackendConfig.DESCRIPTOR))

    def parse_mesh_conf(self, conf: Mapping[str, object], path: str) -> tuple[ZipkinConf | None, list[Violation]]:
        parsed = read_struct(conf, mesh_pb2.ZipkinTracingBackendConfig, path)
        typed = parsed.message
        violations = list(parsed.violations)
        if parsed.usable("apiVersion") and typed.api_version and typed.api_version not in API_VERSIONS:
            violations.append(
                Violation(field(path, "apiVersion"), "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto")
            )
        url_path = field(path, "url")
        if parsed.usable("url"):
            problems = url_problems(typed.url) if typed.url else ["cannot be empty"]
            violations.extend(Violation(url_path, message) for message in problems)
        if violations:
            return None, violations
        shared = typed.shared_span_context.value if typed.HasField("shared_span_context") else None
        return ZipkinConf(parse_collector_url(typed.url), typed.trace_id128bit, typed.api_version, shared), []

    def cluster(self, name: str, conf: CollectorConf, *, ipv6_dataplane: bool) -> cluster_pb2.Cluster:
        url = _own(conf).url
        configurers = [provided_endpoint(url.host, url.port, ipv6_dataplane)]
        if url.secure:
            configurers.append(tls_upstream(url.host))
        return build_cluster(name, *configurers)

    def provider(self, cluster: str, conf: CollectorConf, site: HcmSite) -> zipkin_pb2.ZipkinConfig:
        zipkin = _own(conf)
        provider = zipkin_pb2.ZipkinConfig(
            collector_cluster=cluster,
            collector_endpoint=zipkin.url.path,
            collector_hostname=zipkin.url.authority,
            trace_id_128bit=zipkin.trace_id_128bit,
            collector_endpoint_version=(
                zipkin_pb2.ZipkinConfig.HTTP_PROTO if zipkin.api_version == "httpProto"
                else zipkin_pb2.ZipkinConfig.HTTP_JSON
            ),
        )
        if zipkin.shared_span_context is not None:
            provider.shared_span_context.CopyFrom(wrappers_pb2.BoolValue(value=zipkin.shared_span_context))
        return provider

    def site_key(self, conf: CollectorConf, site: HcmSite) -> Hashable:
        return ()  # a zipkin provider does not depend on the listener: one block for every HCM

    def referenced_clusters(self, typed_config: any_pb2.Any) -> tuple[str, ...]:
        provider = zipkin_pb2.ZipkinConfig()
        if not typed_config.Unpack(provider) or not provider.collector_cluster:
            return ()
        return (str(provider.collector_cluster),)


def _own(conf: CollectorConf) -> ZipkinConf:
    if not isinstance(conf, ZipkinConf):
        raise TypeError(f"zipkin backend given a {type(conf).__name__}")
    return conf


ZIPKIN: Final = Zipkin()
