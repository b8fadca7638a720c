"""`controlplane dataplane run` as a user runs it: a real process, a real Envoy, the control plane's HTTP API.

The control plane runs in this test's event loop (memory store, ports 0); the runner is the console script
in a child process. Each test checks what a user relies on: the Dataplane is registered and gets config,
traffic flows through its inbound to the app, and however the run ends no Envoy is left and the
Dataplane is deregistered (except when the runner itself is SIGKILLed: then only the kernel can act, and
it must still take Envoy down with it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from controlplane.cli.run import ControlPlane, RunConfig, running
from controlplane.demo.services import DemoService

from .support.waiting import eventually, free_port

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"
TIMEOUT_S = 20.0
DATAPLANE_YAML = """\
type: Dataplane
mesh: default
name: {{ name }}
networking:
  address: 127.0.0.1
  inbound:
  - port: {{ port }}
    servicePort: {{ app }}
    tags:
      kuma.io/service: backend
      kuma.io/protocol: http
"""


@pytest.fixture
async def plane() -> AsyncIterator[ControlPlane]:
    config = RunConfig(store_url="memory", api_host=HOST, api_port=0, xds_host=HOST, xds_port=0,
                       debounce_s=0.02, max_wait_s=0.2)
    async with running(config) as control_plane:
        yield control_plane


@pytest.fixture
async def app() -> AsyncIterator[DemoService]:
    service = DemoService("backend")
    await service.start()
    yield service
    await service.stop()


@dataclass
class Runner:
    """A `controlplane dataplane run` child process and what it was started for."""

    process: asyncio.subprocess.Process
    api: str
    inbound_port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def status(self, session: aiohttp.ClientSession, path: str) -> int:
        async with session.get(self.api + path) as response:
            return response.status

    def envoy_pids(self) -> list[int]:
        """Children of the runner (the Envoy; our prctl shim execs in place, so it has Envoy's pid)."""
        tasks = Path(f"/proc/{self.process.pid}/task")
        if not tasks.is_dir():
            return []
        return [int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split()]


@pytest.fixture
async def runner(plane: ControlPlane, app: DemoService, tmp_path: Path) -> AsyncIterator[Runner]:
    (tmp_path / "dataplane.yaml").write_text(DATAPLANE_YAML)
    log_path = tmp_path / "runner.log"
    port = free_port()
    api = f"http://{HOST}:{plane.api_port}"
    mesh = {"type": "Mesh", "name": "default"}
    async with aiohttp.ClientSession() as session, session.put(f"{api}/meshes/default", json=mesh) as response:
        assert response.status == 201
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "controlplane"), "dataplane", "run", "-f", str(tmp_path / "dataplane.yaml"),
            "--var", "name=backend-1", "--var", f"port={port}", "--var", f"app={app.port}",
            "--cp-address", f"{HOST}:{plane.xds_port}", "--api-url", api,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
    started = Runner(process, api, port, log_path)
    try:
        yield started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _served(runner: Runner, session: aiohttp.ClientSession) -> bool:
    async with session.get(f"http://{HOST}:{runner.inbound_port}/hello") as response:
        return response.status == 200 and await response.text() == "backend"


async def _wait_serving(runner: Runner, session: aiohttp.ClientSession) -> int:
    """Registered, connected, config ACKed, traffic through the inbound reaches the app; Envoy's pid."""
    await eventually(lambda: _served(runner, session), timeout=TIMEOUT_S,
                     message=f"no traffic through the sidecar\n{runner.log()}")
    # The runner logs this once it saw Envoy's admin API; a signal before that is tested by the
    # start-up tests below (it must still stop cleanly), here we want the steady state.
    await eventually(lambda: "envoy_started" in runner.log(), timeout=TIMEOUT_S, message="no envoy_started log")
    async with session.get(f"{runner.api}/meshes/default/dataplanes/backend-1/xds") as response:
        xds = await response.json()
    assert xds["connected"], xds
    assert all(t["versionAcked"] == t["version"] for t in xds["types"].values() if "versionSent" in t), xds
    pids = runner.envoy_pids()
    assert len(pids) == 1, pids
    return pids[0]


def _gone(pid: int) -> bool:
    """No such process, or a zombie (dead, waiting for whoever inherited it to reap it)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return True
    return state == "Z"


async def _exit_code(runner: Runner) -> int:
    try:
        return await asyncio.wait_for(runner.process.wait(), TIMEOUT_S)
    except TimeoutError:
        raise AssertionError(f"dataplane run did not exit\n{runner.log()}") from None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
async def test_signal_stops_envoy_and_deregisters(runner: Runner, sig: signal.Signals) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        envoy = await _wait_serving(runner, session)
        assert (Path(f"/proc/{envoy}/cmdline").read_bytes().split(b"\0")[0]).endswith(b"envoy")
        runner.process.send_signal(sig)
        assert await _exit_code(runner) == 0, runner.log()
        await eventually(lambda: _gone(envoy), timeout=5, message="Envoy outlived dataplane run")
        assert await runner.status(session, "/meshes/default/dataplanes/backend-1") == 404
    log = runner.log()
    assert "envoy_started" in log and "node_id=default.backend-1" in log  # Envoy's log, through structlog
    assert "envoy_log" in log and "dataplane_deregistered" in log


async def test_envoy_death_is_the_exit_status(runner: Runner) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        envoy = await _wait_serving(runner, session)
        os.kill(envoy, signal.SIGKILL)
        assert await _exit_code(runner) == 128 + signal.SIGKILL, runner.log()
        assert await runner.status(session, "/meshes/default/dataplanes/backend-1") == 404
    assert "envoy_exited" in runner.log()


async def test_signal_during_start_up_still_stops_cleanly(runner: Runner) -> None:
    """SIGTERM as soon as the Dataplane is registered: whatever had started is stopped, exit 0."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        await eventually(lambda: "created" in runner.log(), timeout=TIMEOUT_S, message="never registered")
        pids = runner.envoy_pids()
        runner.process.send_signal(signal.SIGTERM)
        assert await _exit_code(runner) == 0, runner.log()
        assert all(_gone(pid) for pid in pids), pids
        assert await runner.status(session, "/meshes/default/dataplanes/backend-1") == 404


async def test_killed_runner_takes_envoy_down(runner: Runner) -> None:
    """SIGKILL gives the runner no chance to clean up: PR_SET_PDEATHSIG makes the kernel kill Envoy."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        envoy = await _wait_serving(runner, session)
    runner.process.kill()
    await runner.process.wait()
    await eventually(lambda: _gone(envoy), timeout=5, message="Envoy survived its runner (orphan)")
