"""`controlplane demo`: the whole tracing story on one machine, with real Envoys, in one command.

Owns every part it starts (STYLE §4.5), in one AsyncExitStack so that they stop in reverse order on any
exit (duration over, Ctrl-C, a failure): the Envoys' admin tunnels, the Envoys (they hold ADS streams),
then the apps, the span receiver, and the control plane last. The traffic and trace-printing tasks live in
one TaskGroup that is cancelled and awaited before any of that. Progress goes to stdout, one line per step;
logs (Envoy's warnings included) go to stderr through structlog.

The built-in receiver can be stopped and started again while the demo runs (SIGUSR1 stops it, SIGUSR2
starts it on the same port), to see `controlplane inspect dataplane frontend-1` say the collector is
unreachable, then that spans flow again. Envoys flush their stats every `STATS_FLUSH_S` (Envoy's default
is 5 s), so the verdict follows within seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import tempfile
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import click
import structlog
import yaml

from controlplane.cli.apply import apply_all, decode_all
from controlplane.cli.client import ApiClient, ApiSettings
from controlplane.cli.run import RunConfig, running
from controlplane.dataplane.admin_tunnel import TunnelClient
from controlplane.dataplane.bootstrap import ReconnectBackoff, StatsReporting, build_bootstrap
from controlplane.dataplane.envoy import EnvoyProcess, running_envoy
from controlplane.demo.meshtrace import (
    MESH_TRACE,
    TRAFFIC_TRACE,
    ZIPKIN,
    meshtrace_next_steps,
    start_meshtrace,
)
from controlplane.demo.receiver import SpanReceiver
from controlplane.demo.services import DemoService
from controlplane.demo.topology import HOST, SERVICES, TRAFFIC_TRACE_YAML, Hop, dataplane_document, mesh_yaml
from controlplane.demo.traffic import DemoReport, print_traces, send_traffic, wait_until_served
from controlplane.resources.codec import decode_resource

log = structlog.get_logger(__name__)

RUNTIME: Final = {"tracing.zipkin.min_flush_spans": 1, "tracing.opentelemetry.min_flush_spans": 1}
"""Flush every zipkin and OpenTelemetry span at once instead of batching 5 (or waiting for the 5 s timer)."""
READY_TIMEOUT_S: Final = 60.0
STEPS: Final = 7
STATS_FLUSH_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    duration_s: float | None = None
    zipkin_url: str | None = None
    api_port: int = 0
    xds_port: int = 0
    envoy: str | None = None
    interval_s: float = 1.0
    envoy_log_level: str = "error"
    """Envoy's own ``-l``: at "warning" every start and stop says something a demo user need not read."""
    policy: str = TRAFFIC_TRACE
    """`traffictrace` (the docs' zipkin Mesh and TrafficTrace) or `meshtrace` (Kuma's MeshTrace docs YAML)."""
    backend: str = ZIPKIN
    otel_endpoint: str | None = None
    otlp_http: bool = False

    @property
    def external_collector(self) -> str | None:
        """The collector given on the command line (then nothing is received or checked here)."""
        return self.zipkin_url or self.otel_endpoint


class _Progress:
    """`[n/6 +1.2s] text` lines on stdout, so a user sees where the demo is and how long each step took."""

    def __init__(self) -> None:
        self.step = 0
        self.started = asyncio.get_running_loop().time()

    def elapsed(self) -> float:
        return asyncio.get_running_loop().time() - self.started

    def __call__(self, text: str) -> None:
        self.step += 1
        click.echo(f"[{self.step}/{STEPS} +{self.elapsed():.1f}s] {text}")


