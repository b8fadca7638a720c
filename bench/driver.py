"""The benchmark driver: start the control plane, the floor server and the clients; run a plan; measure.

Responsible for orchestration and measurement (reference/performance.md §7.1, §7.5, §7.6): the control
plane runs as a subprocess (`controlplane run --store memory`, pinned to CPU 0 when there are 2 cores) so its
CPU (/proc/<pid>/stat utime+stime) and RSS (/proc/<pid>/status VmRSS) are its own; the floor server is a
separate process on the same CPU; client processes and the driver share CPU 1. Both servers serve the same
simulated proxies at the same time (one stream per proxy per server) and every change is applied to the
floor and to the control plane in turn (ABAB...), so each round yields a ratio measured in the same minute.

Convergence of a change = for each affected proxy, time from `t0` (control plane: the HTTP PUT returned;
floor: the switch command sent) to the ACK of the last expected type carrying the target version. The run
records pushes per proxy and type inside the window (until a quiet period after convergence) and fails the
correctness check (`pushes_ok: false`) if any count differs from `workload.expected_pushes`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from bench.clients import NACK, ClientPool, Record
from bench.floor import floor_main
from bench.report import Progress
from bench.scenarios import Change, Plan, build_plan, states_of
from bench.workload import (
    ADS_TYPES,
    TYPE_CODES,
    Mode,
    ProxyConfig,
    ProxySpec,
    Workload,
    doc_path,
    expected_configs,
    expected_pushes,
)
from controlplane.xds import types

FLOOR, CP = 0, 1
SERVER_NAMES = {FLOOR: "floor", CP: "cp"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


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


# --- processes ------------------------------------------------------------------------------------------


class ControlPlaneProcess:
    def __init__(self, options: Options, cpus: str | None, log_path: Path) -> None:
        self.api_port, self.xds_port = free_port(), free_port()
        code = "from controlplane.cli.main import main; main()"
        command = [sys.executable, "-c", code, "run", "--store", "memory", "--api-port", str(self.api_port),
                   "--xds-address", "127.0.0.1", "--xds-port", str(self.xds_port), "--log-level", "warning",
                   "--debounce", str(options.debounce_s), "--max-wait", str(options.max_wait_s)]
        if cpus is not None:
            command = ["taskset", "-c", cpus, *command]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.base = f"http://127.0.0.1:{self.api_port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"control plane exited with {self.proc.returncode}; see {self.log.name}")
            try:
                async with session.get(self.base + "/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise TimeoutError("control plane not ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class FloorProcess:
    def __init__(self, states: list[dict[str, ProxyConfig]], delta: bool, cpus: set[int] | None) -> None:
        self.plan = tempfile.NamedTemporaryFile(prefix="bench-floor-", suffix=".pickle", delete=False)  # noqa: SIM115 - unlinked in stop()
        pickle.dump(states, self.plan)
        self.plan.close()
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.proc = context.Process(target=floor_main, args=(child, self.plan.name, delta, cpus), daemon=True)
        self.proc.start()
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    async def wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        kind, self.port = await loop.run_in_executor(None, self.conn.recv)
        assert kind == "ready"

    async def call(self, *command: Any) -> Any:
        self.conn.send(command)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.conn.recv)

    def send(self, *command: Any) -> None:
        self.conn.send(command)

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.call("stop"), 5)
        except (TimeoutError, EOFError, BrokenPipeError):
            pass
        self.proc.join(3)
        if self.proc.is_alive():
            self.proc.kill()
        os.unlink(self.plan.name)


# --- record tracking --------------------------------------------------------------------------------------


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

    def stats(self) -> dict[str, float]:
        c = self.convergence
        return {"p50": percentile(c, 0.5), "p99": percentile(c, 0.99), "max": max(c) if c else 0.0}


# --- the harness ------------------------------------------------------------------------------------------


class Harness:
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
        o = self.o
        if self.client_cpus:
            os.sched_setaffinity(0, self.client_cpus)
        self.envoy_specs = envoy_proxies(workload, o.envoys)
        plan = build_plan("S2a" if o.scenario == "S6" else o.scenario, workload, o.rounds, self.envoy_specs)
        self.nodes = [p.node_id for p in workload.proxies]
        self.progress.phase(f"building expected configs for {len(self.nodes)} proxies")
        docs, self.targets = states_of(plan)
        wanted = self.nodes + [p.node_id for p in self.envoy_specs]
        self.configs = [expected_configs(d, wanted) for d in docs]
        self.envoys: dict[str, Any] = {}
        self.envoy_times: list[float] = []
        result: dict[str, Any] = {}
        async with aiohttp.ClientSession() as session:
            self.session = session
            cp = ControlPlaneProcess(o, "0" if self.server_cpus else None, self.workdir / "cp.log")
            self.cp = cp
            floor = FloorProcess(self.configs, o.mode == "delta", self.server_cpus)
            self.floor = floor
            processes = o.client_processes or max(1, min(4, -(-len(self.nodes) // 750)))
            pool = ClientPool(processes, self.client_cpus, self.tracker.on_records)
            self.pool = pool
            pool.attach(asyncio.get_running_loop())
            try:
                await cp.wait_ready(session)
                await floor.wait_ready()
                self.pids = {CP: cp.pid, FLOOR: floor.pid}
                async with AsyncExitStack() as envoys:
                    self.envoy_stack = envoys
                    result = await self._run_plan(plan, docs[0])
            finally:
                await pool.stop(asyncio.get_running_loop())
                await floor.stop()
                cp.stop()
        return result

    async def _put(self, doc: Mapping[str, Any]) -> None:
        async with self.session.put(self.cp.base + doc_path(doc), json=doc) as response:
            if response.status >= 300:
                raise RuntimeError(f"PUT {doc_path(doc)}: {response.status} {await response.text()}")

    async def _delete(self, doc: Mapping[str, Any]) -> None:
        async with self.session.delete(self.cp.base + doc_path(doc)) as response:
            if response.status >= 300 and response.status != 404:
                raise RuntimeError(f"DELETE {doc_path(doc)}: {response.status}")

    async def _load(self, docs: Sequence[Mapping[str, Any]]) -> None:
        ordered = sorted(docs, key=lambda d: {"Mesh": 0, "TrafficTrace": 1}.get(d["type"], 2))
        for doc in ordered[:1]:
            await self._put(doc)
        semaphore = asyncio.Semaphore(16)

        async def put(doc: Mapping[str, Any]) -> None:
            async with semaphore:
                await self._put(doc)
        await asyncio.gather(*(put(d) for d in ordered[1:]))

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
        o = self.o
        ramp = max(0.5, len(indexes) / 200)
        targets = {}
        for i in indexes:
            config = self.configs[state][self.nodes[i]]
            for type_url in ADS_TYPES:
                targets[(i, TYPE_CODES[type_url])] = config.target(type_url, o.mode)
        nodes = [(i, self.nodes[i]) for i in indexes]
        started = time.perf_counter()
        for server, port in ((FLOOR, self.floor.port), (CP, self.cp.xds_port)):
            self.tracker.expect(server, targets, started)
            self.pool.connect(server, f"127.0.0.1:{port}", nodes, o.mode == "delta", ramp)
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
            self.progress.update(what, total - len({n for n, _ in self.tracker.pending}), total)
        return True

    # -- the plan --

    async def _run_plan(self, plan: Plan, base_docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        n = len(self.nodes)
        memory: dict[str, int] = {"cp_empty_kb": rss_kb(self.pids[CP]), "floor_empty_kb": rss_kb(self.pids[FLOOR])}
        self.progress.phase(f"loading {len(base_docs)} documents into the control plane")
        t = time.perf_counter()
        await self._load(base_docs)
        load_s = time.perf_counter() - t
        await self._quiesce()
        memory["cp_loaded_kb"] = rss_kb(self.pids[CP])
        half = n // 2
        connect_s = await self._connect(range(half), 0, 60) if half else 0.0
        memory["cp_half_kb"], memory["floor_half_kb"] = rss_kb(self.pids[CP]), rss_kb(self.pids[FLOOR])
        connect_s += await self._connect(range(half, n), 0, 60)
        await asyncio.sleep(1.0)
        memory["cp_full_kb"], memory["floor_full_kb"] = rss_kb(self.pids[CP]), rss_kb(self.pids[FLOOR])
        result: dict[str, Any] = {"load_s": round(load_s, 2), "connect_s": round(connect_s, 2), "memory": memory}
        if self.envoy_specs:
            await self._start_envoys()
        if plan.nack_node is not None:
            for server in (FLOOR, CP):
                self.pool.set_nack(server, plan.nack_node, TYPE_CODES[types.LISTENER_TYPE], True)
            await asyncio.sleep(0.1)
        profiler = self._start_profiler()
        if plan.kind == "idle":
            result.update(await self._idle())
        elif plan.kind == "storm":
            result.update(await self._storm())
        else:
            result.update(await self._changes(plan))
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)
            result["profile"] = str(self.o.profile)
        if plan.kind == "idle":
            result.update(await self._disconnect(memory))
        result["rss_per_proxy_kb"] = round((memory["cp_full_kb"] - memory["cp_empty_kb"]) / n, 1)
        if half and n - half:
            result["rss_slope_kb"] = round((memory["cp_full_kb"] - memory["cp_half_kb"]) / (n - half), 1)
            result["floor_rss_slope_kb"] = round((memory["floor_full_kb"] - memory["floor_half_kb"]) / (n - half), 1)
        result["client_stats"] = await self.pool.stats()
        return result

    async def _start_envoys(self) -> None:
        from controlplane.xds.bootstrap import build_bootstrap
        from tests.e2e.support.envoy import run_envoy
        self.progress.phase(f"starting {len(self.envoy_specs)} real Envoys")
        for spec in self.envoy_specs:
            bootstrap = build_bootstrap(node_id=spec.node_id, service=spec.service, cp_host="127.0.0.1",
                                        cp_port=self.cp.xds_port, delta=self.o.mode == "delta")
            envoy = await self.envoy_stack.enter_async_context(run_envoy(bootstrap, log_level="warning"))
            if self.client_cpus:
                subprocess.run(["taskset", "-a", "-p", "-c", "1", str(envoy.process.pid)], capture_output=True, check=False)  # noqa: ASYNC221 - one-off, before measuring
            self.envoys[spec.node_id] = envoy
        problem = await self._envoys_converge(time.perf_counter(), 0, timeout=30)
        if problem:
            raise RuntimeError(problem)

    async def _envoys_converge(self, t0: float, state: int, timeout: float = 10) -> str | None:
        """Poll every Envoy's CDS/LDS version_text until it equals the expected version (SotW type version)."""
        pending = dict(self.envoys)
        names = {"cluster_manager.cds.version_text": types.CLUSTER_TYPE,
                 "listener_manager.lds.version_text": types.LISTENER_TYPE}
        latest = 0.0
        while pending and time.perf_counter() - t0 < timeout:
            for node, envoy in list(pending.items()):
                stats = await envoy.stats("(cds|lds).version_text")
                config = self.configs[state][node]
                if all(str(stats.get(stat, "")).strip('"') == config.types[type_url].version
                       for stat, type_url in names.items()):
                    latest = time.perf_counter() - t0
                    del pending[node]
            await asyncio.sleep(0.005)
        if pending:
            return f"{len(pending)} real Envoys not on the expected version_text after {timeout:g} s"
        self.envoy_times.append(latest)
        return None

    def _start_profiler(self) -> subprocess.Popen[bytes] | None:
        """py-spy on the control plane for the measured phase (collapsed stacks; see bench/RESULTS.md)."""
        if self.o.profile is None:
            return None
        py_spy = Path(sys.executable).with_name("py-spy")
        return subprocess.Popen([str(py_spy), "record", "--pid", str(self.pids[CP]), "--rate", "250",
                                 "--format", "raw", "--output", str(self.o.profile), "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def _changes(self, plan: Plan) -> dict[str, Any]:
        results: dict[int, list[ChangeResult]] = {FLOOR: [], CP: []}
        previous = 0
        for k, change in enumerate(plan.changes):
            target = self.targets[k]
            order = (FLOOR, CP) if k % 2 == 0 else (CP, FLOOR)
            for server in order:
                if server == FLOOR and self.o.no_floor:
                    continue
                outcome = await self._measure(server, change, previous, target, plan)
                if change.measured:
                    results[server].append(outcome)
            previous = target
        out = summarise(results)
        if self.envoy_times:
            out["envoys_all_on_version_s"] = {"median": round(statistics.median(self.envoy_times), 4),
                                              "max": round(max(self.envoy_times), 4)}
        return out

    async def _apply(self, server: int, change: Change, target: int) -> float:
        """Apply the change; return t0 (the moment it was accepted)."""
        if server == FLOOR:
            self.floor.send("advance", target)
            return time.perf_counter()
        for doc in change.deletes:
            await self._delete(doc)
        for i, doc in enumerate(change.puts):
            if i and change.spacing_s:
                await asyncio.sleep(change.spacing_s)
            await self._put(doc)
        return time.perf_counter()

    async def _measure(self, server: int, change: Change, before: int, after: int, plan: Plan) -> ChangeResult:
        o = self.o
        expected: dict[int, frozenset[str]] = {}
        targets: dict[tuple[int, int], str] = {}
        for i, node in enumerate(self.nodes):
            pushes = expected_pushes(self.configs[before][node], self.configs[after][node], o.mode)
            expected[i] = pushes
            for type_url in pushes:
                targets[(i, TYPE_CODES[type_url])] = self.configs[after][node].target(type_url, o.mode)
        records = self.tracker.records[server]
        position = len(records)
        pid = self.pids[server]
        lag: list[float] = []
        sampler = asyncio.create_task(self._sample_api(lag)) if server == CP else None
        t_start = time.perf_counter()
        cpu0 = cpu_seconds(pid)
        self.tracker.expect(server, targets, t_start)
        t0 = await self._apply(server, change, after)
        watching = asyncio.create_task(self._envoys_converge(t0, after)) if server == CP and self.envoys else None
        what = f"{plan.scenario} {SERVER_NAMES[server]}: {change.label}"
        converged = await self._wait(30, what, len({n for n, _ in targets}))
        envoy_problem = await watching if watching is not None else None
        met = dict(self.tracker.met)
        await asyncio.sleep(o.quiet_s + (o.debounce_s if server == CP else 0))
        cpu1 = cpu_seconds(pid)
        if sampler is not None:
            sampler.cancel()
        window = [r for r in records[position:] if r[4] >= t_start]
        problems = [] if converged else [f"not converged: {len(self.tracker.pending)} (node, type) pending"]
        problems += [envoy_problem] if envoy_problem else []
        problems += self._check_pushes(server, window, expected, after, plan)
        per_node: dict[int, float] = {}
        for (node, _), t in met.items():
            per_node[node] = max(per_node.get(node, 0.0), t - t0)
        convergence = [max(0.0, v) for v in per_node.values()]
        affected = max(1, len(per_node))
        result = ChangeResult(server, change.label, convergence, not problems, problems, cpu1 - cpu0,
                              sum(r[5] for r in window) / affected, len(window), lag)
        self.progress.result(what, result)
        return result

    def _check_pushes(self, server: int, window: list[Record], expected: Mapping[int, frozenset[str]],
                      after: int, plan: Plan) -> list[str]:
        counts: dict[tuple[int, int], int] = {}
        nacks = 0
        for record in window:
            key = (record[1], record[2])
            counts[key] = counts.get(key, 0) + 1
            nacks += record[6] == NACK
        problems = []
        for i, pushes in expected.items():
            wanted = {TYPE_CODES[t] for t in pushes}
            for code in range(4):
                got = counts.get((i, code), 0)
                ok = (1 <= got <= plan.max_pushes_per_type) if code in wanted else got == 0
                if not ok and len(problems) < 10:
                    problems.append(f"{self.nodes[i]} {('CDS', 'EDS', 'LDS', 'RDS')[code]}: {got} pushes, "
                                    f"expected {'1' if code in wanted else '0'}")
                nacked = plan.nack_node == i and code == TYPE_CODES[types.LISTENER_TYPE]
                final = self.configs[after][self.nodes[i]].target(ADS_TYPES[code], self.o.mode)
                latest = self.tracker.latest.get((server, i, code))
                if not nacked and latest != final and len(problems) < 10:
                    problems.append(f"{self.nodes[i]} {ADS_TYPES[code].rsplit('.', 1)[1]}: ends on {latest}, "
                                    f"expected {final}")
        if plan.nack_node is not None and nacks != 1:
            problems.append(f"expected exactly 1 NACK from the NACKing proxy, saw {nacks}")
        return problems

    async def _sample_api(self, lag: list[float]) -> None:
        """API round-trip every 20 ms while a change runs: a stand-in for event-loop lag (no CP hook)."""
        while True:
            began = time.perf_counter()
            try:
                async with self.session.get(self.cp.base + "/ready") as response:
                    await response.read()
            except aiohttp.ClientError:
                pass
            lag.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(0.02)

    async def _idle(self) -> dict[str, Any]:
        o = self.o
        await asyncio.sleep(2.0)
        self.progress.phase(f"S1: measuring idle CPU for {o.idle_s:g} s with {len(self.nodes)} streams per server")
        before = {s: cpu_seconds(p) for s, p in self.pids.items()}
        counts = {s: len(self.tracker.records[s]) for s in self.pids}
        await asyncio.sleep(o.idle_s)
        cpu = {s: cpu_seconds(p) - before[s] for s, p in self.pids.items()}
        pushes = {s: len(self.tracker.records[s]) - counts[s] for s in self.pids}
        return {"idle_cpu_pct": round(100 * cpu[CP] / o.idle_s, 2),
                "floor_idle_cpu_pct": round(100 * cpu[FLOOR] / o.idle_s, 2),
                "idle_pushes": pushes[CP], "pushes_ok": pushes[CP] == 0 and pushes[FLOOR] == 0,
                "cpu_s": round(cpu[CP], 3)}

    async def _disconnect(self, memory: dict[str, int]) -> dict[str, Any]:
        for server in (FLOOR, CP):
            self.pool.drop(server, 0, False)
        await asyncio.sleep(3.0)
        memory["cp_disconnected_kb"] = rss_kb(self.pids[CP])
        memory["floor_disconnected_kb"] = rss_kb(self.pids[FLOOR])
        base = memory["cp_loaded_kb"]
        return {"rss_back_to_baseline": abs(memory["cp_disconnected_kb"] - base) <= 0.1 * base}

    async def _storm(self) -> dict[str, Any]:
        o = self.o
        results: dict[int, list[ChangeResult]] = {FLOOR: [], CP: []}
        for server in (FLOOR, CP):
            targets = {}
            for i, node in enumerate(self.nodes):
                for type_url in ADS_TYPES:
                    targets[(i, TYPE_CODES[type_url])] = self.configs[0][node].target(type_url, o.mode)
            records = self.tracker.records[server]
            position, pid = len(records), self.pids[server]
            t0 = time.perf_counter()
            cpu0 = cpu_seconds(pid)
            self.tracker.expect(server, targets, t0)
            self.pool.drop(server, o.spread_s, True)
            what = f"S4 {SERVER_NAMES[server]}: reconnect within {o.spread_s:g} s"
            converged = await self._wait(o.spread_s + 15, what, len(self.nodes))
            met = dict(self.tracker.met)
            await asyncio.sleep(o.quiet_s)
            window = [r for r in records[position:] if r[4] >= t0]
            expected = {i: frozenset(ADS_TYPES) for i in range(len(self.nodes))}
            plan = Plan("S4", ())
            problems = [] if converged else [f"stalled: {len({n for n, _ in self.tracker.pending})} proxies"]
            problems += self._check_pushes(server, window, expected, 0, plan)
            per_node: dict[int, float] = {}
            for (node, _), t in met.items():
                per_node[node] = max(per_node.get(node, 0.0), t - t0)
            result = ChangeResult(server, "storm", list(per_node.values()), not problems, problems,
                                  cpu_seconds(pid) - cpu0, sum(r[5] for r in window) / max(1, len(per_node)),
                                  len(window))
            self.progress.result(what, result)
            results[server].append(result)
        return summarise(results)


def envoy_proxies(workload: Workload, k: int) -> list[ProxySpec]:
    """K extra proxies for real Envoys: loopback address, free ports, reaching the first R services."""
    out = []
    for i in range(k):
        service = workload.services[i % len(workload.services)]
        outbounds = tuple(s for s in workload.services if s != service)[:workload.reach]
        out.append(ProxySpec(f"envoy-{i}", service, "127.0.0.1", free_port(), outbounds,
                             tuple(free_port() for _ in outbounds)))
    return out


def summarise(results: Mapping[int, list[ChangeResult]]) -> dict[str, Any]:
    cp, floor = results[CP], results[FLOOR]
    out: dict[str, Any] = {}
    if not cp:
        return {"pushes_ok": False}
    cps = [r.stats() for r in cp]
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
        fls = [r.stats() for r in floor]
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
            out["ratio_cpu"] = round(out["cpu_s"] / out["floor_cpu_s"], 2)
    return out


def machine() -> dict[str, Any]:
    try:
        from tests.e2e.support.envoy import find_envoy
        envoy = subprocess.run([find_envoy(), "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
        envoy_version = envoy.split("version:")[-1].strip().split("/")[1] if "version:" in envoy else envoy.strip()
    except Exception:  # noqa: BLE001 - informational only
        envoy_version = "unknown"
    import google.protobuf
    return {"cores": os.cpu_count(), "python": platform.python_version(), "grpcio": grpc.__version__,
            "protobuf": google.protobuf.__version__, "envoy": envoy_version, "kernel": platform.release()}
