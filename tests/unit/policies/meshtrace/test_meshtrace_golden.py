"""MeshTrace generation: one golden snapshot per tests/golden/meshtrace/<case>.input.yaml (the first Dataplane
is the proxy; documents go through the real codec, so Kuma's schema defaults apply), and for the cases
ported from Kuma's plugin tests, the HCM tracing block on every HTTP listener and the collector cluster
compared whole with Kuma's own goldens (kuma-fragments.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from golden import assert_golden, render

from controlplane.resources.codec import decode_resource
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.mesh import MESH
from controlplane.resources.yaml_loader import load_documents
from controlplane.xds import types
from controlplane.xds.generate.context import Proxy, build_mesh_context, build_proxy
from controlplane.xds.generate.generators import generate_snapshot
from controlplane.xds.generate.resource_set import ResourceSet

GOLDEN_DIR = Path(__file__).parents[3] / "golden" / "meshtrace"
CASES = sorted(path.name.removesuffix(".input.yaml") for path in GOLDEN_DIR.glob("*.input.yaml"))
KUMA: dict[str, Any] = yaml.safe_load((GOLDEN_DIR / "kuma-fragments.yaml").read_text())


def generate(case: str) -> tuple[Proxy, ResourceSet]:
    resources = [decode_resource(doc) for doc in load_documents((GOLDEN_DIR / f"{case}.input.yaml").read_text())]
    mesh = next(r for r in resources if r.kind is MESH)
    dataplanes = [r for r in resources if r.kind is DATAPLANE]
    ctx = build_mesh_context(mesh, [r for r in resources if r.kind.policy], dataplanes)
    proxy = build_proxy(ctx, dataplanes[0])
    return proxy, generate_snapshot(ctx, proxy)


def test_every_kuma_fragment_has_a_case() -> None:
    assert set(KUMA) <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_snapshot_golden(case: str) -> None:
    assert_golden(generate(case)[1], GOLDEN_DIR / f"{case}.snapshot.golden.yaml")


def _blocks(resources: ResourceSet) -> dict[str, Any]:
    blocks = {}
    for name, data in render(resources)[types.LISTENER_TYPE].items():
        hcm = data["filterChains"][0]["filters"][0]["typedConfig"]
        if "HttpConnectionManager" in hcm["@type"]:
            blocks[name] = hcm.get("tracing")
    return blocks


@pytest.mark.parametrize("case", sorted(KUMA))
def test_tracing_block_and_cluster_are_kumas(case: str) -> None:
    expected = KUMA[case]
    _, resources = generate(case)
    blocks = _blocks(resources)
    assert blocks == {"inbound:127.0.0.1:17777": expected["tracing"],
                      "outbound:127.0.0.1:27777": expected.get("outbound", expected["tracing"])}
    if "cluster" in expected:
        clusters = render(resources)[types.CLUSTER_TYPE]
        tracing_clusters = {n: c for n, c in clusters.items() if n.startswith("meshtrace:")}
        assert tracing_clusters == ({} if expected["cluster"] is None else {expected["cluster"]["name"]: expected["cluster"]})


def test_meshtrace_displaces_traffictrace() -> None:
    proxy, resources = generate("meshtrace-over-traffictrace")
    assert [(d.kind, d.matched) for d in proxy.policies.displaced()] == [("TrafficTrace", ("trace-all-traffic",))]
    assert proxy.policies.applied is not None and proxy.policies.applied.kind == "MeshTrace"
    assert "tracing:jaeger" not in resources[types.CLUSTER_TYPE]
    assert "meshtrace:opentelemetry" in resources[types.CLUSTER_TYPE]
