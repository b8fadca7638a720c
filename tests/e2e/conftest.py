"""Fixtures for end-to-end tests that run the real control plane with real Envoys.

The control plane runs in-process (`controlplane.cli.run.running`: memory store, API and ADS on port 0,
short debounce) so tests can reach its handles (cache, status, metrics) for hooks and assertions, while
resources still go in through the real HTTP API. Every Envoy is started through `sidecars`, which depends
on `plane`: pytest tears fixtures down in reverse order, so Envoys always stop before the control plane
(an Envoy still connected would hold the gRPC server for its whole shutdown grace period).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Final

import aiohttp
import pytest

from controlplane.cli.run import ControlPlane, RunConfig, running
from controlplane.dataplane.bootstrap import StatsReporting, build_bootstrap

from .support.envoy import run_envoy
from .support.plane import CONVERGE_TIMEOUT_S, HOST, MESH, Api, Sidecar, StartSidecar, Topology
from .support.upstream import UpstreamApp
from .support.waiting import eventually

RUNTIME: Final = {"tracing.zipkin.min_flush_spans": 1, "tracing.opentelemetry.min_flush_spans": 1}
"""Every span is flushed as soon as it finishes (Envoy batches 5 by default, or waits for its 5 s timer)."""
STATS_FLUSH_S: Final = 1.0
"""Stats-sink flush interval of the tests' Envoys (Envoy's default, which the bootstrap keeps, is 5 s)."""
SIDECARS: Final = pytest.StashKey[list[Sidecar]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, object]:
    """When a test fails, add each of its Envoys' config_dump and log tail to the report (STYLE §4.8).

    `run_envoy` attaches them only when the failure happens inside its `async with`; fixtures' Envoys
    never see the test's exception, so this hook collects them while the Envoys are still running.
    """
    report = yield
    if isinstance(report, pytest.TestReport) and report.when == "call" and report.failed:
        for sidecar in item.stash.get(SIDECARS, []):
            report.sections.append((f"Envoy of {sidecar.name}", sidecar.envoy.diagnostics()))
    return report


@pytest.fixture
async def plane() -> AsyncIterator[ControlPlane]:
    config = RunConfig(
        store_url="memory",
        api_host=HOST,
        api_port=0,
        xds_host=HOST,
        xds_port=0,
        debounce_s=0.02,
        max_wait_s=0.2,
    )
    async with running(config) as control_plane:
        yield control_plane


@pytest.fixture
async def api(plane: ControlPlane) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield Api(f"http://{HOST}:{plane.api_port}", session)


@pytest.fixture
async def backend_app() -> AsyncIterator[UpstreamApp]:
    async with UpstreamApp("backend") as app:
        yield app


@pytest.fixture
async def web_app() -> AsyncIterator[UpstreamApp]:
    async with UpstreamApp("web") as app:
        yield app


@pytest.fixture
def topology(backend_app: UpstreamApp, web_app: UpstreamApp) -> Topology:
    return Topology(backend_app, web_app)


@pytest.fixture
async def sidecars(
    plane: ControlPlane, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[StartSidecar]:
    """Factory ``await sidecars(name, service, delta=False)``: a LIVE Envoy for dataplane ``name``.

    Apply the Dataplane first: Envoy turns LIVE only after its first CDS and LDS responses, i.e. once the
    control plane had a snapshot for it. Each Envoy's files stay in ``tmp_path/<name>`` for post-mortems;
    all Envoys are stopped, in reverse start order, before the control plane.
    """
    started = request.node.stash[SIDECARS] = []
    async with AsyncExitStack() as stack:

        async def start(name: str, service: str, *, delta: bool = False) -> Sidecar:
            bootstrap = build_bootstrap(
                node_id=f"{MESH}.{name}", service=service, cp_host=HOST, cp_port=plane.xds_port,
                delta=delta, runtime=RUNTIME, stats=StatsReporting(flush_interval_s=STATS_FLUSH_S),
            )  # fmt: skip
            workdir = tmp_path / name
            workdir.mkdir()
            envoy = await stack.enter_async_context(run_envoy(bootstrap, workdir=workdir))

            async def live() -> bool:
                return await envoy.server_state() == "LIVE"

            await eventually(live, timeout=CONVERGE_TIMEOUT_S, message=f"Envoy of {name} never became LIVE")
            sidecar = Sidecar(name, envoy)
            started.append(sidecar)
            return sidecar

        yield start
