"""Smoke test of the scale benchmark (`python -m bench run`): it still runs end to end and its checks pass.

The harness is only run by hand for numbers (bench/RESULTS.md), so without this a refactoring of the
control plane or of bench/ could break it unnoticed. Runs it as a subprocess, exactly as documented, at a
small size (50 proxies, 2 real Envoys, no CPU pinning so it fits any CI machine) and asserts correctness
only: exit status, `pushes_ok` and the JSON keys reports rely on. Never timing: CI machines are shared
and noisy, and the numbers are meaningful only under the conditions RESULTS.md records.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
TIMEOUT_S: Final = 120
REQUIRED_KEYS: Final = ("scenario", "proxies", "mode", "p50_s", "p99_s", "max_s", "floor_p99_s", "ratio_p99",
                        "pushes_ok", "cpu_s", "rss_per_proxy_kb")


def run_bench(json_path: Path, *args: str) -> list[dict[str, Any]]:
    """Run `python -m bench run ... --no-pin --json F` from the repository root; return its results."""
    command = [sys.executable, "-m", "bench", "run", "--proxies", "50", "--no-pin", "--json", str(json_path), *args]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
                               check=False)
    assert completed.returncode == 0, f"{' '.join(args)}: exit {completed.returncode}\n" \
        f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr[-4000:]}"
    payload = json.loads(json_path.read_text())
    return payload if isinstance(payload, list) else [payload]


@pytest.mark.parametrize(
    ("scenario", "args"),
    [
        ("S2a", ("--scenario", "S2a", "--rounds", "2", "--envoys", "2")),
        ("S5", ("--scenario", "S5", "--rounds", "2")),
    ],
    ids=["S2a-envoys", "S5-nack"],
)
def test_bench_run_passes_its_correctness_checks(tmp_path: Path, scenario: str, args: tuple[str, ...]) -> None:
    results = run_bench(tmp_path / "result.json", *args)
    assert results
    for result in results:
        missing = [key for key in REQUIRED_KEYS if key not in result]
        assert not missing, f"missing keys {missing} in {sorted(result)}"
        assert result["scenario"] == scenario
        assert result["proxies"] == 50
        assert result["mode"] == "sotw"
        assert result["pushes_ok"] is True, result.get("problems")


def test_idle_run_with_simulated_stats_sinks_reports_what_their_ingest_costs(tmp_path: Path) -> None:
    """S1 with `--stats-interval`: every proxy streams reports to the control plane's metrics service, the
    control plane reads them (its own counter), and the run reports the idle CPU with and without them."""
    (result,) = run_bench(tmp_path / "result.json", "--scenario", "S1", "--idle-seconds", "2", "--stats-interval", "1")
    assert result["pushes_ok"] is True
    assert result["stats_interval_s"] == 1.0
    for key in ("idle_cpu_pct", "idle_cpu_pct_without_reports", "stats_ingest_cpu_pct", "stats_us_per_report"):
        assert isinstance(result[key], int | float), (key, result)
    sent, errors = result["client_stats"]["stats_reports"], result["client_stats"]["stats_errors"]
    assert errors == 0
    # Every sink reported before the window opened; in it, the control plane read reports the sinks sent.
    assert sent >= 50 + result["stats_reports_ingested"] and result["stats_reports_ingested"] > 0, result
