"""S1 (idle): CPU and pushes of both servers over a quiet window; with simulated stats sinks (`--stats-interval`),
the same window again once they are closed, so the difference is what ingesting the reports costs.

Both windows run in the same control-plane process with the same ADS streams, one after the other, so the
comparison is not between two runs on a machine whose load moves. The reports the control plane read come
from its own `stats_reports_total` counter, so the cost per report is per report actually ingested.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bench.clients import ClientPool
from bench.cp_api import ControlPlaneApi
from bench.measure import CP, FLOOR, Tracker
from bench.processes import cpu_seconds
from bench.report import Progress

STATS_REPORTS: Final = "stats_reports_total"
"""The control plane's counter of the stats-sink reports it read (controlplane/observability.py)."""


@dataclass
class IdleProbe:
    pids: Mapping[int, int]
    tracker: Tracker
    api: ControlPlaneApi
    pool: ClientPool
    progress: Progress
    idle_s: float
    reporting: bool = False

    async def run(self, streams: int) -> dict[str, Any]:
        self.progress.phase(f"S1: measuring idle CPU for {self.idle_s:g} s with {streams} streams per server")
        reports0 = await self.api.counter(STATS_REPORTS) if self.reporting else 0.0
        window = await self.window()
        result: dict[str, Any] = {
            "idle_cpu_pct": window["cp_pct"], "floor_idle_cpu_pct": window["floor_pct"],
            "idle_pushes": window["cp_pushes"], "cpu_s": window["cp_s"],
            "pushes_ok": window["cp_pushes"] == 0 and window["floor_pushes"] == 0}
        if self.reporting:
            ingested = await self.api.counter(STATS_REPORTS) - reports0
            result.update(await self._without_reports(window, ingested))
        return result

    async def window(self) -> dict[str, float]:
        """CPU (percent of one core, seconds) and pushes of both servers over one `idle_s` window."""
        before = {s: cpu_seconds(p) for s, p in self.pids.items()}
        counts = {s: len(self.tracker.records[s]) for s in self.pids}
        await asyncio.sleep(self.idle_s)
        cpu = {s: cpu_seconds(p) - before[s] for s, p in self.pids.items()}
        pushes = {s: len(self.tracker.records[s]) - counts[s] for s in self.pids}
        return {"cp_pct": round(100 * cpu[CP] / self.idle_s, 2), "floor_pct": round(100 * cpu[FLOOR] / self.idle_s, 2),
                "cp_s": round(cpu[CP], 3), "cp_pushes": pushes[CP], "floor_pushes": pushes[FLOOR]}

    async def _without_reports(self, with_reports: Mapping[str, float], ingested: float) -> dict[str, Any]:
        await self.pool.unreport()
        await asyncio.sleep(2.0)
        self.progress.phase(f"S1: idle CPU again for {self.idle_s:g} s, every stats sink closed")
        window = await self.window()
        extra_s = with_reports["cp_s"] - window["cp_s"]
        return {"idle_cpu_pct_without_reports": window["cp_pct"],
                "stats_ingest_cpu_pct": round(with_reports["cp_pct"] - window["cp_pct"], 2),
                "stats_reports_ingested": int(ingested),
                "stats_us_per_report": round(1e6 * extra_s / ingested, 1) if ingested else None}
