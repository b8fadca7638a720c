"""`controlplane run`: build the store, HTTP API, ADS server and reconciler, run them, stop them cleanly.

This module owns every long-lived task (STYLE §4.5): they run under one TaskGroup, so if one fails the
others are cancelled and the process exits non-zero. Start-up order (`startup.py` says why): check every
input with reads only, then write (open the store, which creates and locks an SQLite file; the signing key;
the admin token file), then listen (ADS, API), then load and publish; a start-up failure is one line on
stderr and exit 1, never a traceback. `/ready` is 503 until the first full generation has published.
Shutdown order on SIGINT/SIGTERM: stop accepting (the HTTP runner, then the gRPC server with a grace
period), cancel the reconciler, close the store.
Security (tokens, admin, TLS) is set up by `security.py`; README "Security" explains the options.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import click
import grpc
import structlog

from controlplane.api.event_feed import LiveFeeds
from controlplane.api.events import DEFAULT_MAX_CLIENTS
from controlplane.api.listener import ApiServer
from controlplane.api.origin import AllowedHosts
from controlplane.auth.keys import SigningKey
from controlplane.auth.revocation import DEFAULT_POLL_INTERVAL_S
from controlplane.auth.tokens import Tokens
from controlplane.cli.api_serving import build_api_app, start_api
from controlplane.cli.config_view import config_view
from controlplane.cli.security import (
    SIGNING_KEY_ENV,
    ServerTls,
    check_signing_key,
    load_server_tls,
    open_signing_key,
    open_tokens,
    write_admin_token,
)
from controlplane.cli.startup import (
    StartupError,
    bind_problem,
    check_directory_of,
    check_distinct_listeners,
    check_port_free,
    port_unavailable,
)
from controlplane.errors import ControlPlaneError, StoreLocked
from controlplane.observability import LOG_FORMATS, Metrics, configure_logging
from controlplane.process_limits import connection_budget, raise_open_files_limit
from controlplane.runtime import MemoryKeeper, sample_loop_lag, tune_process, tune_running_loop
from controlplane.store.base import Store
from controlplane.store.factory import DEFAULT_STORE_URL, STORE_ENV, check_store_url, open_store
from controlplane.xds.admin_tunnel import AdminTunnels
from controlplane.xds.authn import DATAPLANE_AUTH_MODES, Authenticator, TokenAuthenticator
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.ghosts import GhostWatch
from controlplane.xds.inspect import XdsInspector
from controlplane.xds.observer import CompositeObserver, StatusRegistry, StreamObserver
from controlplane.xds.reconciler import Reconciler, ReconcilerObserver
from controlplane.xds.server import start_ads_server
from controlplane.xds.server_options import DEFAULT_MAX_RECEIVE_BYTES, server_options
from controlplane.xds.span_flows import SpanFlowCollector, SpanFlows
from controlplane.xds.stats_sink import StatsSink
from controlplane.xds.telemetry import MetricsObserver

log = structlog.get_logger(__name__)

DEFAULT_API_PORT: Final = 5681
DEFAULT_XDS_PORT: Final = 5678
GRACE_S: Final = 2.0
NOT_READY: Final = "the store has not been loaded and decided yet (connected proxies get their first configuration then)"
ONE_OWNER_HINT: Final = "an SQLite store has one control plane; give this one its own --store, or share PostgreSQL"
ALLOWED_HOSTS_ENV: Final = "CONTROLPLANE_API_ALLOWED_HOSTS"
READ_AUTH_MODES: Final = ("auto", "open", "dataplane")
MIN_RECEIVE_BYTES: Final = 64 * 1024


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
    api_allowed_hosts: tuple[str, ...] = ()
    api_read_auth: str = "auto"
    revocation_poll_s: float = DEFAULT_POLL_INTERVAL_S
    xds_max_receive_bytes: int = DEFAULT_MAX_RECEIVE_BYTES
    xds_max_connections: int | None = None
    """None = unbounded; `serve()` sets both from the descriptor budget (process_limits.py)."""
    api_max_connections: int | None = None
    api_max_event_clients: int = DEFAULT_MAX_CLIENTS

    @property
    def dataplane_reads(self) -> bool:
        """`--api-read-auth`: `auto` protects per-dataplane reads exactly when ADS checks dataplane tokens."""
        return self.api_read_auth == "dataplane" or (self.api_read_auth == "auto" and self.dataplane_auth == "token")


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
@click.option("--api-allowed-hosts", "api_allowed_hosts", multiple=True, envvar=ALLOWED_HOSTS_ENV,
              help="Extra host names the API answers to (Host header; comma-separated or repeated; `*` = any). "
                   "Always allowed: localhost, loopback and --api-address (any IP when it is 0.0.0.0/::).")
@click.option("--api-read-auth", type=click.Choice(READ_AUTH_MODES), default="auto", show_default=True,
              help="dataplane: per-dataplane inspection reads need an admin or that dataplane's token; "
                   "auto: only with --dataplane-auth token; open: never.")
@click.option("--revocation-poll-interval", "revocation_poll_s", type=click.FloatRange(min=0.05),
              default=DEFAULT_POLL_INTERVAL_S, show_default=True,
              help="Seconds between reads of revocations made through other replicas.")
@click.option("--api-max-event-clients", type=click.IntRange(min=1), default=DEFAULT_MAX_CLIENTS, show_default=True,
              help="Most clients (GUI pages) that may follow GET /events at once; more get 503.")
@click.option("--xds-max-receive-bytes", type=click.IntRange(min=MIN_RECEIVE_BYTES),
              default=DEFAULT_MAX_RECEIVE_BYTES, show_default=True,
              help="Largest ADS request accepted (Envoy's first delta request after a reconnect lists every "
                   "resource it holds: ~60 bytes each).")
def run(store_url: str, api_address: str, api_port: int, xds_address: str, xds_port: int, debounce_s: float,
        debounce_first_s: float, max_wait_s: float, log_format: str, log_level: str, signing_key_file: Path | None,
        dataplane_auth: str, api_localhost_is_admin: bool, tls_cert_file: Path | None, tls_key_file: Path | None,
        admin_token_file: Path | None, api_allowed_hosts: tuple[str, ...], api_read_auth: str,
        revocation_poll_s: float, api_max_event_clients: int, xds_max_receive_bytes: int) -> None:
    """Run the control plane (HTTP API on 5681, ADS on 5678)."""
    configure_logging(log_format, log_level)
    hosts = tuple(h for given in api_allowed_hosts for h in given.split(",") if h.strip())
    config = RunConfig(store_url, api_address, api_port, xds_address, xds_port, debounce_s, max_wait_s,
                       signing_key_file, dataplane_auth, api_localhost_is_admin, tls_cert_file, tls_key_file,
                       admin_token_file, debounce_first_s, hosts, api_read_auth, revocation_poll_s,
                       xds_max_receive_bytes, api_max_event_clients=api_max_event_clients)
    try:
        asyncio.run(serve(config))
    except (ValueError, ControlPlaneError) as exc:  # an input, a port or the store, all found at start
        hint = f"; {ONE_OWNER_HINT}" if isinstance(exc, StoreLocked) else ""
        raise click.ClickException(f"{exc}{hint}") from None


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
    flows: SpanFlows
    ghosts: GhostWatch
    tunnels: AdminTunnels


@asynccontextmanager
async def running(config: RunConfig, observers: Sequence[ReconcilerObserver] = (),
                  on_listening: Callable[[], None] = lambda: None) -> AsyncIterator[ControlPlane]:
    """Start everything (in the order the module docstring gives), yield the handles once every proxy's
    first configuration is published, and on exit stop in order: stop accepting (HTTP, then gRPC with a
    grace period), stop producing config (cancel the reconciler), close the store. `observers` are told about
    the reconciler's passes and publishes, besides the metrics; `on_listening` runs once the ADS server
    listens. No process tuning here (runtime.py): that is `serve()`'s, through those two."""
    tls, allowed_hosts = await asyncio.to_thread(_check_inputs, config)
    metrics = Metrics()
    store = await open_store(config.store_url)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        key = await asyncio.to_thread(open_signing_key, config.store_url, config.signing_key_file)
        tokens, authenticator = await _open_security(config, key, store, metrics)
        cache, status, telemetry = SnapshotCache(), StatusRegistry(), MetricsObserver(metrics)
        live = LiveFeeds(config.api_max_event_clients)  # the GUI's change notifications
        reconciler = Reconciler(store, cache, metrics, debounce_s=config.debounce_s, max_wait_s=config.max_wait_s,
                                debounce_first_s=config.debounce_first_s, observers=(telemetry, live.reconciler, *observers))
        flows, ghosts = SpanFlows(reconciler.records, metrics), GhostWatch(status, reconciler.world, metrics)
        live.follow(flows, reconciler.records)
        tunnels = AdminTunnels(authenticator)
        metrics.registry.register(SpanFlowCollector(flows, reconciler.records))
        grpc_server, xds_port = await _start_ads(config, cache, CompositeObserver((telemetry, live.streams)), status,
                                                 authenticator, tls, (StatsSink(flows, authenticator), tunnels))
        stack.push_async_callback(grpc_server.stop, GRACE_S)  # idempotent: on the normal path it ran already
        on_listening()
        bound: list[ApiServer] = []  # the API's port is known once it listens; /config answers after that
        app = build_api_app(config, store, metrics, XdsInspector(reconciler, cache, status, flows, ghosts, tunnels),
                            tokens, allowed_hosts, live.hub, lambda: None if reconciler.ready.is_set() else NOT_READY,
                            lambda: config_view(config, bound[0].port if bound else config.api_port, xds_port))
        api = await start_api(app, config, tls)
        bound.append(api)
        stack.push_async_callback(api.close)  # idempotent too: a start-up failure after this still closes it
        async with asyncio.TaskGroup() as tasks:
            reconciling = tasks.create_task(reconciler.run(), name="reconciler")
            upkeep = [tasks.create_task(sample_loop_lag(metrics.loop_lag_seconds), name="loop-lag"),
                      tasks.create_task(tokens.revocations.run(config.revocation_poll_s), name="revocations"),
                      tasks.create_task(ghosts.run(), name="ghosts"),
                      tasks.create_task(live.run(store), name="events")]
            try:
                await reconciler.ready.wait()
                yield ControlPlane(store, cache, reconciler, status, metrics, api.port, xds_port, tokens, flows,
                                   ghosts, tunnels)
            finally:
                await api.close()
                await grpc_server.stop(GRACE_S)
                reconciling.cancel()
                for task in upkeep:
                    task.cancel()


