"""The HCM `tracing` block and the collector cluster for an `EffectiveTracing` (Kuma's tracing configurer).

Generic over backend types: the provider comes from the backend's module, the rest is common to every
policy kind: `spawn_upstream_span: false` on sidecar listeners (Kuma >= 2.7), each sampling percentage only
when set (TrafficTrace sets only `overall`, reference kuma-tracing.md §3.2; MeshTrace any of the three), and
custom tags in order (literal value, or request header with its default).
Listeners get the block as bytes (xds/generate/traced_listener.py), so a tracing change re-renders them.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.trace.v3 import http_tracer_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.type.tracing.v3 import custom_tag_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2

from controlplane.tracing.backend import CustomTag, EffectiveTracing, HcmSite


def build_tracing_block(tracing: EffectiveTracing, site: HcmSite) -> hcm_pb2.HttpConnectionManager.Tracing:
    """The complete `tracing` block of one HCM."""
    backend = tracing.backend
    packed = any_pb2.Any()
    packed.Pack(backend.type.provider(backend.cluster, backend.conf, site))
    block = hcm_pb2.HttpConnectionManager.Tracing(provider=http_tracer_pb2.Tracing.Http(name=backend.type.tracer_name, typed_config=packed))
    block.spawn_upstream_span.SetInParent()  # explicit false: Kuma >= 2.7 on sidecars
    sampling = tracing.sampling
    for target, value in ((block.overall_sampling, sampling.overall), (block.client_sampling, sampling.client),
                          (block.random_sampling, sampling.random)):
        if value is not None:
            target.CopyFrom(percent_pb2.Percent(value=value))
    block.custom_tags.extend(_custom_tag(tag) for tag in tracing.tags)
    return block


def _custom_tag(tag: CustomTag) -> custom_tag_pb2.CustomTag:
    if tag.header is not None:
        header = custom_tag_pb2.CustomTag.Header(name=tag.header, default_value=tag.default)
        return custom_tag_pb2.CustomTag(tag=tag.tag, request_header=header)
    return custom_tag_pb2.CustomTag(tag=tag.tag, literal=custom_tag_pb2.CustomTag.Literal(value=tag.literal or ""))


def build_collector_cluster(tracing: EffectiveTracing, ipv6_dataplane: bool) -> cluster_pb2.Cluster:
    backend = tracing.backend
    return backend.type.cluster(backend.cluster, backend.conf, ipv6_dataplane=ipv6_dataplane)
