"""CPU of one reconciler pass for a mesh-wide tracing change, in-process (no gRPC, no clients).

Measures what the control plane spends generating, serialising, hashing, checking and publishing the
snapshots of every proxy after one change, which is the per-proxy cost a scale run multiplies; the
transport (streams, ACKs) is measured by `python -m bench run`. The real reconciler runs against a memory
store and a snapshot cache; the clock is `time.process_time()` from the store write to the observer's
`on_pass_done`, so debounce waits are not counted. Process tuning as `serve()` applies it (gen-0 threshold,
heap freezing after each pass) unless `--no-tuning`.

    python -m bench.pass_cpu --proxies 1000 --rounds 12 [--change sampling|traffic-trace] [--reach 5]

Prints min / median pass CPU and per-proxy CPU, as JSON with `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.workload import dataplane_doc, generate_workload, mesh_doc, traffic_trace_doc
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


async def measure(proxies: int, rounds: int, change: str, reach: int, tuning: bool) -> dict[str, Any]:
    if tuning:
        tune_process()
    workload = generate_workload(proxies, reach=reach)
    store = MemoryStore()
    for doc in [mesh_doc(), *(dataplane_doc(p) for p in workload.proxies)]:
        await store.create(decode_resource(doc))
    if change == "sampling":
        await store.create(decode_resource(traffic_trace_doc("all")))
    passes = _Passes()
    observers: list[Any] = [passes] + ([MemoryKeeper()] if tuning else [])
    reconciler = Reconciler(store, SnapshotCache(), Metrics(), debounce_s=0.0, max_wait_s=0.0,
                            debounce_first_s=0.0, observers=observers)
    task = asyncio.create_task(reconciler.run())
    try:
        await reconciler.ready.wait()
        samples, published = [], []
        for round_ in range(rounds):
            passes.done.clear()
            passes.published = 0
            began = time.process_time()
            await _change(store, change, round_)
            await passes.done.wait()
            samples.append(time.process_time() - began)
            published.append(passes.published)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {"proxies": proxies, "reach": reach, "change": change, "tuning": tuning, "rounds": rounds,
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pass_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--reach", type=int, default=5)
    parser.add_argument("--change", choices=("sampling", "traffic-trace"), default="traffic-trace")
    parser.add_argument("--no-tuning", action="store_true", help="run without serve()'s process tuning")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    configure_logging("console", "warning")
    result = asyncio.run(measure(args.proxies, args.rounds, args.change, args.reach, not args.no_tuning))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['proxies']} proxies, {result['change']} change: pass CPU min {result['pass_cpu_s_min']} s, "
              f"median {result['pass_cpu_s_median']} s; per proxy min {result['per_proxy_us_min']} µs, "
              f"median {result['per_proxy_us_median']} µs; published {result['published_per_pass']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
