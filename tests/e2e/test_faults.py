"""Restart and faults with real Envoys and a request loop through them (issue 7, item 3).

The control plane is a real `controlplane run --store sqlite:...` child process on fixed ports, so Envoys
(with a short reconnect back-off) find it again after a restart. Traffic goes through both sidecars of the
usual topology (web's outbound → backend's inbound → the backend app), continuously, for the whole test.
- SIGKILL while Envoys serve traffic: not one request fails during the outage; after a restart the Envoys
  reconnect and ACK the current config, and the store holds everything; a second round applies a change
  right after the restart, and the Envoys converge on it.
- SIGTERM: exit code 0, every ADS stream closed by the server (its log and the Envoys' connected_state
  say so), writes racing the shutdown are either fully stored or not at all, and the SQLite file reopens
  intact with everything that was acknowledged.
- 500 ADS clients connecting and disconnecting leave the process's open file descriptors and resident
  memory back at their baseline.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from controlplane.dataplane.bootstrap import ReconnectBackoff, build_bootstrap
from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.resources.dataplane import DATAPLANE
from controlplane.resources.mesh import MESH as MESH_KIND
from controlplane.store.sqlite import SqliteStore
from controlplane.xds.types import CLUSTER_TYPE

from .support.envoy import EnvoyProcess, run_envoy
from .support.plane import HOST, MESH, Api, Topology
from .support.process import ControlPlaneProcess
from .support.waiting import eventually

pytestmark = pytest.mark.e2e

TIMEOUT_S: Final = 20.0
FAST_RETRY: Final = ReconnectBackoff(base_s=0.1, max_s=0.5)
ZIPKIN: Final = "http://127.0.0.1:9/api/v2/spans"  # never reached: only the generated config matters


def mesh_doc(sampling: float) -> dict[str, Any]:
    backend = {"name": "zipkin-1", "type": "zipkin", "sampling": sampling, "conf": {"url": ZIPKIN}}
    return {"type": "Mesh", "name": MESH, "tracing": {"defaultBackend": "zipkin-1", "backends": [backend]}}


def trace_doc(name: str) -> dict[str, Any]:
    return {"type": "TrafficTrace", "mesh": MESH, "name": name,
            "selectors": [{"match": {"kuma.io/service": "*"}}], "conf": {"backend": "zipkin-1"}}


@dataclass
class Traffic:
    """Requests sent one after another through web's outbound listener until stopped."""

    url: str
    ok: int = 0
    failures: list[str] = field(default_factory=list)

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                try:
                    async with http.get(f"{self.url}/loop") as response:
                        await response.read()
                        if response.status == 200:
                            self.ok += 1
                        else:
                            self.failures.append(f"HTTP {response.status}")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.failures.append(repr(exc))
                await asyncio.sleep(0.005)

    async def more(self, count: int) -> None:
        """Wait until `count` more requests succeeded (traffic really flows through this phase)."""
        target = self.ok + count
        await eventually(lambda: self.ok >= target, timeout=TIMEOUT_S, message=f"traffic stalled at {self.ok}")


@asynccontextmanager
async def traffic_through(url: str) -> AsyncIterator[Traffic]:
    traffic = Traffic(url)
    task = asyncio.create_task(traffic.run())
    try:
        await traffic.more(20)
        yield traffic
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def control_plane(tmp_path: Path, *extra: str) -> AsyncIterator[ControlPlaneProcess]:
    cp = ControlPlaneProcess(f"sqlite:{tmp_path / 'cp.db'}", tmp_path / "cp.log", extra=extra)
    await cp.start()
    try:
        yield cp
    finally:
        cp.stop()


async def start_sidecars(stack: AsyncExitStack, cp: ControlPlaneProcess, tmp_path: Path) -> dict[str, EnvoyProcess]:
    envoys = {}
    for name, service in (("backend-1", "backend"), ("web-1", "web")):
        bootstrap = build_bootstrap(node_id=f"{MESH}.{name}", service=service, cp_host=HOST, cp_port=cp.xds_port,
                                    reconnect_backoff=FAST_RETRY)
        (tmp_path / name).mkdir()
        envoys[name] = await stack.enter_async_context(run_envoy(bootstrap, workdir=tmp_path / name))
    return envoys


