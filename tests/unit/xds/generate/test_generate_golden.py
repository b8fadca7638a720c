"""Golden snapshots: one case per tests/golden/generate/<case>.input.yaml; the first Dataplane is the proxy.

Regenerate with `UPDATE_GOLDEN_FILES=1 /work/venv/bin/pytest tests/unit/xds/generate` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import load_resources
from envoy.config.cluster.v3 import cluster_pb2
from golden import assert_golden

from controlplane.policy import ResolutionReason
from controlplane.resources.model import Kind
from controlplane.xds.generate import MeshContext, Proxy, build_mesh_context, build_proxy, generate_snapshot

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
    by_kind = {kind: [r for r in resources if r.kind is kind] for kind in Kind}
    ctx = build_mesh_context(by_kind[Kind.MESH][0], by_kind[Kind.TRAFFIC_TRACE], by_kind[Kind.DATAPLANE])
    return ctx, build_proxy(ctx, by_kind[Kind.DATAPLANE][0])


def test_every_case_has_an_expected_resolution() -> None:
    assert sorted(RESOLUTIONS) == CASES


@pytest.mark.parametrize("case", CASES)
def test_snapshot_golden(case: str) -> None:
    ctx, proxy = load_case(case)
    assert_golden(generate_snapshot(ctx, proxy), GOLDEN_DIR / f"{case}.snapshot.golden.yaml")


@pytest.mark.parametrize("case", CASES)
def test_resolution(case: str) -> None:
    _, proxy = load_case(case)
    backend = proxy.tracing.backend
    actual = (
        proxy.tracing.traffic_trace,
        backend.name if backend is not None else None,
        proxy.tracing.reason,
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
