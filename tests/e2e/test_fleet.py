"""The fleet as an operator sees it, with real Envoys and real `controlplane` processes: `inspect dataplanes`
across an Envoy restart and with an Envoy whose Dataplane does not exist, `dataplane run` saying whether it
reached ADS, and `inspect dataplane --type config-dump|stats|clusters` showing the Envoy's own state."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from controlplane.cli.run import ControlPlane
from controlplane.dataplane.bootstrap import StatsReporting, build_bootstrap
from controlplane.demo.services import DemoService
from controlplane.policies.traffictrace.api import TRAFFIC_TRACE

from .conftest import STATS_FLUSH_S
from .support.envoy import EnvoyProcess, run_envoy
from .support.waiting import eventually, free_port
from .test_dataplane_run import DATAPLANE_YAML, HOST, TIMEOUT_S

pytestmark = pytest.mark.e2e

CONTROLPLANE = str(Path(sys.executable).parent / "controlplane")
ADS_REPORT_S = 5.0
"""`dataplane run` says whether it reached ADS within this long of starting Envoy (the issue's bound)."""


async def cli(api: str, *args: str) -> str:
    """A `controlplane` command against the test's control plane; its stdout (exit 0 asserted)."""
    process = await asyncio.create_subprocess_exec(CONTROLPLANE, *args, env={**os.environ, "CONTROLPLANE_API_URL": api},
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    assert process.returncode == 0, err.decode()
    return out.decode()


def row(table: str, name: str) -> list[str]:
    """The cells of `name`'s row of kumactl's table (columns are three or more spaces apart)."""
    header, *lines = table.splitlines()
    starts = [header.index(column) for column in ("MESH", "NAME", "TAGS", "STATUS", "LAST CONNECTED AGO",
                                                  "LAST UPDATED AGO", "TOTAL UPDATES", "TOTAL ERRORS",
                                                  "ENVOY VERSION", "TRACING")]
    for line in lines:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], len(line)], strict=True)]
        if cells[1] == name:
            return cells
    raise AssertionError(f"no row for {name}:\n{table}")


def workdir(path: Path) -> Path:
    path.mkdir()
    return path


def envoy_bootstrap(plane: ControlPlane, name: str) -> dict[str, Any]:
    return build_bootstrap(node_id=f"default.{name}", service="web", cp_host=HOST, cp_port=plane.xds_port,
                           stats=StatsReporting(flush_interval_s=STATS_FLUSH_S))


