"""The HTTP API of `controlplane run`: the application with its auth, identity and live events, and its
listener (bounded connections, TLS), whose failure to bind is one start-up error line naming the port.

Split from run.py, which owns the order of start-up and shutdown; this module only builds and starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from controlplane.api.app import create_app
from controlplane.api.events import EventHub
from controlplane.api.keys import ApiAuth, Readiness
from controlplane.api.listener import ApiServer, api_runner, start_api_server
from controlplane.api.meta import GUI_PATH, ServerInfo
from controlplane.api.origin import AllowedHosts
from controlplane.api.sse import LiveEvents
from controlplane.auth.tokens import Tokens
from controlplane.cli.config_view import cluster_id
from controlplane.cli.security import ServerTls
from controlplane.cli.startup import StartupError, port_unavailable
from controlplane.observability import Metrics
from controlplane.store.base import Store
from controlplane.xds.inspect import XdsInspector

if TYPE_CHECKING:
    from controlplane.cli.run import RunConfig

log = structlog.get_logger(__name__)


def build_api_app(config: RunConfig, store: Store, metrics: Metrics, inspector: XdsInspector, tokens: Tokens,
                  allowed_hosts: AllowedHosts, live: EventHub, readiness: Readiness,
                  effective_config: Callable[[], Mapping[str, object]]) -> web.Application:
    auth = ApiAuth(tokens, config.api_localhost_is_admin, config.dataplane_reads)
    info = ServerInfo(cluster_id=cluster_id(config.store_url), config=effective_config)
    return create_app(store, metrics, inspector, auth=auth, allowed_hosts=allowed_hosts, info=info,
                      events=LiveEvents(live), readiness=readiness)


async def start_api(app: web.Application, config: RunConfig, tls: ServerTls | None) -> ApiServer:
    try:
        api = await start_api_server(api_runner(app), config.api_host, config.api_port,
                                     ssl_context=tls.ssl_context if tls else None,
                                     max_connections=config.api_max_connections)
    except OSError as exc:  # taken since the check (or the ADS server took it: same port for both)
        reason = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio words it "error while ..."
        raise StartupError(port_unavailable("HTTP API", config.api_host, config.api_port, "--api-port",
                                            reason)) from None
    scheme = "https" if tls else "http"
    log.info("api_listening", address=config.api_host, port=api.port, url=f"{scheme}://{config.api_host}:{api.port}",
             localhost_is_admin=config.api_localhost_is_admin, dataplane_auth=config.dataplane_auth)
    log.info("gui_available", url=gui_url(scheme, config.api_host, api.port))
    return api


def gui_url(scheme: str, host: str, port: int) -> str:
    """The GUI's URL for a browser on this machine (a wildcard bind address is reached on loopback)."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
    netloc = f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"
    return f"{scheme}://{netloc}{GUI_PATH}/"