async def run_demo(options: DemoOptions, stop: asyncio.Event, serving: asyncio.Event) -> DemoReport:
    """Start everything, set ``serving``, run until ``stop`` is set or the duration is over, stop everything."""
    progress = _Progress()
    report = DemoReport(progress.started, frozenset(SERVICES))
    async with AsyncExitStack() as stack:
        api_url, xds_port = await _start_control_plane(stack, options, progress)
        client = ApiClient(api_url, ApiSettings(api_url))  # its own control plane: no CLI configuration
        if options.policy == MESH_TRACE:
            receiver = await start_meshtrace(stack, options.backend, options.external_collector, options.otlp_http,
                                             lambda text: _apply(client, text), progress)
        else:
            receiver = None if options.zipkin_url else await _start_receiver(stack)
            collector = options.zipkin_url or (receiver.url if receiver else "")
            progress(f"built-in zipkin receiver at {collector}" if receiver else f"spans go to {collector}")
            await _apply(client, mesh_yaml(collector) + "---\n" + TRAFFIC_TRACE_YAML)
            progress("applied Mesh default (zipkin backend jaeger-collector) and TrafficTrace trace-all-traffic")
        hops = await _start_services(stack)
        progress("apps listening: " + ", ".join(f"{h.service} :{h.app_port}" for h in hops))
        await _apply(client, _dataplanes_yaml(hops))
        envoys = await _start_sidecars(stack, hops, xds_port, options)
        progress("Envoy sidecars started: " + ", ".join(f"{h.dataplane_name} (pid {e.pid})"
                                                        for h, e in zip(hops, envoys, strict=True)))
        await wait_until_served(hops[0].inbound_url + "/", " -> ".join(SERVICES), READY_TIMEOUT_S,
                                lambda: _dead_envoy(hops, envoys))
        progress(f"traffic flows {' -> '.join(SERVICES)}; a request every {options.interval_s:g}s to "
                 f"{hops[0].inbound_url}/ (frontend's sidecar)")
        if options.policy == MESH_TRACE:
            click.echo(meshtrace_next_steps(api_url, hops[0].inbound_url))
        else:
            _print_next_steps(api_url, receiver)
        serving.set()
        await _run(hops[0], receiver, report, options, stop)
    return report


async def _start_control_plane(stack: AsyncExitStack, options: DemoOptions,
                               progress: Callable[[str], None]) -> tuple[str, int]:
    # The embedded SQLite store the real `controlplane run` uses, in a directory removed on exit.
    store_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="controlplane-demo-"))
    store_url = f"sqlite:{Path(store_dir) / 'controlplane.db'}"
    config = RunConfig(store_url=store_url, api_host=HOST, api_port=options.api_port, xds_host=HOST,
                       xds_port=options.xds_port, debounce_s=0.05, max_wait_s=0.5)
    plane = await stack.enter_async_context(running(config))
    api_url = f"http://{HOST}:{plane.api_port}"
    progress(f"control plane running: API {api_url}, ADS {HOST}:{plane.xds_port}, store {store_url}")
    return api_url, plane.xds_port


async def _start_receiver(stack: AsyncExitStack) -> SpanReceiver:
    receiver = SpanReceiver(HOST, 0)
    await receiver.start()
    stack.push_async_callback(receiver.stop)
    return receiver


async def _apply(client: ApiClient, text: str) -> None:
    """Through the HTTP API, with apply's validation; prints `created` per resource."""
    await asyncio.to_thread(apply_all, client, decode_all(text), False)


async def _start_services(stack: AsyncExitStack) -> list[Hop]:
    """Apps from the last hop to the first, because each needs its sidecar's outbound port up front."""
    inbound = {service: free_port() for service in SERVICES}
    outbound = {service: free_port() for service in SERVICES[:-1]}
    hops: list[Hop] = []
    for service in SERVICES:
        port = outbound.get(service, 0)
        app = DemoService(service, f"http://{HOST}:{port}" if port else None, HOST, 0)
        await app.start()
        stack.push_async_callback(app.stop)
        hops.append(Hop(service, app.port, inbound[service], port))
    return hops


def _dataplanes_yaml(hops: list[Hop]) -> str:
    documents = [dataplane_document(hop, hops[i + 1].service if i + 1 < len(hops) else None)
                 for i, hop in enumerate(hops)]
    for document in documents:
        decode_resource(document)  # a bug here should fail before anything is applied
    return yaml.safe_dump_all(documents, sort_keys=False)


