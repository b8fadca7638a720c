"""`controlplane run`: build the store, HTTP API, ADS server and reconciler, run them, stop them cleanly.

This module owns every long-lived task (STYLE §4.5): they run under one TaskGroup, so if one fails the
others are cancelled and the process exits non-zero. Shutdown order on SIGINT/SIGTERM: stop accepting
(gRPC server with a grace period, then the HTTP runner), cancel the reconciler, close the store.
"""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Final

import click
import structlog
from aiohttp import web

from controlplane.api.app import create_app
from controlplane.observability import LOG_FORMATS, Metrics, configure_logging
from controlplane.store.base import Store
from controlplane.store.factory import DEFAULT_STORE_URL, STORE_ENV, open_store

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


@click.command()
@click.option("--store", "store_url", envvar=STORE_ENV, default=DEFAULT_STORE_URL, show_default=True,
              help=f"memory | sqlite:PATH | postgres://... (env {STORE_ENV}); `sqlite:` = ./controlplane.db")
@click.option("--api-address", default="127.0.0.1", show_default=True, help="HTTP API listen address.")
@click.option("--api-port", type=int, default=DEFAULT_API_PORT, show_default=True, help="HTTP API port (0 = any).")
@click.option("--xds-address", default="0.0.0.0", show_default=True, help="ADS gRPC listen address.")
@click.option("--xds-port", type=int, default=DEFAULT_XDS_PORT, show_default=True, help="ADS gRPC port (0 = any).")
@click.option("--debounce", "debounce_s", type=float, default=0.1, show_default=True,
              help="Seconds to wait for more changes before regenerating.")
@click.option("--max-wait", "max_wait_s", type=float, default=1.0, show_default=True,
              help="Longest a burst of changes may delay regeneration.")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="console", show_default=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
def run(store_url: str, api_address: str, api_port: int, xds_address: str, xds_port: int, debounce_s: float,
        max_wait_s: float, log_format: str, log_level: str) -> None:
    """Run the control plane (HTTP API on 5681, ADS on 5678)."""
    configure_logging(log_format, log_level)
    config = RunConfig(store_url, api_address, api_port, xds_address, xds_port, debounce_s, max_wait_s)
    try:
        asyncio.run(serve(config))
    except ValueError as exc:  # bad --store URL and similar configuration errors
        raise click.ClickException(str(exc)) from None


async def serve(config: RunConfig, started: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or until the caller cancels); `started` is set once ports are bound."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics = Metrics()
    store = await open_store(config.store_url)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        runner = await _start_api(store, metrics, config)
        stack.push_async_callback(runner.cleanup)
        log.info("control_plane_started", store=_redact(config.store_url), pid=os.getpid())
        if started is not None:
            started.set()
        await stop.wait()
        log.info("control_plane_stopping")


async def _start_api(store: Store, metrics: Metrics, config: RunConfig) -> web.AppRunner:
    runner = web.AppRunner(create_app(store, metrics), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.api_host, config.api_port)
    await site.start()
    port = runner.addresses[0][1]
    log.info("api_listening", address=config.api_host, port=port, url=f"http://{config.api_host}:{port}")
    return runner


def _redact(url: str) -> str:
    """Never log database passwords."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
