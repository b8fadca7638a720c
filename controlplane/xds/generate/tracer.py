"""The HCM `tracing` block for a resolved backend (Kuma's `tracing_configurer.go`, reference §3.2).

Zipkin and Datadog providers carry exactly the fields Kuma sets: nothing random/client-sampling related,
no custom tags, `overall_sampling` only when the backend sets `sampling`, and `spawn_upstream_span: false`
on sidecar listeners (Kuma ≥ 2.7). With no backend the factory returns a no-op so call sites don't branch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import urlsplit

from envoy.config.trace.v3 import datadog_pb2, http_tracer_pb2, zipkin_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message

from controlplane.policy import datadog_config, zipkin_config
from controlplane.policy.tracing import DATADOG, ZIPKIN
from controlplane.resources.generated import mesh_pb2
from controlplane.xds import types
from controlplane.xds.generate import names
from controlplane.xds.generate.context import MeshContext
from controlplane.xds.generate.hcm import HcmConfigurer


class Direction(enum.Enum):
    """Traffic direction of the HCM; decides the Datadog service name when `splitService` is on."""

    UNSPECIFIED = "unspecified"
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True, slots=True)
class ZipkinUrl:
    """The parts of a collector URL Envoy needs: Host header value, cluster host and port, request path."""

    authority: str
    host: str
    port: int
    path: str
    secure: bool


def parse_zipkin_url(url: str) -> ZipkinUrl:
    """Split like Go's url.Parse: authority keeps the port (collector_hostname), host drops IPv6 brackets."""
    parts = urlsplit(url)
    authority = parts.netloc.rpartition("@")[2]
    port = parts.port
    if parts.hostname is None or port is None:
        raise ValueError(f"zipkin url {url!r}: port has to be explicitly specified")
    host = authority.rpartition(":")[0]
    host = host[1:-1] if host.startswith("[") else host
    return ZipkinUrl(
        authority=authority, host=host, port=port, path=parts.path, secure=parts.scheme == "https"
    )


def _zipkin_provider(backend: mesh_pb2.TracingBackend) -> zipkin_pb2.ZipkinConfig:
    config = zipkin_config(backend)
    url = parse_zipkin_url(config.url)
    provider = zipkin_pb2.ZipkinConfig(
        collector_cluster=names.tracing_cluster_name(backend.name),
        collector_endpoint=url.path,
        collector_hostname=url.authority,
        trace_id_128bit=config.trace_id128bit,
        # httpJsonV1 passes validation but Kuma still emits HTTP_JSON; HTTP_JSON_V1 is never produced.
        collector_endpoint_version=(
            zipkin_pb2.ZipkinConfig.HTTP_PROTO
            if config.api_version == "httpProto"
            else zipkin_pb2.ZipkinConfig.HTTP_JSON
        ),
    )
    if config.HasField("shared_span_context"):
        provider.shared_span_context.CopyFrom(config.shared_span_context)
    return provider


def datadog_service_name(service: str, direction: Direction, destination: str, split: bool) -> str:
    """`<svc>_INBOUND` / `<svc>_OUTBOUND_<dest>` with splitService, else the service itself (§3.2)."""
    if not split or direction is Direction.UNSPECIFIED:
        return service
    if direction is Direction.INBOUND:
        return f"{service}_INBOUND"
    return f"{service}_OUTBOUND_{destination}"


def _block(
    tracer_name: str, provider: Message, sampling: float | None
) -> hcm_pb2.HttpConnectionManager.Tracing:
    packed = any_pb2.Any()
    packed.Pack(provider)
    block = hcm_pb2.HttpConnectionManager.Tracing(
        provider=http_tracer_pb2.Tracing.Http(name=tracer_name, typed_config=packed)
    )
    block.spawn_upstream_span.SetInParent()  # explicit false: Kuma >= 2.7 on sidecars
    if sampling is not None:
        block.overall_sampling.CopyFrom(percent_pb2.Percent(value=sampling))
    return block


@dataclass(frozen=True, slots=True)
class Tracer:
    """A resolved backend with its `conf` parsed once per generator run, not once per HCM.

    A zipkin block does not depend on the listener, so it is built once and copied; a datadog block depends
    on the service name, so only the parsed settings are kept. Returned blocks are shared: copy, never mutate.
    """

    backend_name: str
    sampling: float | None
    zipkin_block: hcm_pb2.HttpConnectionManager.Tracing | None
    datadog_split_service: bool

    def block(
        self, service: str, direction: Direction, destination: str = ""
    ) -> hcm_pb2.HttpConnectionManager.Tracing:
        if self.zipkin_block is not None:
            return self.zipkin_block
        service_name = datadog_service_name(service, direction, destination, self.datadog_split_service)
        provider = datadog_pb2.DatadogConfig(
            collector_cluster=names.tracing_cluster_name(self.backend_name), service_name=service_name
        )
        return _block(types.DATADOG_TRACER, provider, self.sampling)


def shared_tracer(ctx: MeshContext, backend: mesh_pb2.TracingBackend | None) -> Tracer | None:
    """One Tracer per distinct backend and context, so its zipkin block object is shared by every listener
    of every proxy (and listeners built from it can be shared too)."""
    if backend is None:
        return None
    return ctx.memo(("tracer", backend.SerializeToString(deterministic=True)), parse_tracer, backend)


def parse_tracer(backend: mesh_pb2.TracingBackend) -> Tracer:
    """Typed conf → Tracer; an unknown backend type is a bug (validation only admits zipkin and datadog)."""
    sampling = backend.sampling.value if backend.HasField("sampling") else None
    if backend.type == ZIPKIN:
        block = _block(types.ZIPKIN_TRACER, _zipkin_provider(backend), sampling)
        return Tracer(backend.name, sampling, block, datadog_split_service=False)
    if backend.type == DATADOG:
        return Tracer(backend.name, sampling, None, datadog_config(backend).split_service)
    raise ValueError(f"tracing backend {backend.name!r} has unsupported type {backend.type!r}")


def build_tracing(
    backend: mesh_pb2.TracingBackend, service: str, direction: Direction, destination: str = ""
) -> hcm_pb2.HttpConnectionManager.Tracing:
    """The complete `tracing` block for one HCM (one-off form of parse_tracer(...).block(...))."""
    return parse_tracer(backend).block(service, direction, destination)


def tracing(
    tracer: Tracer | None, service: str, direction: Direction, destination: str = ""
) -> HcmConfigurer:
    """Configurer setting the HCM tracing block; a no-op when the proxy has no effective backend."""
    if tracer is None:
        return _no_op
    block = tracer.block(service, direction, destination)

    def configure(hcm: hcm_pb2.HttpConnectionManager) -> None:
        hcm.tracing.CopyFrom(block)

    return configure


def _no_op(hcm: hcm_pb2.HttpConnectionManager) -> None:
    """Nothing to trace: leave the HCM without a `tracing` key, as Kuma does for a nil backend."""
