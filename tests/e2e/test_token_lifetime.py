"""A real Envoy's ADS stream does not outlive its dataplane token (issue 11 §3, "expiry and revocation on open
streams").

- A token that expires while Envoy is connected: the control plane closes the stream at the token's `exp`,
  Envoy's reconnects are refused (expired), and Envoy keeps serving its last config.
- Two replicas on one PostgreSQL (`running()`, as `controlplane run` does): Envoy is connected to B, the
  token is revoked through A's API; B learns it by polling the shared table (`--revocation-poll-interval`)
  and closes the stream, and Envoy's reconnects to B are refused (revoked). The delay is printed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from postgres_fixture import create_database
from postgres_server import PostgresServer

from controlplane.cli.run import ControlPlane, RunConfig, running
from controlplane.dataplane.bootstrap import ReconnectBackoff, build_bootstrap

from .support.envoy import EnvoyProcess, run_envoy
from .support.plane import HOST, MESH, Api
from .support.upstream import UpstreamApp
from .support.waiting import eventually, free_port

pytestmark = pytest.mark.e2e

FAST_RETRY = ReconnectBackoff(base_s=0.1, max_s=0.5)
POLL_S = 0.2


def failures(plane: ControlPlane, reason: str) -> float:
    return plane.metrics.registry.get_sample_value("xds_auth_failures_total", {"reason": reason}) or 0.0


def dataplane(inbound: int, app_port: int) -> dict[str, Any]:
    tags = {"kuma.io/service": "web", "kuma.io/protocol": "http"}
    return {"type": "Dataplane", "mesh": MESH, "name": "web-1",
            "networking": {"address": HOST, "inbound": [{"port": inbound, "servicePort": app_port, "tags": tags}]}}


@asynccontextmanager
async def control_plane(store_url: str, key_file: Path) -> AsyncIterator[tuple[ControlPlane, Api]]:
    config = RunConfig(store_url=store_url, api_host=HOST, api_port=0, xds_host=HOST, xds_port=0, debounce_s=0.02,
                       max_wait_s=0.2, signing_key_file=key_file, dataplane_auth="token",
                       revocation_poll_s=POLL_S)
    async with running(config) as plane, aiohttp.ClientSession() as http:
        yield plane, Api(f"http://{HOST}:{plane.api_port}", http)


async def connect_envoy(stack: AsyncExitStack, plane: ControlPlane, token: str, workdir: Path) -> EnvoyProcess:
    bootstrap = build_bootstrap(node_id=f"{MESH}.web-1", service="web", cp_host=HOST, cp_port=plane.xds_port,
                                token=token, reconnect_backoff=FAST_RETRY)
    workdir.mkdir()
    envoy = await stack.enter_async_context(run_envoy(bootstrap, workdir=workdir))
    await eventually(lambda: _connected(envoy, 1), timeout=15, message="Envoy never connected")
    return envoy


async def _connected(envoy: EnvoyProcess, state: int) -> bool:
    stats = await envoy.stats(r"^control_plane\.connected_state$")
    return stats.get("control_plane.connected_state") == state


async def serves(inbound: int) -> bool:
    async with aiohttp.ClientSession() as http, http.get(f"http://{HOST}:{inbound}/") as response:
        return response.status == 200


async def test_stream_closes_when_the_token_expires_and_envoy_keeps_its_config(tmp_path: Path) -> None:
    async with control_plane("memory", tmp_path / "key.pem") as (plane, api), AsyncExitStack() as stack:
        app = await stack.enter_async_context(UpstreamApp("web"))
        inbound = free_port()
        await api.apply({"type": "Mesh", "name": MESH}, dataplane(inbound, app.port))
        token = plane.tokens.issue_dataplane(MESH, "web-1", timedelta(seconds=4))
        expires = (await plane.tokens.verify(token)).expires_at
        envoy = await connect_envoy(stack, plane, token, tmp_path / "envoy")
        await eventually(lambda: serves(inbound), timeout=15, message="no traffic through the sidecar")
        await eventually(lambda: failures(plane, "expired") >= 2, timeout=20,
                         message="the stream was not closed at expiry, or Envoy's reconnect was not refused")
        assert datetime.now(UTC) >= expires
        assert await _connected(envoy, 0)
        assert f"{MESH}.web-1" not in plane.status.connected_nodes()
        assert await serves(inbound)  # Envoy keeps the last config it had
        assert plane.tokens.revocations.watcher_count == 0


async def test_revocation_through_another_replica_closes_the_stream(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = await create_database(postgres_server)
    key = tmp_path / "key.pem"
    async with (
        control_plane(url, key) as (a, a_api),
        control_plane(url, key) as (b, b_api),
        AsyncExitStack() as stack,
    ):
        await a_api.apply({"type": "Mesh", "name": MESH}, dataplane(free_port(), free_port()))
        token = a.tokens.issue_dataplane(MESH, "web-1", timedelta(hours=1))
        envoy = await connect_envoy(stack, b, token, tmp_path / "envoy")
        token_id = (await b.tokens.verify(token)).token_id
        started = time.perf_counter()
        status, body = await a_api.request("POST", "/tokens/revocations", {"id": token_id})
        assert (status, body) == (200, {"revoked": token_id, "alreadyRevoked": False})
        await eventually(lambda: failures(b, "revoked") >= 1, timeout=10, interval=0.01,
                         message="replica B never closed the stream of the token revoked through A")
        closed_after = time.perf_counter() - started
        print(f"\nrevocation through A closed the stream on B after {closed_after * 1000:.0f} ms "
              f"(poll interval {POLL_S * 1000:.0f} ms)")
        await eventually(lambda: failures(b, "revoked") >= 2, timeout=10,
                         message="Envoy's reconnect to B was not refused")
        assert await _connected(envoy, 0)
        status, body = await b_api.request("POST", "/tokens/revocations", {"id": token_id})
        assert body == {"revoked": token_id, "alreadyRevoked": True}  # one table for both replicas