async def connected(envoy: EnvoyProcess) -> int:
    value = (await envoy.stats(r"^control_plane\.connected_state$"))["control_plane.connected_state"]
    assert isinstance(value, int)
    return value


async def wait_connected(envoys: Mapping[str, EnvoyProcess], state: int) -> None:
    for name, envoy in envoys.items():
        async def check(envoy: EnvoyProcess = envoy) -> bool:
            return await connected(envoy) == state
        await eventually(check, timeout=TIMEOUT_S, message=f"{name}: connected_state never became {state}")


async def wait_acked(api: Api, names: list[str], previous: Mapping[str, Mapping[str, str]] | None = None) -> None:
    for name in names:
        before = previous[name] if previous else None
        await eventually(lambda name=name, before=before: api.converged(name, before), timeout=TIMEOUT_S,
                         message=f"{name} never ACKed the current config")


async def everything(api: Api) -> dict[str, list[dict[str, Any]]]:
    """Every stored resource, as the API lists it (timestamps included: a restart must not change them)."""
    paths = {"Mesh": "/meshes", "TrafficTrace": f"/meshes/{MESH}/traffic-traces",
             "Dataplane": f"/meshes/{MESH}/dataplanes"}
    return {kind: (await api.get(path))["items"] for kind, path in paths.items()}


async def test_sigkill_and_restart_with_traffic_flowing(topology: Topology, tmp_path: Path) -> None:
    async with AsyncExitStack() as stack, aiohttp.ClientSession() as http:
        cp = await stack.enter_async_context(control_plane(tmp_path))
        api = Api(cp.api_url, http)
        await api.apply(mesh_doc(100.0), trace_doc("all"), topology.backend_dataplane(), topology.web_dataplane())
        envoys = await start_sidecars(stack, cp, tmp_path)
        await wait_acked(api, list(envoys))
        await envoys["web-1"].wait_listener_ready(topology.outbound_listener)
        await envoys["backend-1"].wait_listener_ready(topology.backend_listener)
        traffic = await stack.enter_async_context(traffic_through(topology.outbound_url))

        for round_, change in enumerate((None, mesh_doc(5.0)), start=1):
            stored = await everything(api)
            versions = {name: await api.versions(name) for name in envoys}
            cp.kill()
            await wait_connected(envoys, 0)
            await traffic.more(200)  # Envoys keep serving their last config while the control plane is gone
            await cp.start()
            await wait_connected(envoys, 1)
            assert await everything(api) == stored, f"round {round_}: the store changed across the restart"
            await wait_acked(api, list(envoys))
            assert {name: await api.versions(name) for name in envoys} == versions  # content-derived: no push
            if change is not None:
                await api.apply(change)  # right after the restart
                await wait_acked(api, list(envoys), previous=versions)
                stored["Mesh"] = (await everything(api))["Mesh"]
                assert stored["Mesh"][0]["tracing"]["backends"][0]["sampling"] == 5.0
            await traffic.more(50)
        print(f"requests through the sidecars: {traffic.ok} ok, {len(traffic.failures)} failed")
        assert traffic.failures == []


