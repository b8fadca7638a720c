"""`controlplane run`: build the store, HTTP API, ADS server and reconciler, run them, stop them cleanly.

This module owns every long-lived task (STYLE §4.5): they run under one TaskGroup, so if one fails the
others are cancelled and the process exits non-zero. Shutdown order on SIGINT/SIGTERM: stop accepting
(gRPC server with a grace period, then the HTTP runner), cancel the reconciler, close the store.
Security (tokens, admin, TLS) is set up by `security.py`; README "Security" explains the options.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import click
import structlog
from aiohttp import web

from controlplane.api.app import create_app
from controlplane.api.keys import ApiAuth
from controlplane.auth.tokens import Tokens
from controlplane.cli.security import (
    SIGNING_KEY_ENV,
    ServerTls,
    load_server_tls,
    open_tokens,
    write_admin_token,
)
from controlplane.errors import StoreUnavailable
from controlplane.observability import LOG_FORMATS, Metrics, configure_logging
from controlplane.runtime import MemoryKeeper, raise_gen0_threshold, sample_loop_lag
from controlplane.store.base import Store
from controlplane.store.factory import DEFAULT_STORE_URL, STORE_ENV, open_store
from controlplane.xds.authn import DATAPLANE_AUTH_MODES, Authenticator, TokenAuthenticator
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.inspect import XdsInspector
from controlplane.xds.observer import StatusRegistry
from controlplane.xds.reconciler import Reconciler
from controlplane.xds.server import start_ads_server
from controlplane.xds.telemetry import MetricsObserver

log = structlog.get_logger(__name__)

DEFAULT_API_PORT: Final = 5681
DEFAULT_XDS_PORT: Final = 5678
GRACE_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class RunConfig:
    store_url: str
    api_host: str
    api_port: int
    xds_host: str
    xds_port: int
    debounce_s: float
    max_wait_s: float
    signing_key_file: Path | None = None
    dataplane_auth: str = "none"
    api_localhost_is_admin: bool = True
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    admin_token_file: Path | None = None
    debounce_first_s: float = 0.02


_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command()
@click.option("--store", "store_url", envvar=STORE_ENV, default=DEFAULT_STORE_URL, show_default=True,
              help=f"memory | sqlite:PATH | postgres://... (env {STORE_ENV}); `sqlite:` = ./controlplane.db")
@click.option("--api-address", default="127.0.0.1", show_default=True, help="HTTP API listen address.")
@click.option("--api-port", type=click.IntRange(0, 65535), default=DEFAULT_API_PORT, show_default=True,
              help="HTTP API port (0 = any).")
@click.option("--xds-address", default="0.0.0.0", show_default=True, help="ADS gRPC listen address.")
@click.option("--xds-port", type=click.IntRange(0, 65535), default=DEFAULT_XDS_PORT, show_default=True,
              help="ADS gRPC port (0 = any).")
@click.option("--debounce", "debounce_s", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="Seconds to wait for more changes before regenerating.")
@click.option("--debounce-first", "debounce_first_s", type=click.FloatRange(min=0), default=0.02,
              show_default=True,
              help="Shorter wait for the first change after --debounce seconds without changes.")
@click.option("--max-wait", "max_wait_s", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Longest a burst of changes may delay regeneration.")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="console", show_default=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@click.option("--signing-key-file", type=_FILE, envvar=SIGNING_KEY_ENV, default=None,
              help="Token signing key (PEM, created if missing); default: next to the SQLite database, "
                   "./controlplane-signing-key.pem for PostgreSQL, in memory for the memory store.")
@click.option("--dataplane-auth", type=click.Choice(DATAPLANE_AUTH_MODES), default="none", show_default=True,
              help="token: ADS streams must present a dataplane token for their node.")
@click.option("--api-localhost-is-admin/--no-api-localhost-is-admin", default=True, show_default=True,
              help="Allow API writes from 127.0.0.1/::1 without a token.")
@click.option("--tls-cert-file", type=_FILE, default=None, help="Serve ADS and the API over TLS with this certificate.")
@click.option("--tls-key-file", type=_FILE, default=None, help="Private key of --tls-cert-file.")
@click.option("--admin-token-file", type=_FILE, default=None,
              help="Write a fresh admin token (mode 0600) to this file at start, for tools that share it.")
def run(store_url: str, api_address: str, api_port: int, xds_address: str, xds_port: int, debounce_s: float,
        debounce_first_s: float, max_wait_s: float, log_format: str, log_level: str, signing_key_file: Path | None,
        dataplane_auth: str, api_localhost_is_admin: bool, tls_cert_file: Path | None, tls_key_file: Path | None,
        admin_token_file: Path | None) -> None:
    """Run the control plane (HTTP API on 5681, ADS on 5678)."""
    configure_logging(log_format, log_level)
    config = RunConfig(store_url, api_address, api_port, xds_address, xds_port, debounce_s, max_wait_s,
                       signing_key_file, dataplane_auth, api_localhost_is_admin, tls_cert_file, tls_key_file,
                       admin_token_file, debounce_first_s)
    try:
        asyncio.run(serve(config))
    except (ValueError, StoreUnavailable) as exc:  # bad --store URL, database unreachable at start
        raise click.ClickException(str(exc)) from None


@dataclass(frozen=True, slots=True)
class ControlPlane:
    """Handles on a running control plane (tests use them to inject snapshots or read the cache)."""

    store: Store
    cache: SnapshotCache
    reconciler: Reconciler
    status: StatusRegistry
    metrics: Metrics
    api_port: int
    xds_port: int
    tokens: Tokens


@asynccontextmanager
async def running(config: RunConfig) -> AsyncIterator[ControlPlane]:
    """Start everything, yield the handles, and on exit stop in order: stop accepting (gRPC with a grace
    period, then HTTP), stop producing config (cancel the reconciler), close the store."""
    metrics = Metrics()
    tls = load_server_tls(config.tls_cert_file, config.tls_key_file)
    tokens = await asyncio.to_thread(open_tokens, config.store_url, config.signing_key_file)
    if config.admin_token_file is not None:
        write_admin_token(tokens, config.admin_token_file)
    authenticator: Authenticator | None = None
    if config.dataplane_auth == "token":
        authenticator = TokenAuthenticator(tokens, metrics.xds_auth_failures)
    store = await open_store(config.store_url)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        cache, status, telemetry = SnapshotCache(), StatusRegistry(), MetricsObserver(metrics)
        keeper = MemoryKeeper(status.stream_count)
        raise_gen0_threshold()
        reconciler = Reconciler(store, cache, metrics, debounce_s=config.debounce_s, max_wait_s=config.max_wait_s,
                                debounce_first_s=config.debounce_first_s, on_published=telemetry.published,
                                after_pass=keeper.after_pass)
        async with asyncio.TaskGroup() as tasks:
            reconciling = tasks.create_task(reconciler.run(), name="reconciler")
            upkeep = [tasks.create_task(sample_loop_lag(metrics.loop_lag_seconds), name="loop-lag"),
                      tasks.create_task(keeper.run(), name="memory-keeper")]
            grpc_server, xds_port = await start_ads_server(
                cache, config.xds_host, config.xds_port, telemetry, status=status,
                authenticator=authenticator, credentials=tls.grpc_credentials if tls else None,
            )
            try:
                auth = ApiAuth(tokens, config.api_localhost_is_admin)
                runner = await _start_api(create_app(store, metrics, XdsInspector(reconciler, cache, status),
                                                     auth=auth), config, tls)
                try:
                    await reconciler.ready.wait()
                    yield ControlPlane(store, cache, reconciler, status, metrics, runner.addresses[0][1], xds_port,
                                       tokens)
                finally:
                    await runner.cleanup()
            finally:
                await grpc_server.stop(GRACE_S)
                reconciling.cancel()
                for task in upkeep:
                    task.cancel()


async def serve(config: RunConfig) -> None:
    """Run until SIGINT/SIGTERM; a failing component ends the process with an error."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running(config) as plane:
        log.info("control_plane_started", store=_redact(config.store_url), pid=os.getpid(),
                 api_port=plane.api_port, xds_port=plane.xds_port)
        await stop.wait()
        log.info("control_plane_stopping")


async def _start_api(app: web.Application, config: RunConfig, tls: ServerTls | None) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.api_host, config.api_port, ssl_context=tls.ssl_context if tls else None)
    await site.start()
    port = runner.addresses[0][1]
    scheme = "https" if tls else "http"
    log.info("api_listening", address=config.api_host, port=port, url=f"{scheme}://{config.api_host}:{port}",
             localhost_is_admin=config.api_localhost_is_admin, dataplane_auth=config.dataplane_auth)
    return runner


def _redact(url: str) -> str:
    """Never log database passwords."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
