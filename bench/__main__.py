"""`python -m bench run --proxies N --scenario NAME [--mode sotw|delta] [--envoys K] [--json FILE]`.

The scale benchmark of issue 6 (design: reference/performance.md §7). `--proxies` takes a comma list for
S6 (e.g. `100,500,1000,2000`); other scenarios accept one N. Exit status 1 when a run fails its correctness
checks (wrong push counts, wrong final versions, timeouts), never because of times.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from bench.driver import Harness, Options
from bench.processes import load_average, machine
from bench.report import Progress, group_table, stats_ingest_lines, summary_table, write_json
from bench.scenarios import SCENARIOS
from bench.workload import generate_workload
from controlplane.observability import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one scenario")
    run.add_argument("--proxies", default="1000", help="N simulated proxies (comma list for S6)")
    run.add_argument("--scenario", required=True, choices=SCENARIOS)
    run.add_argument("--mode", choices=("sotw", "delta"), default="sotw")
    run.add_argument("--envoys", type=int, default=0, help="K real Envoys alongside the simulated clients")
    run.add_argument("--json", type=Path, default=None)
    run.add_argument("--rounds", type=int, default=5, help="measured changes per server (ABAB interleaved)")
    run.add_argument("--reach", type=int, default=5, help="R: services reached per proxy")
    run.add_argument("--instances", type=int, default=2, help="I: instances (proxies) per service")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--client-processes", type=int, default=0, help="0 = one per 750 proxies, at most 4")
    run.add_argument("--debounce", type=float, default=0.1, help="control plane --debounce")
    run.add_argument("--idle-seconds", type=float, default=20.0, help="S1 measurement window")
    run.add_argument("--spread", type=float, default=10.0, help="S4 reconnect window (0 = all at once)")
    run.add_argument("--profile", type=Path, default=None, help="py-spy collapsed stacks of the CP to FILE")
    run.add_argument("--stats-interval", type=float, default=0.0,
                     help="every proxy also streams stats to the CP's metrics service this often (s; 0 = off)")
    run.add_argument("--no-pin", action="store_true", help="do not pin CP to CPU 0 and clients to CPU 1")
    run.add_argument("--cp-allocator", choices=("pymalloc", "malloc"), default="pymalloc",
                     help="the control plane's PYTHONMALLOC (malloc gives memory back after streams close)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging("console", "warning")
    sizes = [int(x) for x in str(args.proxies).split(",")]
    if args.scenario != "S6" and len(sizes) != 1:
        raise SystemExit("several --proxies values only with --scenario S6")
    progress = Progress()
    info = machine()
    results: list[dict[str, Any]] = []
    for n in sizes:
        options = Options(proxies=n, scenario=args.scenario, mode=args.mode, envoys=args.envoys,
                          rounds=args.rounds, instances=args.instances, reach=args.reach, seed=args.seed,
                          client_processes=args.client_processes, debounce_s=args.debounce,
                          idle_s=args.idle_seconds, spread_s=args.spread, pin=not args.no_pin,
                          profile=args.profile, allocator=args.cp_allocator, stats_interval_s=args.stats_interval)
        workload = generate_workload(n, instances=args.instances, reach=args.reach, seed=args.seed)
        load_before = load_average()
        progress.phase(f"{args.scenario} N={n} mode={args.mode} load={load_before}")
        harness = Harness(options, progress)
        began = time.perf_counter()
        measured = _run(harness, workload)
        results.append({"scenario": args.scenario, "proxies": n, "mode": args.mode, **measured,
                        "envoys": args.envoys, "reach": workload.reach, "services": len(workload.services),
                        "debounce_s": args.debounce, "cp_allocator": args.cp_allocator,
                        "pinning": harness.pinning, "machine": info,
                        "load_before": load_before, "load_after": load_average(),
                        "wall_s": round(time.perf_counter() - began, 1),
                        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])})
    print(summary_table(results))
    for extra in (group_table(results), stats_ingest_lines(results)):
        if extra:
            print(extra)
    if args.json:
        write_json(args.json, results)
    return 0 if all(r.get("pushes_ok") for r in results) else 1


def _run(harness: Harness, workload: Any) -> dict[str, Any]:
    return asyncio.run(harness.run(workload))


if __name__ == "__main__":
    sys.exit(main())
