"""K real Envoys next to the simulated clients (`--envoys K`): the check that the simulation is not lying.

Simulated clients are cheap but only imitate Envoy; a few real Envoys on the control plane confirm that it
serves what Envoy accepts and converge as fast. Their convergence is read from Envoy's own
`version_text` stats (polled), not from the control plane, so it is independent of the server's view.
Must not: take part in the push-count check (the Envoys talk to the control plane only, not the floor).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any, Final

from bench.processes import free_port
from bench.workload import ProxyConfig, ProxySpec, Workload
from controlplane.xds import types

VERSION_STATS: Final = {"cluster_manager.cds.version_text": types.CLUSTER_TYPE,
                        "listener_manager.lds.version_text": types.LISTENER_TYPE}
POLL_EVERY_S: Final = 0.005


def envoy_proxies(workload: Workload, k: int) -> list[ProxySpec]:
    """K extra proxies for real Envoys: loopback address, free ports, reaching the first R services."""
    out = []
    for i in range(k):
        service = workload.services[i % len(workload.services)]
        outbounds = tuple(s for s in workload.services if s != service)[:workload.reach]
        out.append(ProxySpec(f"envoy-{i}", service, "127.0.0.1", free_port(), outbounds,
                             tuple(free_port() for _ in outbounds)))
    return out


class RealEnvoys:
    """The running Envoys (stopped with `stack`) and every convergence time seen, start-up included."""

    def __init__(self, stack: AsyncExitStack, pin_cpu: bool) -> None:
        self.stack = stack
        self.pin_cpu = pin_cpu
        self.running: dict[str, Any] = {}
        self.times: list[float] = []

    async def start(self, specs: Sequence[ProxySpec], xds_port: int, delta: bool,
                    configs: Mapping[str, ProxyConfig]) -> None:
        """Start each Envoy and wait (30 s) until all run the initial config."""
        from controlplane.dataplane.bootstrap import build_bootstrap
        from tests.e2e.support.envoy import run_envoy
        for spec in specs:
            bootstrap = build_bootstrap(node_id=spec.node_id, service=spec.service, cp_host="127.0.0.1",
                                        cp_port=xds_port, delta=delta)
            envoy = await self.stack.enter_async_context(run_envoy(bootstrap, log_level="warning"))
            if self.pin_cpu:
                subprocess.run(["taskset", "-a", "-p", "-c", "1", str(envoy.process.pid)], capture_output=True, check=False)  # noqa: ASYNC221 - one-off, before measuring
            self.running[spec.node_id] = envoy
        problem = await self.converge(time.perf_counter(), configs, timeout=30)
        if problem:
            raise RuntimeError(problem)

    async def converge(self, t0: float, configs: Mapping[str, ProxyConfig], timeout: float = 10) -> str | None:
        """Poll every Envoy's CDS/LDS version_text until it equals the expected version (SotW type version)."""
        pending = dict(self.running)
        latest = 0.0
        while pending and time.perf_counter() - t0 < timeout:
            for node, envoy in list(pending.items()):
                stats = await envoy.stats("(cds|lds).version_text")
                config = configs[node]
                if all(str(stats.get(stat, "")).strip('"') == config.types[type_url].version
                       for stat, type_url in VERSION_STATS.items()):
                    latest = time.perf_counter() - t0
                    del pending[node]
            await asyncio.sleep(POLL_EVERY_S)
        if pending:
            return f"{len(pending)} real Envoys not on the expected version_text after {timeout:g} s"
        self.times.append(latest)
        return None
