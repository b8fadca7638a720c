"""The Envoy admin tunnel end to end over real gRPC: the runner's `TunnelClient` against the control plane's
`AdminTunnels`, a fake Envoy admin behind it. Read-only (three fixed GETs, nothing else ever reaches the
admin), the token in the dump redacted, large answers chunked, and the tunnel authenticated like ADS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web

from controlplane.auth.keys import generate_signing_key
from controlplane.auth.revocation import RevocationList
from controlplane.auth.tokens import Tokens
from controlplane.dataplane.admin_tunnel import REDACTED, TunnelClient
from controlplane.demo.serving import LocalServer
from controlplane.observability import Metrics
from controlplane.resources.generated import admin_tunnel_pb2
from controlplane.store.memory import MemoryStore
from controlplane.xds.admin_tunnel import AdminTunnels, TunnelUnavailable
from controlplane.xds.authn import TokenAuthenticator
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import start_ads_server

HOUR = timedelta(hours=1)
NODE = "default.web-1"
DUMP = {"configs": [{"bootstrap": {"dynamic_resources": {"ads_config": {"grpc_services": [
    {"envoy_grpc": {"cluster_name": "ads_cluster"}, "initial_metadata": [{"key": "authorization", "value": "Bearer s3cret"}]}]}}}}]}
BIG_STATS = "".join(f"cluster.c{i}.upstream_rq_total: {i}\n" for i in range(60_000))  # ≈ 2 MB: several chunks


class FakeAdmin:
    """What Envoy's admin would answer; every path asked for is recorded."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.asked.append(request.path_qs)
        if request.path == "/config_dump":
            return web.json_response(DUMP)
        if request.path == "/stats":
            return web.Response(text=BIG_STATS)
        if request.path == "/clusters":
            return web.Response(text="tracing:jaeger::observability_name::tracing_jaeger\n")
        return web.Response(status=404)


class Tunnel:
    def __init__(self, tunnels: AdminTunnels, port: int, tokens: Tokens, admin: FakeAdmin, admin_url: str) -> None:
        self.tunnels, self.port, self.tokens, self.admin, self.admin_url = tunnels, port, tokens, admin, admin_url

    def client(self, token_for: str) -> TunnelClient:
        return TunnelClient(f"127.0.0.1:{self.port}", NODE, self.admin_url,
                            self.tokens.issue_dataplane("default", token_for, HOUR))


@pytest.fixture
async def tunnel() -> AsyncIterator[Tunnel]:
    metrics = Metrics()
    tokens = Tokens(generate_signing_key(), RevocationList(MemoryStore()))
    tunnels = AdminTunnels(TokenAuthenticator(tokens, metrics.xds_auth_failures))
    server, port = await start_ads_server(SnapshotCache(), "127.0.0.1", 0, services=[tunnels.register])
    admin = FakeAdmin()
    listening = LocalServer("127.0.0.1", 0)
    admin_port = await listening.start(admin.app())
    try:
        yield Tunnel(tunnels, port, tokens, admin, f"http://127.0.0.1:{admin_port}")
    finally:
        await listening.stop()
        await server.stop(0)


async def until(predicate: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_the_three_views_come_from_the_runners_admin_with_the_token_redacted(tunnel: Tunnel) -> None:
    client = tunnel.client("web-1")
    running = asyncio.create_task(client.run())
    try:
        await until(lambda: tunnel.tunnels.connected(NODE))
        dump = await tunnel.tunnels.fetch(NODE, "config-dump")
        assert (dump.status, dump.content_type) == (200, "application/json")
        services = json.loads(dump.body)["configs"][0]["bootstrap"]["dynamic_resources"]["ads_config"]["grpc_services"]
        assert services[0]["initial_metadata"] == [{"key": "authorization", "value": REDACTED}]
        assert b"s3cret" not in dump.body
        stats = await tunnel.tunnels.fetch(NODE, "stats")
        assert stats.body.decode() == BIG_STATS
        clusters = await tunnel.tunnels.fetch(NODE, "clusters")
        assert clusters.body == b"tracing:jaeger::observability_name::tracing_jaeger\n"
        # Whatever the control plane sends, only the three fixed GETs ever reach the admin.
        (only,) = tunnel.tunnels._tunnels.values()
        only.outgoing.put_nowait(admin_tunnel_pb2.TunnelDown(request=admin_tunnel_pb2.AdminRequest(id=999, view=7)))
        await tunnel.tunnels.fetch(NODE, "clusters")
        assert tunnel.admin.asked == ["/config_dump?include_eds", "/stats", "/clusters", "/clusters"]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    await until(lambda: not tunnel.tunnels.connected(NODE))
    with pytest.raises(TunnelUnavailable, match="no runner serves the Envoy of default.web-1"):
        await tunnel.tunnels.fetch(NODE, "stats")


async def test_a_runner_with_another_dataplanes_token_gets_no_tunnel(tunnel: Tunnel) -> None:
    client = tunnel.client("intruder")
    running = asyncio.create_task(client.run())
    try:
        await until(lambda: client.last_error is not None)
        assert client.last_error is not None and client.last_error.startswith("PERMISSION_DENIED: dataplane token rejected")
        assert not tunnel.tunnels.connected(NODE)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert tunnel.admin.asked == []