async def _open_security(config: RunConfig, key: SigningKey, store: Store,
                         metrics: Metrics) -> tuple[Tokens, Authenticator | None]:
    """Tokens over the store's revocations, the admin token file, and the ADS authenticator."""
    tokens = await open_tokens(key, store, config.store_url, config.signing_key_file)
    if config.admin_token_file is not None:
        _write_admin_token(tokens, config.admin_token_file)
    if config.dataplane_auth == "token":
        return tokens, TokenAuthenticator(tokens, metrics.xds_auth_failures)
    return tokens, None


def _check_inputs(config: RunConfig) -> tuple[ServerTls | None, AllowedHosts]:
    """Every input, with reads only: a failure here leaves nothing behind (ValueError / StartupError /
    StoreUnavailable, each one line naming the file or port)."""
    allowed_hosts = AllowedHosts.for_api(config.api_host, config.api_allowed_hosts)
    check_store_url(config.store_url)
    check_signing_key(config.store_url, config.signing_key_file)
    if config.admin_token_file is not None:
        check_directory_of(config.admin_token_file, "--admin-token-file")
    tls = load_server_tls(config.tls_cert_file, config.tls_key_file)
    check_port_free(config.api_host, config.api_port, "HTTP API", "--api-port")
    check_port_free(config.xds_host, config.xds_port, "ADS server", "--xds-port")
    check_distinct_listeners((config.api_host, config.api_port, "--api-port"),
                             (config.xds_host, config.xds_port, "--xds-port"))
    return tls, allowed_hosts


