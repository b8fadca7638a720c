"""Per-dataplane inspection reads under `--dataplane-auth token` / `--api-read-auth` (issue 11 §3).

A whole control plane in-process (`running`, memory store, ports 0) with localhost NOT admin, so this test's
loopback requests count as remote. ADS gives web-2's config only to web-2's token; the inspection routes
below a dataplane (`/xds`, `/policies`) must do the same: an admin token or that dataplane's own, 401
without a valid token, 403 with another dataplane's. Everything else stays open to reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from controlplane.cli.run import ControlPlane, RunConfig, running

HOUR = timedelta(hours=1)
DEADLINE_S = 10.0
MESH = "default"
INSPECTION = ["/meshes/default/dataplanes/web-2/xds", "/meshes/default/dataplanes/web-2/policies"]


def dataplane(name: str, port: int) -> dict[str, Any]:
    tags = {"kuma.io/service": name, "kuma.io/protocol": "http"}
    return {"type": "Dataplane", "mesh": MESH, "name": name,
            "networking": {"address": "127.0.0.1", "inbound": [{"port": port, "servicePort": port + 1000,
                                                                "tags": tags}]}}


@asynccontextmanager
async def plane(**overrides: Any) -> AsyncIterator[tuple[ControlPlane, aiohttp.ClientSession, str]]:
    settings: dict[str, Any] = {"dataplane_auth": "token", "api_localhost_is_admin": False, **overrides}
    config = RunConfig(store_url="memory", api_host="127.0.0.1", api_port=0, xds_host="127.0.0.1", xds_port=0,
                       debounce_s=0.01, max_wait_s=0.1, **settings)
    async with running(config) as cp, aiohttp.ClientSession() as session:
        base = f"http://127.0.0.1:{cp.api_port}"
        admin = {"Authorization": f"Bearer {cp.tokens.issue_admin(HOUR)}"}
        for path, doc in [("/meshes/default", {"type": "Mesh", "name": MESH}),
                          ("/meshes/default/dataplanes/web-1", dataplane("web-1", 20001)),
                          ("/meshes/default/dataplanes/web-2", dataplane("web-2", 20002))]:
            async with session.put(base + path, json=doc, headers=admin) as response:
                assert response.status == 201, await response.text()
        async with asyncio.timeout(DEADLINE_S):  # until the reconciler has seen both dataplanes
            for path in INSPECTION:
                while (await get(session, base + path, admin["Authorization"].split()[1]))[0] != 200:
                    await asyncio.sleep(0.01)
        yield cp, session, base


async def get(session: aiohttp.ClientSession, url: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.get(url, headers=headers) as response:
        return response.status, await response.json()


@pytest.fixture
async def protected() -> AsyncIterator[tuple[ControlPlane, aiohttp.ClientSession, str]]:
    async with plane() as served:
        yield served


@pytest.mark.parametrize("path", INSPECTION, ids=["xds", "policies"])
async def test_inspection_needs_admin_or_the_dataplanes_own_token(
    protected: tuple[ControlPlane, aiohttp.ClientSession, str], path: str
) -> None:
    cp, session, base = protected
    web1, web2 = (cp.tokens.issue_dataplane(MESH, name, HOUR) for name in ("web-1", "web-2"))
    other_mesh = cp.tokens.issue_dataplane("other", "web-2", HOUR)
    status, body = await get(session, base + path, None)
    assert (status, body["title"]) == (401, "Unauthenticated")
    assert "an admin token or the dataplane's own token" in body["details"]
    assert (await get(session, base + path, "garbage"))[0] == 401
    for foreign in (web1, other_mesh):
        status, body = await get(session, base + path, foreign)
        assert (status, body["title"]) == (403, "Access Denied"), body
        assert "dataplane 'web-2' in mesh 'default' needs an admin token or its own" in body["details"]
    assert (await get(session, base + path, web2))[0] == 200
    assert (await get(session, base + path, cp.tokens.issue_admin(HOUR)))[0] == 200
    failures = cp.metrics.registry.get_sample_value
    assert failures("api_auth_failures_total", {"reason": "wrong_dataplane"}) == 2


async def test_a_revoked_dataplane_token_cannot_read_its_config(
    protected: tuple[ControlPlane, aiohttp.ClientSession, str]
) -> None:
    cp, session, base = protected
    token = cp.tokens.issue_dataplane(MESH, "web-2", HOUR)
    await cp.tokens.revocations.revoke((await cp.tokens.verify(token)).token_id)
    status, body = await get(session, base + INSPECTION[0], token)
    assert status == 401 and "revoked" in body["details"]


async def test_other_reads_stay_open(protected: tuple[ControlPlane, aiohttp.ClientSession, str]) -> None:
    _, session, base = protected
    for path in ["/meshes", "/meshes/default/dataplanes", "/meshes/default/dataplanes/web-2", "/dataplanes",
                 "/ready"]:
        assert (await get(session, base + path, None))[0] == 200, path


@pytest.mark.parametrize(("overrides", "protected_reads"), [
    ({"api_read_auth": "open"}, False),
    ({"dataplane_auth": "none"}, False),  # auto: follows --dataplane-auth
    ({"dataplane_auth": "none", "api_read_auth": "dataplane"}, True),
], ids=["open-with-token-auth", "auto-without-token-auth", "dataplane-without-token-auth"])
async def test_api_read_auth_modes(overrides: dict[str, Any], protected_reads: bool) -> None:
    async with plane(**overrides) as (_, session, base):
        assert (await get(session, base + INSPECTION[0], None))[0] == (401 if protected_reads else 200)


async def test_localhost_is_admin_reads_from_loopback() -> None:
    async with plane(api_localhost_is_admin=True) as (_, session, base):
        assert (await get(session, base + INSPECTION[0], None))[0] == 200