async def put(api: str, *docs: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        for doc in docs:
            path = "/meshes/default" if doc["type"] == "Mesh" else f"/meshes/default/dataplanes/{doc['name']}"
            async with session.put(api + path, json=doc) as response:
                assert response.status in (200, 201), await response.text()


def web_dataplane(port: int) -> dict[str, Any]:
    return {"type": "Dataplane", "mesh": "default", "name": "web-1", "networking": {"address": HOST, "inbound": [
        {"port": port, "servicePort": port + 1, "tags": {"kuma.io/service": "web", "kuma.io/protocol": "http"}}]}}


async def test_inspect_dataplanes_online_offline_across_an_envoy_restart_and_a_ghost(
    plane: ControlPlane, tmp_path: Path
) -> None:
    api = f"http://{HOST}:{plane.api_port}"
    await put(api, {"type": "Mesh", "name": "default"}, web_dataplane(free_port()))

    async def status_is(expected: str) -> bool:
        return row(await cli(api, "inspect", "dataplanes"), "web-1")[3] == expected

    async with run_envoy(envoy_bootstrap(plane, "web-1"), workdir=workdir(tmp_path / "first")):
        await eventually(lambda: status_is("Online"), timeout=TIMEOUT_S, message="web-1 never Online")
    await eventually(lambda: status_is("Offline"), timeout=TIMEOUT_S, message="web-1 never Offline after Envoy stopped")
    offline = row(await cli(api, "inspect", "dataplanes"), "web-1")
    assert offline[4] != "never" and int(offline[6]) > 0, offline  # its last subscription is kept
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(run_envoy(envoy_bootstrap(plane, "web-1"), workdir=workdir(tmp_path / "second")))
        await stack.enter_async_context(run_envoy(envoy_bootstrap(plane, "ghost"), workdir=workdir(tmp_path / "ghost")))
        await eventually(lambda: status_is("Online"), timeout=TIMEOUT_S, message="web-1 never Online again")
        ghost_line = "Envoy `default.ghost` is connected but no Dataplane default/ghost exists"

        async def ghost_listed() -> bool:
            return ghost_line in await cli(api, "inspect", "dataplanes")
        await eventually(ghost_listed, timeout=TIMEOUT_S, message="the ghost was never listed")
        body = json.loads(await cli(api, "inspect", "dataplanes", "-o", "json"))
        (web,) = body["items"]
        subscriptions = web["dataplaneInsight"]["subscriptions"]
        assert ["disconnectTime" in s for s in subscriptions] == [True, False], subscriptions
        assert [g["nodeId"] for g in body["unknownDataplanes"]] == ["default.ghost"]
        assert plane.metrics.registry.get_sample_value("xds_nodes_without_dataplane") == 1.0


@pytest.fixture
async def app() -> AsyncIterator[DemoService]:
    service = DemoService("backend")
    await service.start()
    yield service
    await service.stop()


async def start_runner(plane: ControlPlane, app: DemoService, tmp_path: Path, xds_port: int,
                       *options: str) -> tuple[asyncio.subprocess.Process, Path]:
    (tmp_path / "dataplane.yaml").write_text(DATAPLANE_YAML)
    await put(f"http://{HOST}:{plane.api_port}", {"type": "Mesh", "name": "default"})
    log_path = tmp_path / "runner.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            CONTROLPLANE, "dataplane", "run", "-f", str(tmp_path / "dataplane.yaml"), "--var", "name=backend-1",
            "--var", f"port={free_port()}", "--var", f"app={app.port}", "--cp-address", f"{HOST}:{xds_port}",
            "--api-url", f"http://{HOST}:{plane.api_port}", *options, stdin=asyncio.subprocess.DEVNULL, stdout=log,
            stderr=log)
    return process, log_path


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        await asyncio.wait_for(process.wait(), TIMEOUT_S)


async def wait_log(log_path: Path, text: str, timeout: float) -> None:
    await eventually(lambda: text in log_path.read_text(errors="replace"), timeout=timeout,
                     message=f"never logged {text!r}:\n{log_path.read_text(errors='replace')}")


async def test_dataplane_run_says_it_connected_to_ads(plane: ControlPlane, app: DemoService, tmp_path: Path) -> None:
    process, log = await start_runner(plane, app, tmp_path, plane.xds_port)
    try:
        await wait_log(log, "envoy_started", TIMEOUT_S)
        await wait_log(log, f"connected to ADS at {HOST}:{plane.xds_port}", ADS_REPORT_S)
    finally:
        await stop(process)
    assert "cannot reach ADS" not in log.read_text()