async def _start_sidecars(stack: AsyncExitStack, hops: list[Hop], xds_port: int,
                          options: DemoOptions) -> list[EnvoyProcess]:
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="controlplane-demo-")))
    envoys = []
    for hop in hops:
        bootstrap = build_bootstrap(node_id=hop.node_id, service=hop.service, cp_host=HOST, cp_port=xds_port,
                                    runtime=RUNTIME, reconnect_backoff=ReconnectBackoff(0.2, 2.0),
                                    stats=StatsReporting(flush_interval_s=STATS_FLUSH_S))
        (workdir / hop.dataplane_name).mkdir()
        logger = log.bind(node_id=hop.node_id)
        envoy = await stack.enter_async_context(
            running_envoy(bootstrap, workdir / hop.dataplane_name, envoy=options.envoy, logger=logger,
                          log_level=options.envoy_log_level))
        envoys.append(envoy)
        tunnel = asyncio.create_task(TunnelClient(f"{HOST}:{xds_port}", hop.node_id, envoy.admin_url).run(),
                                     name=f"admin-tunnel-{hop.dataplane_name}")
        stack.push_async_callback(_cancel, tunnel)  # before its Envoy stops (the stack unwinds in reverse)
    return envoys


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _dead_envoy(hops: list[Hop], envoys: list[EnvoyProcess]) -> str | None:
    for hop, envoy in zip(hops, envoys, strict=True):
        if envoy.process.returncode is not None:
            return f"the Envoy of {hop.dataplane_name} exited with code {envoy.process.returncode}"
    return None


def _print_next_steps(api_url: str, receiver: SpanReceiver | None) -> None:
    collector = (f"""
  kill -USR1 {os.getpid()}     # stops the built-in collector: inspect says it is unreachable, with numbers
  kill -USR2 {os.getpid()}     # starts it again: spans flow again""" if receiver is not None else "")
    click.echo(f"""
Control plane API: {api_url}   (Ctrl-C stops everything)
Web GUI: {api_url}/gui/   (the service graph: {api_url}/gui/meshes/default/graph)
Try, in another shell:
  export CONTROLPLANE_API_URL={api_url}
  controlplane get meshes
  controlplane inspect dataplanes
  controlplane inspect dataplane frontend-1                 # decided config, and whether spans flow
  controlplane inspect dataplane frontend-1 --type config-dump
  controlplane get mesh default -o yaml | sed 's/sampling: 100.0/sampling: 10.0/' | controlplane apply -f -
  controlplane delete traffic-trace trace-all-traffic     # and traces stop{collector}
Traces, as they arrive:
""")


async def _run(entry: Hop, receiver: SpanReceiver | None, report: DemoReport, options: DemoOptions,
               stop: asyncio.Event) -> None:
    async with asyncio.TaskGroup() as tasks:
        traffic = tasks.create_task(send_traffic(entry.inbound_url + "/", report, options.interval_s, click.echo))
        printing = tasks.create_task(print_traces(receiver, report, click.echo)) if receiver else None
        handle = _CollectorHandle(receiver, tasks) if receiver else None
        try:
            await asyncio.wait_for(stop.wait(), options.duration_s)
        except TimeoutError:
            pass
        finally:
            if handle is not None:
                handle.uninstall()
        traffic.cancel()
        if printing is not None:
            printing.cancel()


class _CollectorHandle:
    """SIGUSR1 stops the built-in receiver, SIGUSR2 starts it again (on its port); tasks owned by `tasks`."""

    def __init__(self, receiver: SpanReceiver, tasks: asyncio.TaskGroup) -> None:
        self._receiver, self._tasks = receiver, tasks
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, self._toggle, False)
        loop.add_signal_handler(signal.SIGUSR2, self._toggle, True)

    def _toggle(self, running: bool) -> None:
        self._tasks.create_task(self._switch(running))

    async def _switch(self, running: bool) -> None:
        if running:
            await self._receiver.start()
            click.echo(f"collector started again at {self._receiver.url}")
        else:
            await self._receiver.stop()
            click.echo(f"collector stopped (kill -USR2 {os.getpid()} starts it again)")

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGUSR1, signal.SIGUSR2):
            loop.remove_signal_handler(sig)


def free_port() -> int:
    """A port that was free a moment ago, for Envoy listeners (they need explicit ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port
