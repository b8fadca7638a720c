"""`controlplane dataplane run`: the kuma-dp equivalent, one Envoy supervised for one Dataplane.

Lifecycle: register the Dataplane through the HTTP API (the same validation and PUT as `apply`), write
the bootstrap to a temporary directory, start Envoy, re-log its output through structlog (bound with
`node_id`), forward SIGINT/SIGTERM to it, and on the way out always stop Envoy (SIGTERM, then SIGKILL),
then deregister the Dataplane. While Envoy runs, two helpers run beside it: the ADS watch (ads_watch.py:
"connected to ADS at ..." / "cannot reach ADS at ...: reason") and the admin tunnel (admin_tunnel.py), over
which the control plane reads Envoy's config dump, stats and clusters without its admin leaving loopback. Kuma deregisters on disconnect in the control plane (kuma-tracing.md
§4.2); doing it here keeps the control plane free of stream-lifecycle writes to the store.

Exit status: 0 after a signal made Envoy stop cleanly (or cancelled the start-up), otherwise Envoy's own status (128+N if a
signal N killed it). Must not: generate Envoy configuration beyond the bootstrap.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import click
import structlog

from controlplane.cli.apply import apply_all, resource_path
from controlplane.cli.client import ApiClient, ApiFailure
from controlplane.dataplane.admin_tunnel import TunnelClient
from controlplane.dataplane.ads_watch import AdsWatch
from controlplane.dataplane.bootstrap import DEFAULT_STATS, StatsReporting, build_bootstrap
from controlplane.dataplane.envoy import EnvoyProcess, exit_status, running_envoy, stop_envoy
from controlplane.resources.dataplane import identifying_service
from controlplane.resources.generated import mesh_pb2
from controlplane.resources.model import Resource
from controlplane.xds.node import node_id

log = structlog.get_logger(__name__)

FORWARDED_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class DataplaneRun:
    """Everything `dataplane run` needs, parsed and validated by the command."""

    resource: Resource
    api_url: str
    cp_host: str
    cp_port: int
    envoy: str
    admin_port: int = 0
    delta: bool = False
    log_level: str = "info"
    runtime: Mapping[str, object] = field(default_factory=dict)
    token: str | None = None
    ca_cert_pem: str | None = None
    stats: StatsReporting | None = DEFAULT_STATS

    @property
    def node_id(self) -> str:
        return node_id(self.resource.mesh, self.resource.name)


async def run_dataplane(config: DataplaneRun) -> int:
    """Register, run Envoy until it exits or we are signalled, deregister; return the exit status.

    Signal handlers are installed first: a signal before Envoy runs cancels the start-up (and still
    deregisters); once Envoy runs, it is forwarded and Envoy's clean exit ends the run.
    """
    client = ApiClient(config.api_url)
    signals = _Signals(asyncio.current_task(), log.bind(node_id=config.node_id))
    loop = asyncio.get_running_loop()
    for sig in FORWARDED_SIGNALS:
        loop.add_signal_handler(sig, signals.received, sig)
    # The PUT runs in a thread that a cancellation cannot stop, so it is shielded and awaited before
    # deciding whether to deregister: a signal during registration must not leave the Dataplane behind.
    registering = asyncio.ensure_future(asyncio.to_thread(apply_all, client, [config.resource], False))
    try:
        await asyncio.shield(registering)
        with tempfile.TemporaryDirectory(prefix="controlplane-dp-") as workdir:
            return await _supervise(config, Path(workdir), signals)
    finally:
        await asyncio.wait([registering])
        if not registering.cancelled() and registering.exception() is None:
            await asyncio.to_thread(_deregister, client, config.resource, signals.log)
        for sig in FORWARDED_SIGNALS:
            loop.remove_signal_handler(sig)


@dataclass
class _Signals:
    """Forwards SIGINT/SIGTERM to Envoy once it runs; before that, cancels the start-up."""

    main: asyncio.Task[object] | None
    log: structlog.typing.FilteringBoundLogger
    envoy: EnvoyProcess | None = None
    envoy_ran: bool = False
    seen: list[int] = field(default_factory=list)

    def received(self, sig: int) -> None:
        self.seen.append(sig)
        self.log.info("signal_received", signal=signal.Signals(sig).name)
        if self.envoy is None:
            # Cancel the start-up once; after Envoy ran we are already on the way out (deregistering).
            if self.main is not None and not self.envoy_ran and len(self.seen) == 1:
                self.main.cancel()
        elif self.envoy.process.returncode is None:
            self.envoy.process.send_signal(sig)  # Envoy treats SIGINT and SIGTERM alike: drain, exit 0


async def _supervise(config: DataplaneRun, workdir: Path, signals: _Signals) -> int:
    spec = config.resource.spec
    assert isinstance(spec, mesh_pb2.Dataplane)
    bootstrap = build_bootstrap(node_id=config.node_id, service=identifying_service(spec), cp_host=config.cp_host,
                                cp_port=config.cp_port, admin_port=config.admin_port, delta=config.delta,
                                runtime=config.runtime, token=config.token, ca_cert_pem=config.ca_cert_pem,
                                stats=config.stats)
    async with running_envoy(bootstrap, workdir, envoy=config.envoy, log_level=config.log_level,
                             logger=signals.log) as envoy:
        signals.log.info("envoy_started", pid=envoy.pid, admin=envoy.admin_url,
                         cp=f"{config.cp_host}:{config.cp_port}")
        signals.envoy, signals.envoy_ran = envoy, True
        helpers = _start_helpers(config, envoy, signals.log)
        try:
            returncode = await envoy.process.wait()
        finally:
            signals.envoy = None
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await stop_envoy(envoy.process)
    if signals.seen:
        signals.log.info("envoy_stopped", returncode=returncode)
        return 0 if returncode == 0 or -returncode in signals.seen else exit_status(returncode)
    signals.log.error("envoy_exited", returncode=returncode)
    return exit_status(returncode)


def _start_helpers(config: DataplaneRun, envoy: EnvoyProcess,
                   bound: structlog.typing.FilteringBoundLogger) -> list[asyncio.Task[None]]:
    """The admin tunnel and the ADS watch, owned by `_supervise` (cancelled and awaited there)."""
    host = f"[{config.cp_host}]" if ":" in config.cp_host else config.cp_host
    tunnel = TunnelClient(f"{host}:{config.cp_port}", config.node_id, envoy.admin_url, config.token,
                          config.ca_cert_pem)
    watch = AdsWatch(envoy.admin_url, config.cp_host, config.cp_port, bound, tunnel)
    return [asyncio.create_task(tunnel.run(), name="admin-tunnel"), asyncio.create_task(watch.run(), name="ads-watch")]


def _deregister(client: ApiClient, resource: Resource, bound: structlog.typing.FilteringBoundLogger) -> None:
    """Best effort: a control plane that is gone cannot keep a stale Dataplane either."""
    try:
        client.request("DELETE", resource_path(resource))
    except ApiFailure as exc:
        if exc.status != 404:
            bound.warning("deregister_failed", error=exc.message)
        return
    except click.ClickException as exc:
        bound.warning("deregister_failed", error=exc.message)
        return
    bound.info("dataplane_deregistered")