def _write_admin_token(tokens: Tokens, path: Path) -> None:
    try:
        write_admin_token(tokens, path)
    except OSError as exc:
        raise StartupError(f"--admin-token-file {path}: {exc.strerror or exc}") from None


async def _start_ads(config: RunConfig, cache: SnapshotCache, telemetry: StreamObserver, status: StatusRegistry,
                     authenticator: Authenticator | None, tls: ServerTls | None,
                     services: Sequence[StatsSink | AdminTunnels] = ()) -> tuple[grpc.aio.Server, int]:
    try:
        return await start_ads_server(cache, config.xds_host, config.xds_port, telemetry, status=status,
                                      authenticator=authenticator, credentials=tls.grpc_credentials if tls else None,
                                      options=server_options(max_receive_bytes=config.xds_max_receive_bytes,
                                                             max_connections=config.xds_max_connections),
                                      services=[service.register for service in services])
    except RuntimeError as exc:  # grpc's "Failed to bind to address ...": the port was taken since the check
        reason = bind_problem(config.xds_host, config.xds_port) or str(exc)
        raise StartupError(port_unavailable("ADS server", config.xds_host, config.xds_port, "--xds-port",
                                            reason)) from None


async def serve(config: RunConfig) -> None:
    """Run until SIGINT/SIGTERM; a failing component ends the process with an error.

    A signal before the control plane is ready (the first load of a large store takes a while) cancels
    the start-up, which unwinds through the same ordered shutdown; after that it stops it gracefully.
    The process edge: the only place that tunes the interpreter (controlplane/runtime.py).
    """
    stop = asyncio.Event()
    main = asyncio.current_task()
    assert main is not None
    started = aborted = False

    def on_signal() -> None:
        nonlocal aborted
        if started:
            stop.set()
        elif not aborted:
            aborted = True
            log.info("control_plane_stopping", during="start-up")
            main.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    tune_process()
    open_files = raise_open_files_limit()
    config = _with_connection_budget(config, open_files.soft)
    keeper = MemoryKeeper()
    try:
        async with running(config, observers=(keeper,), on_listening=tune_running_loop) as plane:
            started = True
            upkeep = asyncio.create_task(keeper.run(plane.status.stream_count), name="memory-keeper")
            log.info("control_plane_started", store=_redact(config.store_url), pid=os.getpid(),
                     api_port=plane.api_port, xds_port=plane.xds_port)
            # Logged only now: a start-up failure must stay one line on stderr.
            open_files.log()
            log.info("connection_limits", xds_max_connections=config.xds_max_connections,
                     api_max_connections=config.api_max_connections,
                     xds_max_receive_bytes=config.xds_max_receive_bytes)
            try:
                await stop.wait()
            finally:
                upkeep.cancel()
                await asyncio.gather(upkeep, return_exceptions=True)
            log.info("control_plane_stopping")
    except asyncio.CancelledError:
        if not aborted:
            raise
        main.uncancel()  # our own cancellation, asked for by the signal: a clean exit


def _with_connection_budget(config: RunConfig, open_files: int) -> RunConfig:
    """Process edge: bound each listener's connections from the (raised) descriptor limit."""
    budget = connection_budget(open_files)
    config = dataclasses.replace(
        config,
        xds_max_connections=config.xds_max_connections or budget.ads,
        api_max_connections=config.api_max_connections or budget.api,
    )
    return config


def _redact(url: str) -> str:
    """Never log database passwords."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
