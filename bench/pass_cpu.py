"""CPU of one reconciler pass for a mesh-wide tracing change, in-process (no gRPC, no clients).

Measures what the control plane spends generating, serialising, hashing, checking and publishing the
snapshots of every proxy after one change, which is the per-proxy cost a scale run multiplies; the
transport (streams, ACKs) is measured by `python -m bench run`. The real reconciler runs against a memory
store and a snapshot cache; the clock is `time.process_time()` from the store write to the observer's
`on_pass_done`, so debounce waits are not counted. Process tuning as `serve()` applies it (gen-0 threshold,
heap freezing after each pass) unless `--no-tuning`.

    python -m bench.pass_cpu --proxies 1000 --rounds 12 [--change sampling|traffic-trace] [--reach 5]
        [--policy traffictrace|meshtrace] [--compare PAIRS]

Prints min / median pass CPU and per-proxy CPU, as JSON with `--json`. `--policy meshtrace` makes the same
changes with MeshTrace, written so that every proxy merges two policies (`bench.workload.meshtrace_docs`):
the toggle creates / deletes the `tracing` MeshTrace, the sampling change edits the `defaults` one.
`--compare PAIRS` runs PAIRS TrafficTrace / MeshTrace pairs, each in a fresh process, alternating which goes
first, and prints the per-pair ratios of the per-proxy medians (the machine is shared: only such
interleaved ratios mean anything).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.processes import load_average
from bench.workload import dataplane_doc, generate_workload, mesh_doc, meshtrace_docs, traffic_trace_doc
from controlplane.observability import Metrics, configure_logging
from controlplane.resources.codec import decode_resource
from controlplane.runtime import MemoryKeeper, tune_process
from controlplane.store.memory import MemoryStore
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.reconciler import Reconciler
from controlplane.xds.snapshot import Snapshot


class _Passes:
    """Reconciler observer: CPU time at the end of each pass, and how many snapshots it published."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.published = 0

    def on_published(self, node_id: str, snapshot: Snapshot, started: float) -> None:
        self.published += 1

    def on_pass_done(self, changes: int) -> None:
        if changes:
            self.done.set()


async def measure(proxies: int, rounds: int, change: str, reach: int, tuning: bool,
                  policy: str = "traffictrace") -> dict[str, Any]:
    if tuning:
        tune_process()
    workload = generate_workload(proxies, reach=reach)
    store = MemoryStore()
    defaults, tracing = meshtrace_docs()
    for doc in [mesh_doc(), *(dataplane_doc(p) for p in workload.proxies)]:
        await store.create(decode_resource(doc))
    if policy == "meshtrace":
        await store.create(decode_resource(defaults))
    if change == "sampling":
        await store.create(decode_resource(tracing if policy == "meshtrace" else traffic_trace_doc("all")))
    passes = _Passes()
    observers: list[Any] = [passes] + ([MemoryKeeper()] if tuning else [])
    cache = SnapshotCache()
    # Every proxy connected (a watch is what its ADS stream holds): only connected proxies are generated.
    watches = [cache.watch(p.node_id) for p in workload.proxies]
    reconciler = Reconciler(store, cache, Metrics(), debounce_s=0.0, max_wait_s=0.0,
                            debounce_first_s=0.0, observers=observers)
    task = asyncio.create_task(reconciler.run())
    try:
        await reconciler.ready.wait()
        samples, published = [], []
        for round_ in range(rounds):
            passes.done.clear()
            passes.published = 0
            began = time.process_time()
            await (_change_meshtrace if policy == "meshtrace" else _change)(store, change, round_)
            await passes.done.wait()
            samples.append(time.process_time() - began)
            published.append(passes.published)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for watch in watches:
            watch.close()
    return {"proxies": proxies, "reach": reach, "change": change, "policy": policy, "tuning": tuning, "rounds": rounds,
            "pass_cpu_s_min": round(min(samples), 4), "pass_cpu_s_median": round(statistics.median(samples), 4),
            "per_proxy_us_min": round(min(samples) / proxies * 1e6, 1),
            "per_proxy_us_median": round(statistics.median(samples) / proxies * 1e6, 1),
            "published_per_pass": published}