async def test_sigterm_closes_streams_and_leaves_a_consistent_store(topology: Topology, tmp_path: Path) -> None:
    async with AsyncExitStack() as stack, aiohttp.ClientSession() as http:
        cp = await stack.enter_async_context(control_plane(tmp_path))
        api = Api(cp.api_url, http)
        await api.apply(mesh_doc(100.0), topology.backend_dataplane(), topology.web_dataplane())
        envoys = await start_sidecars(stack, cp, tmp_path)
        await wait_acked(api, list(envoys))

        acknowledged: list[str] = []
        writer = asyncio.create_task(_write_until_refused(api, acknowledged))
        await eventually(lambda: len(acknowledged) >= 20, timeout=TIMEOUT_S, message="writes never got going")
        code = await cp.terminate()
        tried = await writer
        assert code == 0, cp.log()
        await wait_connected(envoys, 0)
        log = cp.log()
        for name in envoys:
            assert f"node_id={MESH}.{name}" in log
        assert log.count("stream_closed") == log.count("stream_opened") >= 2, log

    # Reopen the file as the next start would: every acknowledged write is there, nothing half-written.
    with sqlite3.connect(tmp_path / "cp.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = await SqliteStore.open(tmp_path / "cp.db")
    try:
        names = {r.name for r in (await store.list(TRAFFIC_TRACE, MESH)).items}
        assert set(acknowledged) <= names <= set(tried), (acknowledged, names, tried)
        assert len((await store.list(DATAPLANE, MESH)).items) == 2
        assert len((await store.list(MESH_KIND)).items) == 1
    finally:
        await store.close()


async def _write_until_refused(api: Api, acknowledged: list[str]) -> list[str]:
    """PUT TrafficTraces one by one until the server is gone; returns every name that was tried."""
    tried: list[str] = []
    for i in range(100_000):
        name = f"t-{i}"
        tried.append(name)
        try:
            status, _ = await api.request("PUT", f"/meshes/{MESH}/traffic-traces/{name}", trace_doc(name))
        except aiohttp.ClientError:
            return tried
        if status not in (200, 201):
            return tried
        acknowledged.append(name)
    return tried


async def _connect_once(port: int, node: str) -> None:
    """One ADS client: connect, ask for clusters, read the answer, go away."""
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as channel:
        call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
        await call.write(discovery_pb2.DiscoveryRequest(type_url=CLUSTER_TYPE, node=base_pb2.Node(id=node)))
        response = await asyncio.wait_for(call.read(), TIMEOUT_S)
        assert response.type_url == CLUSTER_TYPE
        call.cancel()


async def _burst(port: int, node: str, count: int, parallel: int = 50) -> None:
    for start in range(0, count, parallel):
        await asyncio.gather(*(_connect_once(port, node) for _ in range(min(parallel, count - start))))


async def test_connection_burst_leaves_memory_and_fds_at_baseline(topology: Topology, tmp_path: Path) -> None:
    async with control_plane(tmp_path) as cp, aiohttp.ClientSession() as http:
        api = Api(cp.api_url, http)
        await api.apply(mesh_doc(100.0), topology.backend_dataplane(), topology.web_dataplane())
        node = f"{MESH}.web-1"
        await eventually(lambda: _has_snapshot(api), timeout=TIMEOUT_S, message="no snapshot for web-1")

        await _burst(cp.xds_port, node, 100)  # warm-up: allocator pools, gRPC's lazily built state
        await eventually(lambda: _streams(api, 0), timeout=TIMEOUT_S, message="warm-up streams never closed")
        fds, rss = cp.open_fds(), cp.rss_kib()

        await _burst(cp.xds_port, node, 500)
        await eventually(lambda: _streams(api, 0), timeout=TIMEOUT_S, message="streams never closed")
        await eventually(lambda: cp.open_fds() <= fds + 2, timeout=TIMEOUT_S,
                         message=f"open fds stayed above the baseline {fds}: {cp.open_fds()}")
        await eventually(lambda: cp.rss_kib() <= rss * 1.10, timeout=TIMEOUT_S,
                         message=f"RSS stayed above the baseline {rss} kB + 10 %: {cp.rss_kib()} kB")
        print(f"after 500 reconnects: fds {fds} -> {cp.open_fds()}, RSS {rss} -> {cp.rss_kib()} kB")


async def _has_snapshot(api: Api) -> bool:
    return bool(await api.versions("web-1"))


async def _streams(api: Api, expected: int) -> bool:
    """The control plane's own gauge of connected ADS streams (/metrics)."""
    async with api.session.get(f"{api.base}/metrics") as response:
        text = await response.text()
    total = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("xds_streams_active{"))
    return total == expected
