"""Listeners rendered from a shape and a tracing block are byte-identical to listeners built whole.

Every HTTP listener of every golden case (TrafficTrace and MeshTrace) is rebuilt here the plain way: the
untraced listener with the HCM's `tracing` set through protobuf and serialised deterministically.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import load_resources
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from controlplane.resources.codec import decode_resource
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.mesh import MESH
from controlplane.resources.yaml_loader import load_documents
from controlplane.tracing.registry import provider_clusters
from controlplane.xds import types
from controlplane.xds.entries import ResourceInterner, derive_facts
from controlplane.xds.generate.context import build_mesh_context, build_proxy
from controlplane.xds.generate.generators import generate_snapshot
from controlplane.xds.generate.traced_listener import ListenerShape, TracingBlock, listener_shape

GOLDEN = Path(__file__).parents[3] / "golden"
CASES = sorted(GOLDEN.glob("generate/*.input.yaml")) + sorted(GOLDEN.glob("meshtrace/*.input.yaml"))


def _resources(path: Path) -> list:  # type: ignore[type-arg]
    if path.parent.name == "meshtrace":
        return [decode_resource(doc) for doc in load_documents(path.read_text())]
    return load_resources(path)


def _untraced(listener: listener_pb2.Listener) -> tuple[listener_pb2.Listener, bytes | None]:
    """The listener without its HCM tracing block, and the block's bytes (None when it has none)."""
    plain = listener_pb2.Listener()
    plain.CopyFrom(listener)
    packed = plain.filter_chains[0].filters[0].typed_config
    hcm = hcm_pb2.HttpConnectionManager()
    packed.Unpack(hcm)
    block = hcm.tracing.SerializeToString(deterministic=True) if hcm.HasField("tracing") else None
    hcm.ClearField("tracing")
    packed.Pack(hcm)
    return plain, block


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name.removesuffix('.input.yaml')}")
def test_rendered_http_listeners_equal_whole_serialisation(path: Path) -> None:
    resources = _resources(path)
    mesh = next(r for r in resources if r.kind is MESH)
    dataplanes = [r for r in resources if r.kind is DATAPLANE]
    ctx = build_mesh_context(mesh, [r for r in resources if r.kind.policy], dataplanes)
    generated = generate_snapshot(ctx, build_proxy(ctx, dataplanes[0]), ResourceInterner())
    for name, entry in generated.entries()[types.LISTENER_TYPE].items():
        listener = listener_pb2.Listener.FromString(entry.value)
        if not listener.filter_chains[0].filters[0].typed_config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
            continue
        plain, block = _untraced(listener)
        shape = listener_shape(listener_pb2.Listener.FromString, plain.SerializeToString())
        clusters = ()
        if block is not None:
            clusters = provider_clusters(hcm_pb2.HttpConnectionManager.Tracing.FromString(block).provider)
            assert clusters, f"{name}: a traced listener references its collector"
        rendered = shape.render(TracingBlock(block, clusters) if block is not None else None)
        assert rendered.value == entry.value == listener.SerializeToString(deterministic=True), name
        assert rendered.facts == derive_facts(listener) == entry.facts, name


def test_a_shape_is_only_made_of_a_single_hcm_chain() -> None:
    listener = listener_pb2.Listener(name="two-chains")
    listener.filter_chains.add()
    listener.filter_chains.add()
    with pytest.raises(ValueError, match="one filter chain with one filter"):
        listener_shape(lambda: listener)


def test_entries_rendered_from_a_shape_keep_it_alive() -> None:
    cache = ResourceInterner()
    plain = listener_pb2.Listener(name="l")
    chain = plain.filter_chains.add()
    chain.filters.add(name="hcm").typed_config.Pack(hcm_pb2.HttpConnectionManager(stat_prefix="x"))
    shape = cache.pooled(("shape", "l"), listener_shape, lambda: plain)
    entry = cache.shared(types.LISTENER_TYPE, ("l", None), shape.render, None)
    assert isinstance(shape, ListenerShape) and entry.basis is shape
    del shape
    assert cache.pooled(("shape", "l"), listener_shape, lambda: plain) is entry.basis
    assert entry.message == plain  # parsed from the bytes on first use
