"""HTTP listeners as a shape plus a tracing block, so a tracing change re-renders bytes instead of rebuilding.

A mesh-wide tracing change (sampling, backend, tags) alters exactly one part of every HTTP listener: the
HttpConnectionManager's `tracing` block. Rebuilding, serialising and re-deriving thousands of listeners
for that was most of the change's cost (bench/RESULTS.md §3: ≈ 2.5 listeners per proxy, each ≈ 10× the
cost of re-rendering it). So an HTTP listener is made of two pooled parts (ResourceInterner.pooled):

- its `ListenerShape`: the listener built without tracing, serialised once, as a `wire.Template` open at
  the HCM's `tracing` field, with the consistency facts of everything but the tracing provider. Depends on
  the listener's own inputs (address, port, tags, routes), not on tracing, so it survives tracing changes;
- a `TracingBlock`: the block serialised once per block key (tracing/backend.py `block_key`), with the
  clusters its provider references. One per backend for zipkin, per service for datadog/OpenTelemetry.

`ListenerShape.render(block)` joins them into the listener's entry: byte-identical to serialising the whole
listener (tests/unit/xds/test_traced_listener.py checks it against the builders), so goldens, versions and
Envoy see no difference. The entry keeps its shape alive (`ResourceEntry.basis`), so the next render after
a change finds it in the pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from google.protobuf import any_pb2

from controlplane.tracing.backend import EffectiveTracing, HcmSite
from controlplane.tracing.block import build_tracing_block
from controlplane.tracing.registry import provider_clusters
from controlplane.xds import types, wire
from controlplane.xds.entries import Facts, ResourceEntry, ResourceInterner, derive_facts, make_entry

_HCM_TRACING_PATH: Final = (
    listener_pb2.Listener.DESCRIPTOR.fields_by_name["filter_chains"].number,
    listener_components_pb2.FilterChain.DESCRIPTOR.fields_by_name["filters"].number,
    listener_components_pb2.Filter.DESCRIPTOR.fields_by_name["typed_config"].number,
    any_pb2.Any.DESCRIPTOR.fields_by_name["value"].number,
    hcm_pb2.HttpConnectionManager.DESCRIPTOR.fields_by_name["tracing"].number,
)
"""Listener.filter_chains → FilterChain.filters → Filter.typed_config → Any.value → HCM.tracing."""


@dataclass(frozen=True, slots=True, weakref_slot=True, eq=False)
class TracingBlock:
    """One HCM tracing block, serialised, and the clusters its provider references."""

    value: bytes
    clusters: tuple[str, ...]


@dataclass(frozen=True, slots=True, weakref_slot=True, eq=False)
class ListenerShape:
    """An HTTP listener (one filter chain, one HCM) without its tracing block."""

    name: str
    template: wire.Template
    facts: Facts

    def render(self, block: TracingBlock | None) -> ResourceEntry:
        """The listener's entry with `block` as its HCM's tracing block (None: no tracing key)."""
        if block is None:
            facts = self.facts
        else:
            refs = tuple(sorted({*self.facts.cluster_refs, *block.clusters}))
            facts = Facts(self.facts.own_name, None, self.facts.rds_names, refs)
        value = self.template.render(block.value if block is not None else None)
        return make_entry(types.LISTENER_TYPE, self.name, value, facts=facts, basis=self)


def listener_shape(build: Callable[..., listener_pb2.Listener], *args: object) -> ListenerShape:
    """The shape of the listener `build(*args)` makes, which must have one filter chain with one HCM
    filter and no tracing block."""
    listener = build(*args)
    chains = listener.filter_chains
    if len(chains) != 1 or len(chains[0].filters) != 1 or listener.HasField("default_filter_chain"):
        raise ValueError(f"listener {listener.name!r}: a traced listener has one filter chain with one filter")
    packed = chains[0].filters[0].typed_config
    if not packed.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
        raise ValueError(f"listener {listener.name!r}: the filter is not an HttpConnectionManager")
    value = listener.SerializeToString(deterministic=True)
    return ListenerShape(str(listener.name), wire.template(value, _HCM_TRACING_PATH), derive_facts(listener))


def tracing_block(tracing: EffectiveTracing, site: HcmSite) -> TracingBlock:
    block = build_tracing_block(tracing, site)
    return TracingBlock(block.SerializeToString(deterministic=True), provider_clusters(block.provider))


def traced_listener(cache: ResourceInterner, inputs: tuple[object, ...], tracing: EffectiveTracing | None,
                    site: HcmSite, build: Callable[..., listener_pb2.Listener], *args: object) -> ResourceEntry:
    """The entry of the HTTP listener `build(*args)` makes (without tracing; `inputs` determine it
    completely), with the tracing block of `tracing` at `site` (or none)."""
    shape = cache.pooled(("listener-shape", inputs), listener_shape, build, *args)
    block = None
    if tracing is not None:
        block = cache.pooled(("tracing-block", tracing.block_key(site)), tracing_block, tracing, site)
    return cache.shared(types.LISTENER_TYPE, (shape, block), shape.render, block)
