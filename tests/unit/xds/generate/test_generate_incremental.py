"""Regenerating a proxy from its previous generation gives exactly what generating it from scratch gives.

For every golden case (TrafficTrace and MeshTrace), the proxy is first generated in a different world
(tracing off, or alone in the mesh so its destinations have no endpoints), then regenerated in the case's
world from that generation, and the updated snapshot is compared, type version by type version and
resource by resource, with the snapshot built from scratch. The concerns the change did not touch must be
reused as they are.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import load_resources

from controlplane.resources.codec import decode_resource
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource
from controlplane.resources.yaml_loader import load_documents
from controlplane.xds.entries import ResourceInterner
from controlplane.xds.generate.context import build_mesh_context, build_proxy
from controlplane.xds.generate.generators import GENERATORS, Generation, generate, generate_snapshot
from controlplane.xds.snapshot import Snapshot

GOLDEN = Path(__file__).parents[3] / "golden"
CASES = sorted(GOLDEN.glob("generate/*.input.yaml")) + sorted(GOLDEN.glob("meshtrace/*.input.yaml"))
CONCERNS = [generator.name for generator in GENERATORS]


def _resources(path: Path) -> list[Resource]:
    if path.parent.name == "meshtrace":
        return [decode_resource(doc) for doc in load_documents(path.read_text())]
    return load_resources(path)


def _full(generation: Generation) -> Snapshot:
    return Snapshot.build({type_url: generation.entries(type_url) for type_url in generation.changed_types})


@pytest.mark.parametrize("variant", ["tracing-off", "alone"])
@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name.removesuffix('.input.yaml')}")
def test_incremental_generation_equals_generation_from_scratch(path: Path, variant: str) -> None:
    resources = _resources(path)
    mesh = next(r for r in resources if r.kind is MESH)
    policies = [r for r in resources if r.kind.policy]
    dataplanes = [r for r in resources if r.kind is DATAPLANE]
    cache = ResourceInterner()
    if variant == "tracing-off":
        before_ctx = build_mesh_context(mesh, [], dataplanes)
    else:
        before_ctx = build_mesh_context(mesh, policies, dataplanes[:1])
    before = generate(before_ctx, build_proxy(before_ctx, dataplanes[0]), cache)
    ctx = build_mesh_context(mesh, policies, dataplanes)
    proxy = build_proxy(ctx, dataplanes[0])

    after = generate(ctx, proxy, cache, before)
    updated = _full(before).update({t: after.entries(t) for t in after.changed_types})

    expected = Snapshot.build(generate_snapshot(ctx, proxy, ResourceInterner()).entries())
    assert updated.versions() == expected.versions()
    assert {t: {n: e.value for n, e in updated.resources(t).items()} for t in updated.types} == {
        t: {n: e.value for n, e in expected.resources(t).items()} for t in expected.types}
    assert dict(updated.eds_names) == dict(expected.eds_names)
    assert updated.check_consistent(after.changed_types) == expected.check_consistent() == []
    assert after.listeners == generate(ctx, proxy, ResourceInterner()).listeners

    reused = {name for name, old, new in zip(CONCERNS, before.parts, after.parts, strict=True) if old is new}
    if variant == "tracing-off":
        assert {"inbound", "outbound"} <= reused  # a tracing change touches the listeners and the collector
    else:
        assert {"inbound", "inbound-listeners", "tracing"} <= reused  # endpoints: destinations and outbounds


def test_unchanged_inputs_reuse_every_concern() -> None:
    resources = load_resources(GOLDEN / "generate" / "zipkin-http.input.yaml")
    mesh = next(r for r in resources if r.kind is MESH)
    dataplanes = [r for r in resources if r.kind is DATAPLANE]
    policies = [r for r in resources if r.kind.policy]
    cache = ResourceInterner()
    first = generate(build_mesh_context(mesh, policies, dataplanes),
                     build_proxy(build_mesh_context(mesh, policies, dataplanes), dataplanes[0]), cache)
    ctx = build_mesh_context(mesh, policies, dataplanes)  # a new context with equal content
    again = generate(ctx, build_proxy(ctx, dataplanes[0]), cache, first)
    assert again.parts == first.parts and again.changed_types == frozenset()