async def _change(store: MemoryStore, change: str, round_: int) -> None:
    """A mesh-wide tracing change: the backend's sampling, or the TrafficTrace that enables tracing."""
    if change == "sampling":
        current = await store.get(decode_resource(mesh_doc()).key)
        await store.update(decode_resource(mesh_doc(sampling=50.0 if round_ % 2 == 0 else 100.0)),
                           expected_version=current.version)
    elif round_ % 2 == 0:
        await store.create(decode_resource(traffic_trace_doc("all")))
    else:
        await store.delete(decode_resource(traffic_trace_doc("all")).key)


async def _change_meshtrace(store: MemoryStore, change: str, round_: int) -> None:
    """The MeshTrace twin of `_change`: the `defaults` policy's sampling, or the `tracing` policy on / off."""
    defaults, tracing = meshtrace_docs(sampling=50.0 if round_ % 2 == 0 else 100.0)
    if change == "sampling":
        current = await store.get(decode_resource(defaults).key)
        await store.update(decode_resource(defaults), expected_version=current.version)
    elif round_ % 2 == 0:
        await store.create(decode_resource(tracing))
    else:
        await store.delete(decode_resource(tracing).key)


def compare(pairs: int, argv: Sequence[str]) -> dict[str, Any]:
    """`pairs` TrafficTrace / MeshTrace runs, each in its own process, alternating which goes first."""
    runs: list[dict[str, Any]] = []
    ratios: list[tuple[float, float]] = []
    load_before = load_average()
    for pair in range(pairs):
        order = ("traffictrace", "meshtrace") if pair % 2 == 0 else ("meshtrace", "traffictrace")
        result = {}
        for policy in order:
            done = subprocess.run([sys.executable, "-m", "bench.pass_cpu", *argv, "--policy", policy, "--json"],
                                  capture_output=True, text=True, check=True, timeout=1800)
            result[policy] = json.loads(done.stdout.strip().splitlines()[-1])
            runs.append(result[policy])
        ratios.append(tuple(result["meshtrace"][k] / result["traffictrace"][k]
                            for k in ("per_proxy_us_median", "per_proxy_us_min")))
    return {"pairs": pairs, "ratio_per_proxy_median": round(statistics.median(r[0] for r in ratios), 3),
            "ratio_per_proxy_min": round(statistics.median(r[1] for r in ratios), 3),
            "ratios": [round(r[0], 3) for r in ratios], "load_before": load_before, "load_after": load_average(),
            "runs": runs}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pass_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--reach", type=int, default=5)
    parser.add_argument("--change", choices=("sampling", "traffic-trace"), default="traffic-trace")
    parser.add_argument("--no-tuning", action="store_true", help="run without serve()'s process tuning")
    parser.add_argument("--policy", choices=("traffictrace", "meshtrace"), default="traffictrace")
    parser.add_argument("--compare", type=int, default=0, metavar="PAIRS",
                        help="run PAIRS TrafficTrace/MeshTrace pairs in fresh processes and print their ratios")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    configure_logging("console", "warning")
    if args.compare:
        own = [f"--proxies={args.proxies}", f"--rounds={args.rounds}", f"--reach={args.reach}",
               f"--change={args.change}", *(["--no-tuning"] if args.no_tuning else [])]
        compared = compare(args.compare, own)
        print(json.dumps(compared) if args.json else _comparison_text(compared))
        return 0
    result = asyncio.run(measure(args.proxies, args.rounds, args.change, args.reach, not args.no_tuning,
                                 args.policy))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['proxies']} proxies, {result['policy']} {result['change']} change: pass CPU min "
              f"{result['pass_cpu_s_min']} s, "
              f"median {result['pass_cpu_s_median']} s; per proxy min {result['per_proxy_us_min']} µs, "
              f"median {result['per_proxy_us_median']} µs; published {result['published_per_pass']}")
    return 0


def _comparison_text(compared: dict[str, Any]) -> str:
    lines = [f"{run['policy']:12} {run['change']}: per proxy median {run['per_proxy_us_median']} µs "
             f"(min {run['per_proxy_us_min']} µs), pass median {run['pass_cpu_s_median']} s"
             for run in compared["runs"]]
    lines.append(f"MeshTrace / TrafficTrace per proxy: median {compared['ratio_per_proxy_median']} over "
                 f"{compared['pairs']} pairs {compared['ratios']} (of the runs' best passes: "
                 f"{compared['ratio_per_proxy_min']}); load {compared['load_before']} -> {compared['load_after']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
