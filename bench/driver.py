"""The benchmark driver: start the control plane, the floor server and the clients; run a plan; measure.

Responsible for orchestration (reference/performance.md §7.1, §7.5, §7.6): the control plane runs as a
subprocess (pinned to CPU 0 when there are 2 cores) and the floor server as a separate process on the same
CPU (bench/processes.py); client processes (bench/clients.py) and the driver share CPU 1. Both servers serve
the same simulated proxies at the same time (one stream per proxy per server) and every change is applied
to the floor and to the control plane in turn (ABAB...), so each round yields a ratio measured in the same
minute.

Convergence of a change = for each affected proxy, time from `t0` (control plane: the HTTP PUT returned;
floor: the switch command sent) to the ACK of the last expected type carrying the target version. The run
records pushes per proxy and type inside the window (until a quiet period after convergence) and fails the
correctness check (`pushes_ok: false`) if any count differs from `workload.expected_pushes`; the definitions
live in bench/measure.py. Must not: compute statistics itself or read /proc directly.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.ads_stream import Record
from bench.clients import ClientPool
from bench.cp_api import ControlPlaneApi
from bench.idle import STATS_REPORTS, IdleProbe
from bench.measure import (
    CP,
    FLOOR,
    SERVER_NAMES,
    ChangeResult,
    PushCheck,
    Tracker,
    change_result,
    check_pushes,
    summarise,
)
from bench.processes import ControlPlaneProcess, FloorProcess, cpu_seconds, rss_kb
from bench.real_envoys import RealEnvoys, envoy_proxies
from bench.report import Progress
from bench.scenarios import Change, Plan, build_plan, states_of
from bench.workload import ADS_TYPES, TYPE_CODES, Mode, Workload, expected_configs, expected_pushes
from controlplane.xds import types

PROXIES_PER_CLIENT_PROCESS = 750
MAX_CLIENT_PROCESSES = 4


@dataclass
class Options:
    proxies: int
    scenario: str
    mode: Mode = "sotw"
    envoys: int = 0
    rounds: int = 5
    instances: int = 2
    reach: int = 5
    seed: int = 1
    client_processes: int = 0
    debounce_s: float = 0.1
    max_wait_s: float = 1.0
    idle_s: float = 20.0
    spread_s: float = 10.0
    quiet_s: float = 0.5
    pin: bool = True
    no_floor: bool = False
    profile: Path | None = None
    allocator: str = "pymalloc"
    stats_interval_s: float = 0.0  # > 0: every proxy also reports stats this often (bench/stats_reporter.py)


class Harness:
    """One run of one scenario at one N: fresh servers and clients each time, so runs never share state."""

    def __init__(self, options: Options, progress: Progress) -> None:
        self.o = options
        self.progress = progress
        self.tracker = Tracker()
        two = (os.cpu_count() or 1) >= 2 and options.pin and hasattr(os, "sched_setaffinity")
        self.server_cpus = {0} if two else None
        self.client_cpus = {1} if two else None
        self.pinning = "cp+floor: cpu0; clients+driver(+envoys): cpu1" if two else "none"
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-"))

    # -- set-up --

    async def run(self, workload: Workload) -> dict[str, Any]:
        if self.client_cpus:
            os.sched_setaffinity(0, self.client_cpus)
        plan, docs = self._prepare(workload)
        async with aiohttp.ClientSession() as session:
            self.cp = ControlPlaneProcess(self.o.debounce_s, self.o.max_wait_s, "0" if self.server_cpus else None,
                                          self.workdir / "cp.log", self.o.allocator)
            self.api = ControlPlaneApi(session, self.cp.base)
            self.floor = FloorProcess(self.configs, self.o.mode == "delta", self.server_cpus)
            processes = self.o.client_processes or max(
                1, min(MAX_CLIENT_PROCESSES, -(-len(self.nodes) // PROXIES_PER_CLIENT_PROCESS)))
            self.pool = ClientPool(processes, self.client_cpus, self.tracker.on_records)
            self.pool.attach(asyncio.get_running_loop())
            try:
                await self.cp.wait_ready(session)
                await self.floor.wait_ready()
                self.pids = {CP: self.cp.pid, FLOOR: self.floor.pid}
                async with AsyncExitStack() as stack:
                    self.envoys = RealEnvoys(stack, self.client_cpus is not None)
                    result = await self._run_plan(plan, docs[0])
                shutil.rmtree(self.workdir, ignore_errors=True)  # kept (with cp.log) only when a run fails
                return result
            finally:
                await self.pool.stop(asyncio.get_running_loop())
                await self.floor.stop()
                self.cp.stop()

    def _prepare(self, workload: Workload) -> tuple[Plan, list[list[dict[str, Any]]]]:
        """Build the plan and every state's expected configs before any clock starts (floor and checks)."""
        self.envoy_specs = envoy_proxies(workload, self.o.envoys)
        scenario = "S2a" if self.o.scenario == "S6" else self.o.scenario
        plan = build_plan(scenario, workload, self.o.rounds, self.envoy_specs)
        self.nodes = [p.node_id for p in workload.proxies]
        self.progress.phase(f"building expected configs for {len(self.nodes)} proxies")
        docs, self.targets = states_of(plan)
        wanted = self.nodes + [p.node_id for p in self.envoy_specs]
        self.configs = [expected_configs(d, wanted) for d in docs]
        return plan, docs

    async def _quiesce(self, timeout: float = 60) -> None:
        """Wait until the control plane has generated everything (CPU idle for 0.5 s)."""
        deadline = time.perf_counter() + timeout
        await asyncio.sleep(max(0.5, 3 * self.o.debounce_s))
        while time.perf_counter() < deadline:
            before = cpu_seconds(self.pids[CP])
            await asyncio.sleep(0.5)
            if cpu_seconds(self.pids[CP]) - before < 0.02:
                return

    async def _connect(self, indexes: range, state: int, timeout: float) -> float:
        """Open the streams of `indexes` on both servers; wait until each has all four types at `state`."""
        ramp = max(0.5, len(indexes) / 200)
        targets = {}
        for i in indexes:
            config = self.configs[state][self.nodes[i]]
            for type_url in ADS_TYPES:
                targets[(i, TYPE_CODES[type_url])] = config.target(type_url, self.o.mode)
        nodes = [(i, self.nodes[i]) for i in indexes]
        started = time.perf_counter()
        for server, port in ((FLOOR, self.floor.port), (CP, self.cp.xds_port)):
            self.tracker.expect(server, targets, started)
            self.pool.connect(server, f"127.0.0.1:{port}", nodes, self.o.mode == "delta", ramp)
            await self._wait(timeout + ramp, f"connect {SERVER_NAMES[server]}", len(indexes))
        return time.perf_counter() - started

    async def _wait(self, timeout: float, what: str, total: int) -> bool:
        deadline = time.perf_counter() + timeout
        while not self.tracker.done.is_set():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                missing = sorted(self.tracker.pending.items())[:5]
                self.progress.phase(f"{what}: TIMEOUT, {len(self.tracker.pending)} (node, type) pending, "
                                    f"e.g. {[(self.nodes[n], c, v) for (n, c), v in missing]}")
                return False
            try:
                await asyncio.wait_for(self.tracker.done.wait(), min(0.25, remaining))
            except TimeoutError:
                pass
            self.progress.update(what, total - self.tracker.pending_proxies(), total)
        return True

    # -- the plan --

    async def _run_plan(self, plan: Plan, base_docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        memory = self._memory("empty")
        result = await self._load_and_connect(base_docs, memory)
        if self.o.stats_interval_s > 0:
            await self._start_reporters(result)
        if self.envoy_specs:
            self.progress.phase(f"starting {len(self.envoy_specs)} real Envoys")
            await self.envoys.start(self.envoy_specs, self.cp.xds_port, self.o.mode == "delta", self.configs[0])
        if plan.nack_node is not None:
            for server in (FLOOR, CP):
                self.pool.set_nack(server, plan.nack_node, TYPE_CODES[types.LISTENER_TYPE], True)
            await asyncio.sleep(0.1)
        result.update(await self._profiled(plan))
        if plan.kind == "idle":
            result.update(await self._disconnect(memory))
        result.update(self._rss_per_proxy(memory))
        result["client_stats"] = await self.pool.stats()
        return result

    async def _start_reporters(self, result: dict[str, Any]) -> None:
        """Every proxy's simulated stats sink to the CP (the floor serves no metrics service); measuring
        starts once the CP has read a first report of every one."""
        interval, n = self.o.stats_interval_s, len(self.nodes)
        self.progress.phase(f"starting {n} stats reporters, a report every {interval:g} s each")
        first = await self.api.counter(STATS_REPORTS)
        self.pool.report(f"127.0.0.1:{self.cp.xds_port}", list(enumerate(self.nodes)), interval, self.o.reach)
        await self.api.wait_counter(STATS_REPORTS, first + n, timeout=3 * interval + 30)
        result["stats_interval_s"] = interval

    def _memory(self, stage: str) -> dict[str, int]:
        return {f"cp_{stage}_kb": rss_kb(self.pids[CP]), f"floor_{stage}_kb": rss_kb(self.pids[FLOOR])}

    async def _load_and_connect(self, base_docs: Sequence[Mapping[str, Any]], memory: dict[str, int]
                                ) -> dict[str, Any]:
        """Connect in two halves so the RSS slope over N/2 → N excludes fixed costs (§7.5)."""
        n = len(self.nodes)
        self.progress.phase(f"loading {len(base_docs)} documents into the control plane")
        t = time.perf_counter()
        await self.api.load(base_docs)
        load_s = time.perf_counter() - t
        await self._quiesce()
        memory["cp_loaded_kb"] = rss_kb(self.pids[CP])
        half = n // 2
        connect_s = await self._connect(range(half), 0, 60) if half else 0.0
        memory.update(self._memory("half"))
        connect_s += await self._connect(range(half, n), 0, 60)
        await asyncio.sleep(1.0)
        memory.update(self._memory("full"))
        return {"load_s": round(load_s, 2), "connect_s": round(connect_s, 2), "memory": memory}

    def _rss_per_proxy(self, memory: Mapping[str, int]) -> dict[str, float]:
        n = len(self.nodes)
        half = n // 2
        out = {"rss_per_proxy_kb": round((memory["cp_full_kb"] - memory["cp_empty_kb"]) / n, 1)}
        if half and n - half:
            out["rss_slope_kb"] = round((memory["cp_full_kb"] - memory["cp_half_kb"]) / (n - half), 1)
            out["floor_rss_slope_kb"] = round((memory["floor_full_kb"] - memory["floor_half_kb"]) / (n - half), 1)
        return out

    async def _profiled(self, plan: Plan) -> dict[str, Any]:
        """The measured phase of the scenario, under py-spy when --profile asks for it."""
        profiler = self._start_profiler()
        if plan.kind == "idle":
            result = await self._idle()
        elif plan.kind == "storm":
            result = await self._storm()
        else:
            result = await self._changes(plan)
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)
            result["profile"] = str(self.o.profile)
        return result

    def _start_profiler(self) -> subprocess.Popen[bytes] | None:
        """py-spy on the control plane for the measured phase (collapsed stacks; see bench/RESULTS.md)."""
        if self.o.profile is None:
            return None
        py_spy = Path(sys.executable).with_name("py-spy")
        return subprocess.Popen([str(py_spy), "record", "--pid", str(self.pids[CP]), "--rate", "1000",
                                 "--format", "raw", "--output", str(self.o.profile), "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # -- changes (S2, S3, S5, S6) --

    async def _changes(self, plan: Plan) -> dict[str, Any]:
        """Alternate which server goes first per change, so neither always runs on a warmer machine."""
        results: dict[int, list[ChangeResult]] = {FLOOR: [], CP: []}
        previous = 0
        for k, change in enumerate(plan.changes):
            target = self.targets[k]
            order = (FLOOR, CP) if k % 2 == 0 else (CP, FLOOR)
            for server in order:
                if server == FLOOR and self.o.no_floor:
                    continue
                outcome = await self._measure(server, change, previous, target, plan)
                outcome.group = change.group
                if change.measured:
                    results[server].append(outcome)
            previous = target
        out = summarise(results, plan.comparisons)
        if self.envoys.times:
            out["envoys_all_on_version_s"] = {"median": round(statistics.median(self.envoys.times), 4),
                                              "max": round(max(self.envoys.times), 4)}
        return out

    async def _apply(self, server: int, change: Change, target: int) -> float:
        """Apply the change; return t0 (the moment it was accepted)."""
        if server == FLOOR:
            self.floor.send("advance", target)
            return time.perf_counter()
        for doc in change.deletes:
            await self.api.delete(doc)
        for i, doc in enumerate(change.puts):
            if i and change.spacing_s:
                await asyncio.sleep(change.spacing_s)
            await self.api.put(doc)
        return time.perf_counter()

    def _expectations(self, before: int, after: int, plan: Plan
                      ) -> tuple[PushCheck, dict[tuple[int, int], str]]:
        """Pushes each proxy must get for state `before` → `after`, and the version each pushed type ends on."""
        expected: dict[int, frozenset[str]] = {}
        targets: dict[tuple[int, int], str] = {}
        for i, node in enumerate(self.nodes):
            pushes = expected_pushes(self.configs[before][node], self.configs[after][node], self.o.mode)
            expected[i] = pushes
            for type_url in pushes:
                targets[(i, TYPE_CODES[type_url])] = self.configs[after][node].target(type_url, self.o.mode)
        return self._push_check(expected, after, plan), targets

    def _push_check(self, expected: Mapping[int, frozenset[str]], state: int, plan: Plan) -> PushCheck:
        final = [self.configs[state][node] for node in self.nodes]
        return PushCheck(expected, final, self.nodes, self.o.mode, plan)

    async def _measure(self, server: int, change: Change, before: int, after: int, plan: Plan) -> ChangeResult:
        check, targets = self._expectations(before, after, plan)
        position = len(self.tracker.records[server])
        lag: list[float] = []
        sampler = asyncio.create_task(self.api.sample_latency(lag)) if server == CP else None
        t_start = time.perf_counter()
        cpu0 = cpu_seconds(self.pids[server])
        self.tracker.expect(server, targets, t_start)
        t0 = await self._apply(server, change, after)
        watching = None
        if server == CP and self.envoys.running:
            watching = asyncio.create_task(self.envoys.converge(t0, self.configs[after]))
        what = f"{plan.scenario} {SERVER_NAMES[server]}: {change.label}"
        converged = await self._wait(30, what, len({n for n, _ in targets}))
        envoy_problem = await watching if watching is not None else None
        met = dict(self.tracker.met)
        await asyncio.sleep(self.o.quiet_s + (self.o.debounce_s if server == CP else 0))
        cpu_s = cpu_seconds(self.pids[server]) - cpu0
        if sampler is not None:
            sampler.cancel()
        window = self._window(server, position, t_start)
        problems = [] if converged else [f"not converged: {len(self.tracker.pending)} (node, type) pending"]
        problems += [envoy_problem] if envoy_problem else []
        problems += self._check(server, window, check)
        result = change_result(server, change.label, window, met, t0, cpu_s, problems, lag)
        self.progress.result(what, result)
        return result

    def _window(self, server: int, position: int, t_start: float) -> list[Record]:
        return [r for r in self.tracker.records[server][position:] if r[4] >= t_start]

    def _check(self, server: int, window: list[Record], check: PushCheck) -> list[str]:
        latest = self.tracker.latest
        return check_pushes(window, check, lambda i, code: latest.get((server, i, code)))

    # -- idle (S1) and storm (S4) --

    async def _idle(self) -> dict[str, Any]:
        await asyncio.sleep(2.0)
        probe = IdleProbe(self.pids, self.tracker, self.api, self.pool, self.progress, self.o.idle_s,
                          reporting=self.o.stats_interval_s > 0)
        return await probe.run(len(self.nodes))

    async def _disconnect(self, memory: dict[str, int]) -> dict[str, Any]:
        """After S1: does dropping every stream give the memory back (no per-proxy leak)?"""
        for server in (FLOOR, CP):
            self.pool.drop(server, 0, False)
        await asyncio.sleep(3.0)
        memory.update(self._memory("disconnected"))
        base = memory["cp_loaded_kb"]
        return {"rss_back_to_baseline": abs(memory["cp_disconnected_kb"] - base) <= 0.1 * base}

    async def _storm(self) -> dict[str, Any]:
        results: dict[int, list[ChangeResult]] = {FLOOR: [], CP: []}
        for server in (FLOOR, CP):
            results[server].append(await self._storm_one(server))
        return summarise(results)

    async def _storm_one(self, server: int) -> ChangeResult:
        """Drop every stream of `server`; each reconnects within the spread and must get all four types once."""
        o = self.o
        targets = {}
        for i, node in enumerate(self.nodes):
            for type_url in ADS_TYPES:
                targets[(i, TYPE_CODES[type_url])] = self.configs[0][node].target(type_url, o.mode)
        position, pid = len(self.tracker.records[server]), self.pids[server]
        t0 = time.perf_counter()
        cpu0 = cpu_seconds(pid)
        self.tracker.expect(server, targets, t0)
        self.pool.drop(server, o.spread_s, True)
        what = f"S4 {SERVER_NAMES[server]}: reconnect within {o.spread_s:g} s"
        converged = await self._wait(o.spread_s + 15, what, len(self.nodes))
        met = dict(self.tracker.met)
        await asyncio.sleep(o.quiet_s)
        window = self._window(server, position, t0)
        expected = {i: frozenset(ADS_TYPES) for i in range(len(self.nodes))}
        problems = [] if converged else [f"stalled: {self.tracker.pending_proxies()} proxies"]
        problems += self._check(server, window, self._push_check(expected, 0, Plan("S4", ())))
        result = change_result(server, "storm", window, met, t0, cpu_seconds(pid) - cpu0, problems)
        self.progress.result(what, result)
        return result
