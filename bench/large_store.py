"""100k Dataplanes in one SQLite store: time to ready, memory, and a mesh-wide change reaching a sample of
streams spread across the range (issue 16: "no need for 100k streams").

    python -m bench.large_store --shape outbounds --dataplanes 100000 --sample 100 --rounds 3 [--json FILE]

Shapes (issue 16): `outbounds` = 1000 services x 100 replicas, each with one HTTP inbound and two outbounds
(the next two services); `inbound-only` = 1000 services x 100 replicas, no outbounds. The store is built
once per shape with the real `controlplane import` (its file is kept in --work and reused), then:

1. `controlplane run` on it; **ready** = from spawn to `/ready` 200 (the first pass published for every
   connected proxy: none yet), RSS then (VmRSS), and the reconciler's own ready line.
2. `--sample` simulated SotW proxies (bench/ads_stream.py, Envoy-like: wildcard CDS/LDS, EDS/RDS by name,
   ACK at once) connect, spread evenly over the Dataplanes; time until every one holds listeners.
3. `--rounds` mesh-wide sampling changes through the API (GET the Mesh, change its backend's sampling,
   PUT): from the PUT's return to the last sampled proxy's ACK of the new LDS version, and the control
   plane's CPU seconds for the change (utime+stime from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from bench.ads_stream import LDS, AdsClient
from bench.processes import cpu_seconds, free_port, load_average, machine, rss_kb
from controlplane.cli.transfer import to_yaml

SERVICES = 1000
STREAMS_PER_CHANNEL = 50


def documents(dataplanes: int, shape: str) -> Iterator[dict[str, Any]]:
    yield {"type": "Mesh", "name": "default", "tracing": {"defaultBackend": "zipkin", "backends": [
        {"name": "zipkin", "type": "zipkin", "sampling": 50.0, "conf": {"url": "http://zipkin:9411/api/v2/spans"}}]}}
    yield {"type": "TrafficTrace", "mesh": "default", "name": "all",
           "selectors": [{"match": {"kuma.io/service": "*"}}], "conf": {"backend": "zipkin"}}
    for index in range(dataplanes):
        service, replica = index % SERVICES, index // SERVICES
        outbounds = [] if shape == "inbound-only" else [
            {"port": 10001 + k, "tags": {"kuma.io/service": f"svc-{(service + 1 + k) % SERVICES}"}} for k in range(2)]
        yield {"type": "Dataplane", "mesh": "default", "name": f"svc-{service}-{replica}", "networking": {
            "address": f"10.{replica % 250}.{service // 250}.{service % 250 + 1}",
            "inbound": [{"port": 8080, "servicePort": 18080,
                         "tags": {"kuma.io/service": f"svc-{service}", "kuma.io/protocol": "http"}}],
            "outbound": outbounds}}


def node_ids(dataplanes: int, sample: int) -> list[str]:
    step = max(1, dataplanes // sample)
    return [f"default.svc-{i % SERVICES}-{i // SERVICES}" for i in range(0, dataplanes, step)][:sample]


def build_store(work: Path, dataplanes: int, shape: str) -> Path:
    db = work / f"{shape}-{dataplanes}.db"
    if db.exists():
        return db
    source = work / f"{shape}-{dataplanes}.yaml"
    with source.open("w") as out:
        for doc in documents(dataplanes, shape):
            out.write(to_yaml([doc]))
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from controlplane.cli.main import main; main()", "import", "-f",
                    str(source), "--store", f"sqlite:{db}"], check=True, stdout=subprocess.DEVNULL)
    print(f"store built: {db} ({dataplanes} Dataplanes, {shape}) in {time.perf_counter() - began:.0f} s")
    source.unlink()
    return db


class Owner:
    """The StreamOwner of bench/ads_stream.py for one process: channels, no NACKs, the LDS versions seen."""

    def __init__(self, target: str) -> None:
        self.target, self.errors, self.opened = target, 0, 0
        self.channels: dict[int, grpc.aio.Channel] = {}
        self.lds: dict[int, tuple[str, float]] = {}
        self.changed = asyncio.Event()

    def channel_for(self, server: int, index: int) -> grpc.aio.Channel:
        slot = index // STREAMS_PER_CHANNEL
        if slot not in self.channels:
            self.channels[slot] = grpc.aio.insecure_channel(self.target, options=[("bench.slot", slot)])
        return self.channels[slot]

    def should_nack(self, server: int, index: int, code: int) -> bool:
        return False

    def record(self, server: int, index: int, code: int, version: str, n_bytes: int, kind: int) -> None:
        if code == LDS:
            self.lds[index] = (version, time.perf_counter())
            self.changed.set()


async def until(owner: Owner, predicate: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            owner.changed.clear()
            await owner.changed.wait()


def spawn(db: Path, api_port: int, xds_port: int, log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "from controlplane.cli.main import main; main()", "run",
                             "--store", f"sqlite:{db}", "--api-port", str(api_port), "--xds-address", "127.0.0.1",
                             "--xds-port", str(xds_port), "--log-level", "info"], stdout=log, stderr=subprocess.STDOUT)


async def measure(db: Path, args: argparse.Namespace) -> dict[str, Any]:
    api_port, xds_port = free_port(), free_port()
    log = (args.work / "cp.log").open("w")
    began = time.perf_counter()
    proc = spawn(db, api_port, xds_port, log)
    base = f"http://127.0.0.1:{api_port}"
    result: dict[str, Any] = {"shape": args.shape, "dataplanes": args.dataplanes, "sample": args.sample,
                              "machine": machine(), "load_before": load_average()}
    try:
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(base + "/ready") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError("control plane exited; see cp.log")
                await asyncio.sleep(0.05)
            result["ready_s"] = round(time.perf_counter() - began, 2)
            result["rss_ready_mb"] = round(rss_kb(proc.pid) / 1024)
            print(f"ready after {result['ready_s']} s, RSS {result['rss_ready_mb']} MB")
            owner = Owner(f"127.0.0.1:{xds_port}")
            nodes = node_ids(args.dataplanes, args.sample)
            clients = [AdsClient(owner, 0, i, node, delta=False) for i, node in enumerate(nodes)]
            connected = time.perf_counter()
            tasks = [asyncio.create_task(c.run()) for c in clients]
            await until(owner, lambda: len(owner.lds) == len(nodes), 120)
            result["sample_served_s"] = round(time.perf_counter() - connected, 2)
            result["rss_served_mb"] = round(rss_kb(proc.pid) / 1024)
            print(f"{len(nodes)} sampled proxies served {result['sample_served_s']} s after connecting")
            rounds = []
            for round_ in range(args.rounds):
                async with session.get(base + "/meshes/default") as response:
                    mesh = await response.json()
                mesh["tracing"]["backends"][0]["sampling"] = 10.0 + round_ % 2 * 40.0 + round_
                before = {i: v for i, (v, _) in owner.lds.items()}
                cpu = cpu_seconds(proc.pid)
                async with session.put(base + "/meshes/default", json=mesh) as response:
                    assert response.status < 300, await response.text()
                t0 = time.perf_counter()
                await until(owner, lambda before=before: all(owner.lds[i][0] != before[i] for i in before), 120)
                latest = max(at for _, at in owner.lds.values()) - t0
                await asyncio.sleep(0.5)  # the pass may still be deciding for unconnected proxies
                rounds.append({"reach_all_s": round(latest, 3), "cpu_s": round(cpu_seconds(proc.pid) - cpu, 2)})
                print(f"change {round_ + 1}: every sampled proxy ACKed after {latest:.3f} s, "
                      f"CP CPU {rounds[-1]['cpu_s']} s")
            result["changes"] = rounds
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for channel in owner.channels.values():
                await channel.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    result["reconciler_ready_line"] = next((line.strip() for line in (args.work / "cp.log").open()
                                            if "reconciler_ready" in line), "")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.large_store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=("outbounds", "inbound-only"), default="outbounds")
    parser.add_argument("--dataplanes", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "bench-large-store")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(measure(build_store(args.work, args.dataplanes, args.shape), args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
