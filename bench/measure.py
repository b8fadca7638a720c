"""Turning client records into measurements: convergence per proxy, push-count checks, the run summary.

Responsible for the definitions of reference/performance.md §7.6: a change has converged for a proxy when
the ACK of the last expected type carries the target version; `pushes_ok` requires exactly the expected
pushes per (proxy, type) in the window and the expected final version of every type. Pure apart from the
`Tracker`'s asyncio.Event (the driver waits on it). Must not: start processes or apply changes.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bench.ads_stream import NACK, Record
from bench.scenarios import Plan
from bench.workload import ADS_TYPES, TYPE_CODES, Mode, ProxyConfig
from controlplane.xds import types

FLOOR, CP = 0, 1
SERVER_NAMES: Final = {FLOOR: "floor", CP: "cp"}
MAX_PROBLEMS: Final = 10
TYPE_NAMES: Final = ("CDS", "EDS", "LDS", "RDS")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Tracker:
    """All records per server, the latest version per (server, node, type), and the pending targets."""

    def __init__(self) -> None:
        self.records: dict[int, list[Record]] = {FLOOR: [], CP: []}
        self.latest: dict[tuple[int, int, int], str] = {}
        self.pending: dict[tuple[int, int], str] = {}
        self.met: dict[tuple[int, int], float] = {}
        self.server = -1
        self.t_start = 0.0
        self.done = asyncio.Event()

    def expect(self, server: int, targets: Mapping[tuple[int, int], str], t_start: float) -> None:
        self.server, self.t_start = server, t_start
        self.pending, self.met = dict(targets), {}
        self.done = asyncio.Event()
        if not self.pending:
            self.done.set()

    def on_records(self, batch: list[Record]) -> None:
        for record in batch:
            server, node, code, version, t, _, _ = record
            self.records[server].append(record)
            self.latest[(server, node, code)] = version
            if server == self.server and t >= self.t_start:
                key = (node, code)
                if self.pending.get(key) == version:
                    del self.pending[key]
                    self.met[key] = t
                    if not self.pending:
                        self.done.set()

    def pending_proxies(self) -> int:
        return len({n for n, _ in self.pending})


@dataclass
class ChangeResult:
    server: int
    label: str
    convergence: list[float]
    pushes_ok: bool
    problems: list[str]
    cpu_s: float
    bytes_per_proxy: float
    pushes: int
    api_lag_ms: list[float] = field(default_factory=list)
    group: str = ""

    def stats(self) -> dict[str, float]:
        c = self.convergence
        return {"p50": percentile(c, 0.5), "p99": percentile(c, 0.99), "max": max(c) if c else 0.0}


def change_result(server: int, label: str, window: Sequence[Record], met: Mapping[tuple[int, int], float],
                  t0: float, cpu_s: float, problems: list[str], lag: list[float] | None = None) -> ChangeResult:
    """Per proxy, convergence is its slowest type: the proxy runs the new config only once all have landed."""
    per_node: dict[int, float] = {}
    for (node, _), t in met.items():
        per_node[node] = max(per_node.get(node, 0.0), t - t0)
    convergence = [max(0.0, v) for v in per_node.values()]
    affected = max(1, len(per_node))
    return ChangeResult(server, label, convergence, not problems, problems, cpu_s,
                        sum(r[5] for r in window) / affected, len(window), lag if lag is not None else [])


@dataclass(frozen=True, slots=True)
class PushCheck:
    """What a window of records must show: the pushes each proxy expects and the configs it must end on."""

    expected: Mapping[int, frozenset[str]]
    final: Sequence[ProxyConfig]
    nodes: Sequence[str]
    mode: Mode
    plan: Plan


def check_pushes(window: Sequence[Record], check: PushCheck,
                 latest: Callable[[int, int], str | None]) -> list[str]:
    """Up to 10 problems (more would only repeat the first ones), plus the NACK count in S5."""
    counts: dict[tuple[int, int], int] = {}
    nacks = 0
    for record in window:
        key = (record[1], record[2])
        counts[key] = counts.get(key, 0) + 1
        nacks += record[6] == NACK
    problems: list[str] = []
    for i, pushes in check.expected.items():
        wanted = {TYPE_CODES[t] for t in pushes}
        for code in range(4):
            problems += _proxy_problems(check, i, code, code in wanted, counts.get((i, code), 0), latest(i, code))
            del problems[MAX_PROBLEMS:]
    if check.plan.nack_node is not None and nacks != 1:
        problems.append(f"expected exactly 1 NACK from the NACKing proxy, saw {nacks}")
    return problems


def _proxy_problems(check: PushCheck, i: int, code: int, wanted: bool, got: int, latest: str | None) -> list[str]:
    problems = []
    ok = (1 <= got <= check.plan.max_pushes_per_type) if wanted else got == 0
    if not ok:
        problems.append(f"{check.nodes[i]} {TYPE_NAMES[code]}: {got} pushes, expected {'1' if wanted else '0'}")
    nacked = check.plan.nack_node == i and code == TYPE_CODES[types.LISTENER_TYPE]
    final = check.final[i].target(ADS_TYPES[code], check.mode)
    if not nacked and latest != final:
        problems.append(f"{check.nodes[i]} {ADS_TYPES[code].rsplit('.', 1)[1]}: ends on {latest}, "
                        f"expected {final}")
    return problems


def summarise(results: Mapping[int, list[ChangeResult]],
              comparisons: Sequence[tuple[str, str, str]] = ()) -> dict[str, Any]:
    """Medians over rounds (one round per change and server), so one noisy round cannot move the figure.

    When the changes come in groups (S2t), each group is also summarised on its own, and each comparison
    (name, baseline group, candidate group) pairs the k-th change of the two groups, i.e. the same round."""
    out = _summary(results)
    groups = sorted({r.group for r in results[CP] if r.group})
    if groups:
        out["groups"] = {g: _summary({s: [r for r in rs if r.group == g] for s, rs in results.items()})
                         for g in groups}
    for name, baseline, candidate in comparisons:
        out.setdefault("comparisons", {})[name] = compare_groups(results[CP], baseline, candidate)
    return out


def compare_groups(cp: Sequence[ChangeResult], baseline: str, candidate: str) -> dict[str, Any]:
    """Per-round ratios candidate / baseline (p50, p99, CPU) and their medians: below 1 = candidate faster."""
    pairs = list(zip((r for r in cp if r.group == baseline), (r for r in cp if r.group == candidate), strict=False))
    out: dict[str, Any] = {"baseline": baseline, "candidate": candidate, "rounds": len(pairs)}
    for key, value in (("p50", lambda r: r.stats()["p50"]), ("p99", lambda r: r.stats()["p99"]),
                       ("cpu", lambda r: r.cpu_s)):
        ratios = [value(c) / value(b) for b, c in pairs if value(b) > 0]
        if ratios:
            out[f"{key}_ratio"] = round(statistics.median(ratios), 3)
            out[f"{key}_ratio_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
    return out


def _summary(results: Mapping[int, list[ChangeResult]]) -> dict[str, Any]:
    cp, floor = results[CP], results[FLOOR]
    if not cp:
        return {"pushes_ok": False}
    cps = [r.stats() for r in cp]
    out: dict[str, Any] = {}
    out["p50_s"] = round(statistics.median(s["p50"] for s in cps), 4)
    out["p99_s"] = round(statistics.median(s["p99"] for s in cps), 4)
    out["max_s"] = round(max(s["max"] for s in cps), 4)
    out["rounds"] = [{k: round(v, 4) for k, v in s.items()} for s in cps]
    out["cpu_s"] = round(statistics.median(r.cpu_s for r in cp), 4)
    out["affected"] = len(cp[0].convergence)
    out["bytes_per_affected_proxy"] = round(statistics.median(r.bytes_per_proxy for r in cp))
    out["pushes_ok"] = all(r.pushes_ok for r in cp) and all(r.pushes_ok for r in floor)
    out["problems"] = [p for r in (*cp, *floor) for p in r.problems][:20]
    lag = [x for r in cp for x in r.api_lag_ms]
    out["api_latency_p99_ms"] = round(percentile(lag, 0.99), 1)
    out["api_latency_max_ms"] = round(max(lag), 1) if lag else 0.0
    if floor:
        out.update(_floor_summary(cps, floor, out["cpu_s"]))
    return out


def _floor_summary(cps: Sequence[Mapping[str, float]], floor: Sequence[ChangeResult], cpu_s: float
                   ) -> dict[str, Any]:
    """Ratios pair each CP round with the floor round of the same change, measured in the same minute."""
    fls = [r.stats() for r in floor]
    out: dict[str, Any] = {}
    out["floor_p50_s"] = round(statistics.median(s["p50"] for s in fls), 4)
    out["floor_p99_s"] = round(statistics.median(s["p99"] for s in fls), 4)
    out["floor_max_s"] = round(max(s["max"] for s in fls), 4)
    out["floor_cpu_s"] = round(statistics.median(r.cpu_s for r in floor), 4)
    ratios = [c["p99"] / f["p99"] for c, f in zip(cps, fls, strict=False) if f["p99"] > 0]
    if ratios:
        out["ratio_p99"] = round(statistics.median(ratios), 2)
        out["ratio_p99_range"] = [round(min(ratios), 2), round(max(ratios), 2)]
    maxes = [c["max"] / f["max"] for c, f in zip(cps, fls, strict=False) if f["max"] > 0]
    if maxes:
        out["ratio_max"] = round(statistics.median(maxes), 2)
    if out["floor_cpu_s"] > 0:
        out["ratio_cpu"] = round(cpu_s / out["floor_cpu_s"], 2)
    return out
