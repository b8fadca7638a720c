"""`python -m bench.stats_sink_floor [--proxies N] [--interval S] [--seconds S] [--rounds R]`: what one stats
report costs the control plane's process, and how much of that is gRPC's alone.

A grpc.aio server with the ADS server's options and wake-up drain runs in a child process pinned to CPU 0
and serves Envoy's metrics service in one of two ways; N simulated stats sinks (bench/stats_reporter.py, the
reports `python -m bench run --stats-interval` sends) run in this process on CPU 1:

* `bare`: each message is read (and parsed) and dropped: the transport alone (HTTP/2, grpc.aio, protobuf);
* `sink`: the control plane's own `StatsSink` and `SpanFlows`, which read and judge every report.

Variants alternate per round (bare, sink, bare, sink, ...) so both see the same machine. For each, the
server's CPU per report read, in total and per thread (the event loop's, grpc's poller, its event engine).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import grpc

from bench.processes import cpu_seconds
from bench.stats_reporter import Reporters
from controlplane.observability import configure_logging
from controlplane.resources.generated import envoy_metrics_pb2 as em
from controlplane.xds import grpc_wakeup
from controlplane.xds.server_options import SERVER_OPTIONS
from controlplane.xds.span_flows import SpanFlows
from controlplane.xds.stats_sink import METRICS_SERVICE, StatsSink

VARIANTS: Final = ("bare", "sink")


async def _drop_all(request_iterator: Any, context: Any) -> em.StreamMetricsResponse:
    while await context.read() is not grpc.aio.EOF:
        pass
    return em.StreamMetricsResponse()


async def _serve(variant: str, conn: Connection) -> None:
    server = grpc.aio.server(options=list(SERVER_OPTIONS))
    if variant == "sink":
        StatsSink(SpanFlows({})).register(server)
    else:
        handler = grpc.stream_unary_rpc_method_handler(
            _drop_all, request_deserializer=em.StreamMetricsMessage.FromString,
            response_serializer=em.StreamMetricsResponse.SerializeToString)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(METRICS_SERVICE, {"StreamMetrics": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    grpc_wakeup.install()
    conn.send(port)
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until the parent says stop
    await server.stop(None)


def _server_main(variant: str, conn: Connection, pin: bool) -> None:
    if pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    configure_logging("console", "warning")
    asyncio.run(_serve(variant, conn))


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (threads of one name summed): `python` (loop and poller), `event_engine`."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue
        name = raw.split("(", 1)[1].rsplit(")", 1)[0]
        fields = raw.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


async def measure(variant: str, proxies: int, interval_s: float, seconds: float, pin: bool) -> dict[str, Any]:
    """One round of one variant: a fresh server, `proxies` sinks, the CPU it spent over `seconds`."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_server_main, args=(variant, child, pin), daemon=True)
    process.start()
    assert process.pid is not None
    loop = asyncio.get_running_loop()
    port = await loop.run_in_executor(None, parent.recv)
    reporters = Reporters()
    reporters.start(f"127.0.0.1:{port}", [(i, f"default.dp-{i}") for i in range(proxies)], interval_s, 5)
    try:
        while reporters.sent < proxies:  # every sink open and past its first report
            await asyncio.sleep(0.2)
        cpu0, threads0, sent0 = cpu_seconds(process.pid), thread_cpu(process.pid), reporters.sent
        await asyncio.sleep(seconds)
        cpu1, threads1, sent1 = cpu_seconds(process.pid), thread_cpu(process.pid), reporters.sent
    finally:
        await reporters.stop()
        parent.send("stop")
        process.join(10)
    reports = max(1, sent1 - sent0)
    per_thread = {name: round(1e6 * (threads1[name] - threads0.get(name, 0.0)) / reports)
                  for name in sorted(threads1)}
    return {"variant": variant, "reports": sent1 - sent0, "errors": reporters.errors,
            "cpu_pct": round(100 * (cpu1 - cpu0) / seconds, 2), "us_per_report": round(1e6 * (cpu1 - cpu0) / reports),
            "us_per_report_by_thread": per_thread}


def summary(rows: list[Mapping[str, Any]]) -> str:
    lines = []
    for variant in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant]
        if mine:
            lines.append(f"{variant}: {statistics.median(r['cpu_pct'] for r in mine)} % of one core, "
                         f"{statistics.median(r['us_per_report'] for r in mine)} µs per report (median of "
                         f"{len(mine)}: {', '.join(str(r['us_per_report']) for r in mine)}); by thread, last round: "
                         f"{mine[-1]['us_per_report_by_thread']}")
    return "\n".join(lines)


async def rounds(count: int, proxies: int, interval_s: float, seconds: float, pin: bool) -> list[dict[str, Any]]:
    """Every round in one event loop (grpc.aio binds to the first loop it runs on)."""
    rows = []
    for _ in range(count):
        for variant in VARIANTS:
            rows.append(await measure(variant, proxies, interval_s, seconds, pin))
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stats_sink_floor", description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between one sink's reports")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per variant, alternating")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 0 and sinks to CPU 1")
    args = parser.parse_args(argv)
    configure_logging("console", "warning")
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")
    if pin:
        os.sched_setaffinity(0, {1})
    rows = asyncio.run(rounds(args.rounds, args.proxies, args.interval, args.seconds, pin))
    print(summary(rows))
    return 0 if all(r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
