"""Progress display while the benchmark runs (stderr) and the summary table at the end (stdout).

Must not: measure anything; it only formats what the driver hands it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

JSON_KEYS = ("scenario", "proxies", "mode", "p50_s", "p99_s", "max_s", "floor_p99_s", "ratio_p99", "pushes_ok",
             "cpu_s", "rss_per_proxy_kb")


class _Result(Protocol):
    label: str
    pushes_ok: bool
    cpu_s: float
    problems: list[str]

    def stats(self) -> dict[str, float]: ...


class Progress:
    """One line per phase and per measured change; a live counter on a terminal."""

    def __init__(self, stream: Any = sys.stderr) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self._last = 0.0

    def _stamp(self) -> str:
        return f"[{time.perf_counter() - self.started:7.1f}s]"

    def phase(self, text: str) -> None:
        self._clear()
        print(f"{self._stamp()} {text}", file=self.stream, flush=True)

    def update(self, what: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if not self.tty or now - self._last < 0.2:
            return
        self._last = now
        print(f"\r{self._stamp()} {what}: {done}/{total} proxies converged", end="", file=self.stream, flush=True)

    def result(self, what: str, result: _Result) -> None:
        s = result.stats()
        status = "ok" if result.pushes_ok else "FAIL " + "; ".join(result.problems[:3])
        self.phase(f"{what}: p50 {s['p50'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms, "
                   f"max {s['max'] * 1000:.0f} ms, cpu {result.cpu_s:.3f} s, pushes {status}")

    def _clear(self) -> None:
        if self.tty:
            print("\r\033[K", end="", file=self.stream)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def summary_table(results: Sequence[dict[str, Any]]) -> str:
    header = ("scenario", "N", "mode", "p50 ms", "p99 ms", "max ms", "floor p99", "ratio p99", "cpu s",
              "floor cpu", "RSS/proxy KB", "slope KB", "API p99 ms", "idle CPU %", "pushes")
    rows = [header]
    for r in results:
        rows.append((
            r["scenario"], str(r["proxies"]), r["mode"], _ms(r.get("p50_s")), _ms(r.get("p99_s")),
            _ms(r.get("max_s")), _ms(r.get("floor_p99_s")), str(r.get("ratio_p99", "-")), str(r.get("cpu_s", "-")),
            str(r.get("floor_cpu_s", "-")), str(r.get("rss_per_proxy_kb", "-")), str(r.get("rss_slope_kb", "-")),
            str(r.get("api_latency_p99_ms", "-")), str(r.get("idle_cpu_pct", "-")),
            "ok" if r.get("pushes_ok") else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def stats_ingest_lines(results: Sequence[dict[str, Any]]) -> str:
    """S1 with `--stats-interval`: what ingesting the reports cost (bench/idle.py); "" for other runs."""
    lines = []
    for r in results:
        if "stats_ingest_cpu_pct" in r:
            lines.append(f"stats ingest, N={r['proxies']}, a report every {r['stats_interval_s']:g} s: "
                         f"{r['stats_ingest_cpu_pct']} % of one core (idle {r['idle_cpu_pct']} % with the reports, "
                         f"{r['idle_cpu_pct_without_reports']} % without), {r['stats_reports_ingested']} reports "
                         f"read, {r['stats_us_per_report']} µs per report")
    return "\n".join(lines)


def group_table(results: Sequence[dict[str, Any]]) -> str:
    """Per-group rows and the per-round comparisons of a grouped scenario (S2t); "" for the others."""
    lines = []
    for r in results:
        for group, g in sorted(r.get("groups", {}).items()):
            lines.append(f"{r['scenario']} N={r['proxies']} {group:12} p50 {_ms(g.get('p50_s'))} ms  p99 "
                         f"{_ms(g.get('p99_s'))} ms  max {_ms(g.get('max_s'))} ms  floor p99 "
                         f"{_ms(g.get('floor_p99_s'))} ms  ratio p99 {g.get('ratio_p99', '-')}  cpu {g.get('cpu_s')} s")
        for name, c in sorted(r.get("comparisons", {}).items()):
            lines.append(f"{r['scenario']} N={r['proxies']} {name}: {c['candidate']} / {c['baseline']} per round: "
                         f"p99 x{c.get('p99_ratio', '-')} {c.get('p99_ratio_range', '')}, p50 x{c.get('p50_ratio', '-')}, "
                         f"cpu x{c.get('cpu_ratio', '-')} ({c['rounds']} rounds)")
    return "\n".join(lines)


def write_json(path: Path, results: Sequence[dict[str, Any]]) -> None:
    payload: Any = results[0] if len(results) == 1 else list(results)
    path.write_text(json.dumps(payload, indent=2) + "\n")