async def test_dataplane_run_says_why_it_cannot_reach_ads(plane: ControlPlane, app: DemoService,
                                                          tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    process, log = await start_runner(plane, app, tmp_path, closed)
    try:
        await wait_log(log, "envoy_started", TIMEOUT_S)
        await wait_log(log, f"cannot reach ADS at {HOST}:{closed}: connection refused", ADS_REPORT_S)
    finally:
        await stop(process)
    assert "connected to ADS" not in log.read_text()


async def test_config_dump_is_the_envoys_own_and_matches_the_published_versions(
    plane: ControlPlane, app: DemoService, tmp_path: Path
) -> None:
    api = f"http://{HOST}:{plane.api_port}"
    process, log = await start_runner(plane, app, tmp_path, plane.xds_port, "--stats-flush-interval", "2")
    try:
        await wait_log(log, f"connected to ADS at {HOST}:{plane.xds_port}", TIMEOUT_S)
        await eventually(lambda: plane_acked(plane, "default.backend-1"), timeout=TIMEOUT_S,
                         message="backend-1 never ACKed its listeners")

        await eventually(lambda: plane.tunnels.connected("default.backend-1"), timeout=TIMEOUT_S,
                         message="the runner never opened its admin tunnel")
        dump = json.loads(await cli(api, "inspect", "dataplane", "backend-1", "--type", "config-dump"))
        listeners = next(c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump"))
        versions = {entry["active_state"]["version_info"] for entry in listeners["dynamic_listeners"]}
        snapshot = plane.cache.get_snapshot("default.backend-1")
        assert snapshot is not None
        assert versions == {snapshot.version("type.googleapis.com/envoy.config.listener.v3.Listener")}
        bootstrap = dump["configs"][0]["bootstrap"]
        assert (bootstrap["node"]["id"], bootstrap["stats_flush_interval"]) == ("default.backend-1", "2s")
        stats = await cli(api, "inspect", "dataplane", "backend-1", "--type", "stats")
        assert "control_plane.connected_state: 1" in stats.splitlines()
        clusters = await cli(api, "inspect", "dataplane", "backend-1", "--type", "clusters")
        assert any(line.startswith("ads_cluster::") for line in clusters.splitlines())
    finally:
        await stop(process)


def plane_acked(plane: ControlPlane, node: str) -> bool:
    status = plane.status.status(node)
    listener = status.types.get("type.googleapis.com/envoy.config.listener.v3.Listener") if status else None
    return bool(listener and listener.version_acked and listener.version_acked == listener.version_sent)



REGION_EXAMPLE = Path(__file__).parents[2] / "examples" / "multi-region-tracing.yaml"


def regional(name: str, region: str, port: int) -> dict[str, Any]:
    return {"type": "Dataplane", "mesh": "global", "name": name, "networking": {"address": HOST, "inbound": [
        {"port": port, "servicePort": port + 1,
         "tags": {"kuma.io/service": name.rsplit("-", 1)[0], "kuma.io/protocol": "http", "region": region}}]}}


async def test_dry_run_of_the_multi_region_example_lists_exactly_the_proxies_whose_backend_changes(
    plane: ControlPlane, tmp_path: Path
) -> None:
    api = f"http://{HOST}:{plane.api_port}"
    mesh_doc = next(doc for doc in yaml.safe_load_all(REGION_EXAMPLE.read_text()) if doc["type"] == "Mesh")
    proxies = [regional("web-eu-1", "eu", free_port()), regional("api-us-1", "us", free_port()),
               regional("api-us-2", "us", free_port()), regional("db-eu-1", "eu", free_port())]
    everything = {"type": "TrafficTrace", "mesh": "global", "name": "all",
                  "selectors": [{"match": {"kuma.io/service": "*"}}]}  # the mesh's default backend, zipkin-eu
    async with aiohttp.ClientSession() as session:
        for doc in (mesh_doc, everything, *proxies):
            kind = {"Mesh": "", "TrafficTrace": "/traffic-traces", "Dataplane": "/dataplanes"}[doc["type"]]
            path = f"/meshes/{doc['name']}" if not kind else f"/meshes/global{kind}/{doc['name']}"
            async with session.put(api + path, json=doc) as response:
                assert response.status in (200, 201), await response.text()
    bootstrap = build_bootstrap(node_id="global.api-us-1", service="api", cp_host=HOST, cp_port=plane.xds_port)
    async with run_envoy(bootstrap, workdir=workdir(tmp_path / "api-us-1")) as envoy:
        await eventually(lambda: plane_acked(plane, "global.api-us-1"), timeout=TIMEOUT_S, message="never ACKed")
        before = await lds_version(envoy)
        output = await cli(api, "apply", "--dry-run", "-f", str(REGION_EXAMPLE))
        changed_backend = {line.split(":")[0].strip() for line in output.splitlines()
                           if line.startswith("  ") and "backend zipkin-eu → zipkin-us" in line}
        assert changed_backend == {"global/api-us-1", "global/api-us-2"}, output
        assert output.splitlines()[0] == 'Mesh "global" unchanged (dry run, nothing written)', output
        assert 'TrafficTrace "global/trace-eu" created (dry run, nothing written)' in output
        eu = [line for line in output.splitlines() if line.startswith("  global/") and "-eu-" in line]
        assert len(eu) == 2 and all("policy TrafficTrace all → TrafficTrace trace-eu" in line for line in eu), output
        assert all("backend" not in line for line in eu), output
        # Nothing was written, so nothing was pushed: the Envoy still holds the same listeners.
        assert {r.name for r in (await plane.store.list(TRAFFIC_TRACE)).items} == {"all"}
        assert await lds_version(envoy) == before


async def lds_version(envoy: EnvoyProcess) -> str:
    stats = await envoy.stats(r"^listener_manager\.lds\.version_text$")
    return str(stats["listener_manager.lds.version_text"])
