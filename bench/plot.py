"""Chart of S2a/S6 convergence p99 against the number of proxies, with the in-run floor.

Usage: python -m bench.plot AFTER.json [--before BEFORE.json] [--out bench/convergence.png]

The JSON files are what `python -m bench run --scenario S6 --proxies 100,500,1000,2000 --json F` writes.
matplotlib is a tool of this script only, not a dependency of the project (pip install it into the venv).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _points(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    rows = data if isinstance(data, list) else [data]
    return sorted((r for r in rows if r.get("p99_s") is not None), key=lambda r: r["proxies"])


def plot(after: Path, before: Path | None, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    series = [("control plane (after)", after, "o-", "tab:blue")]
    if before is not None:
        series.insert(0, ("control plane (before)", before, "s--", "tab:gray"))
    for label, path, style, color in series:
        rows = _points(path)
        ax.plot([r["proxies"] for r in rows], [r["p99_s"] for r in rows], style, color=color, label=label)
    rows = _points(after)
    ax.plot([r["proxies"] for r in rows], [r["floor_p99_s"] for r in rows], "^:", color="tab:green",
            label="floor (pre-serialised, same run)")
    ax.axhline(1.0, color="tab:red", linewidth=0.8, linestyle="--", label="goal at N=1000 (1 s)")
    ax.set_xlabel("proxies (simulated ADS clients, SotW)")
    ax.set_ylabel("S2a convergence p99 (s)")
    ax.set_title("Mesh-wide TrafficTrace toggle: apply → last ACK (2 vCPU)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("after", type=Path)
    parser.add_argument("--before", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/convergence.png"))
    args = parser.parse_args()
    plot(args.after, args.before, args.out)


if __name__ == "__main__":
    main()
