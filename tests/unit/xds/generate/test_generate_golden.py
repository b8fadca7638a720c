"""Golden snapshots: one case per tests/golden/generate/<case>.input.yaml; the first Dataplane is the proxy.

Regenerate with `UPDATE_GOLDEN_FILES=1 python -m pytest tests/unit/xds/generate` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import load_resources
from envoy.config.cluster.v3 import cluster_pb2
from golden import assert_golden

from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.policies.traffictrace.plugin import Reason as ResolutionReason
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.mesh import MESH
from controlplane.resources.registry import KINDS
from controlplane.xds.generate.context import MeshContext, Proxy, build_mesh_context, build_proxy
from controlplane.xds.generate.generators import generate_snapshot

GOLDEN_DIR = Path(__file__).parents[3] / "golden" / "generate"
CASES = sorted(path.name.removesuffix(".input.yaml") for path in GOLDEN_DIR.glob("*.input.yaml"))

# Expected (matched TrafficTrace, backend, reason) per case: pins the policy side of each golden.
RESOLUTIONS: dict[str, tuple[str | None, str | None, ResolutionReason | None]] = {
    "backend-not-found": ("trace-all-traffic", None, ResolutionReason.BACKEND_NOT_FOUND),
    "backends-by-region": ("trace-eu", "zipkin-eu", None),
    "datadog": ("trace-all-traffic", "datadog-collector", None),
    "datadog-split-service": ("trace-all-traffic", "datadog-collector", None),
    "grpc-http2-service": ("trace-all-traffic", "jaeger-collector", None),
    "no-matching-traffic-trace": (None, None, ResolutionReason.NO_MATCHING_POLICY),
    "tcp-service": ("trace-all-traffic", "jaeger-collector", None),
    "zipkin-http": ("trace-all-traffic", "jaeger-collector", None),
    "zipkin-http-proto": ("trace-all-traffic", "jaeger-collector", None),
    "zipkin-https": ("trace-all-traffic", "jaeger-collector", None),
    "zipkin-sampling-unset": ("trace-all-traffic", "jaeger-collector", None),
}


def load_case(case: str) -> tuple[MeshContext, Proxy]:
    resources = load_resources(GOLDEN_DIR / f"{case}.input.yaml")
    by_kind = {kind: [r for r in resources if r.kind is kind] for kind in KINDS}
    ctx = build_mesh_context(by_kind[MESH][0], by_kind[TRAFFIC_TRACE], by_kind[DATAPLANE])
    return ctx, build_proxy(ctx, by_kind[DATAPLANE][0])


def test_every_case_has_an_expected_resolution() -> None:
    assert sorted(RESOLUTIONS) == CASES


@pytest.mark.parametrize("case", CASES)
def test_snapshot_golden(case: str) -> None:
    ctx, proxy = load_case(case)
    assert_golden(generate_snapshot(ctx, proxy), GOLDEN_DIR / f"{case}.snapshot.golden.yaml")


@pytest.mark.parametrize("case", CASES)
def test_resolution(case: str) -> None:
    _, proxy = load_case(case)
    decision = proxy.policies.decision(TRAFFIC_TRACE)
    actual = (
        decision.matched[-1] if decision.matched else None,
        decision.tracing.backend.name if decision.tracing is not None else None,
        ResolutionReason(decision.reason) if decision.reason else None,
    )
    assert actual == RESOLUTIONS[case]


def test_assert_golden_mismatch_says_how_to_regenerate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UPDATE_GOLDEN_FILES", raising=False)
    golden = tmp_path / "x.cluster.golden.yaml"
    golden.write_text("name: other\n")
    with pytest.raises(AssertionError, match="UPDATE_GOLDEN_FILES=1"):
        assert_golden(cluster_pb2.Cluster(name="x"), golden)


def test_assert_golden_update_writes_and_empty_output_deletes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    golden = tmp_path / "x.cluster.golden.yaml"
    monkeypatch.setenv("UPDATE_GOLDEN_FILES", "1")
    assert_golden(cluster_pb2.Cluster(name="x"), golden)
    assert golden.read_text() == "name: x\n"
    assert_golden(cluster_pb2.Cluster(), golden)
    assert not golden.exists()
    monkeypatch.delenv("UPDATE_GOLDEN_FILES")
    assert_golden(cluster_pb2.Cluster(), golden)  # empty output and no file: passes
