"""API authentication (issue 7, item 5) through a real server on 127.0.0.1 with localhost-is-admin off.

Writes need an admin token: none, garbage, expired, foreign-key or revoked → 401; a valid dataplane token →
403; Kuma-shaped bodies; nothing written. Reads stay open. The token routes need an admin too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import jwt
import pytest
from aiohttp import web
from api_helpers import Api, Reply

from controlplane.api.app import create_app
from controlplane.api.keys import ApiAuth
from controlplane.auth.keys import generate_signing_key
from controlplane.auth.revocation import RevocationList
from controlplane.auth.tokens import ISSUER, TokenError, Tokens
from controlplane.errors import StoreUnavailable
from controlplane.observability import Metrics
from controlplane.store.memory import MemoryStore
from controlplane.store.sqlite import SqliteStore

HOUR = timedelta(hours=1)
KEY = generate_signing_key()
MESH = {"type": "Mesh", "name": "default"}


class AuthApi(Api):
    tokens: Tokens
    metrics: Metrics

    async def call(self, method: str, path: str, body: object = None, token: str | None = None) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.base + path, json=body, headers=headers) as resp:
            text = await resp.text()
            try:
                parsed: object = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return Reply(resp.status, parsed)


async def _serve(localhost_is_admin: bool) -> AsyncIterator[AuthApi]:
    store, metrics = MemoryStore(), Metrics()
    tokens = Tokens(KEY, RevocationList(None))
    app = create_app(store, metrics, auth=ApiAuth(tokens, localhost_is_admin))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            api = AuthApi(f"http://{host}:{port}", store, session)
            api.tokens, api.metrics = tokens, metrics
            yield api
    finally:
        await runner.cleanup()
        await store.close()


@pytest.fixture
async def api() -> AsyncIterator[AuthApi]:
    async for served in _serve(localhost_is_admin=False):
        yield served


def expired_admin_token() -> str:
    past = datetime.now(UTC) - timedelta(hours=3)
    claims = {"iss": ISSUER, "sub": "admin", "iat": past, "exp": past + HOUR, "jti": "2" * 32}
    return jwt.encode(claims, KEY.private_key, algorithm="RS256")


BAD_TOKENS = {
    "missing": lambda api: None,
    "garbage": lambda api: "garbage",
    "expired": lambda api: expired_admin_token(),
    "other-key": lambda api: Tokens(generate_signing_key(), RevocationList(None)).issue_admin(HOUR),
}


def assert_kuma_body(reply: Reply, status: int, title: str) -> None:
    assert reply.status == status, reply
    assert isinstance(reply.body, dict) and reply.body["title"] == title and reply.body["details"], reply.body


@pytest.mark.parametrize("case", list(BAD_TOKENS), ids=list(BAD_TOKENS))
@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "/meshes/default", MESH),
    ("DELETE", "/meshes/default", None),
    ("POST", "/tokens/dataplane", {"mesh": "default", "name": "web-1"}),
    ("POST", "/tokens/admin", {}),
    ("POST", "/tokens/revocations", {"id": "3" * 32}),
], ids=["put", "delete", "dataplane-token", "admin-token", "revoke"])
async def test_writes_without_a_valid_admin_token_are_401_and_write_nothing(
    api: AuthApi, case: str, method: str, path: str, body: object
) -> None:
    before = await api.snapshot()
    reply = await api.call(method, path, body, BAD_TOKENS[case](api))
    assert_kuma_body(reply, 401, "Unauthenticated")
    assert await api.snapshot() == before
    assert not await api.tokens.revocations.is_revoked("3" * 32)


async def test_dataplane_token_is_403(api: AuthApi) -> None:
    reply = await api.call("PUT", "/meshes/default", MESH, api.tokens.issue_dataplane("default", "web-1", HOUR))
    assert_kuma_body(reply, 403, "Access Denied")
    assert (await api.snapshot())["Mesh"] == []
    assert api.metrics.registry.get_sample_value("api_auth_failures_total", {"reason": "not_admin"}) == 1


async def test_revoked_admin_token_is_401(api: AuthApi) -> None:
    token = api.tokens.issue_admin(HOUR)
    assert (await api.call("PUT", "/meshes/default", MESH, token)).status == 201
    token_id = (await api.tokens.verify(token)).token_id
    assert (await api.call("POST", "/tokens/revocations", {"id": token_id}, token)).status == 200
    reply = await api.call("DELETE", "/meshes/default", None, token)
    assert_kuma_body(reply, 401, "Unauthenticated")
    assert "revoked" in reply.body["details"]  # type: ignore[index]
    assert len((await api.snapshot())["Mesh"]) == 1


async def test_admin_token_writes_and_reads_stay_open(api: AuthApi) -> None:
    admin = api.tokens.issue_admin(HOUR)
    assert (await api.call("PUT", "/meshes/default", MESH, admin)).status == 201
    assert (await api.call("GET", "/meshes/default")).status == 200
    assert (await api.call("GET", "/meshes")).body["total"] == 1  # type: ignore[index]
    assert (await api.call("GET", "/metrics")).status == 200
    assert (await api.call("DELETE", "/meshes/default", None, admin)).status == 200


async def test_admin_issues_tokens_that_verify(api: AuthApi) -> None:
    admin = api.tokens.issue_admin(HOUR)
    reply = await api.call("POST", "/tokens/dataplane", {"mesh": "default", "name": "web-1", "validFor": "2h"}, admin)
    assert reply.status == 200 and isinstance(reply.body, str)
    claims = await api.tokens.verify(reply.body)
    assert (claims.subject, claims.mesh, claims.name) == ("dataplane", "default", "web-1")
    assert timedelta(minutes=119) < claims.expires_at - datetime.now(UTC) <= timedelta(hours=2)
    reply = await api.call("POST", "/tokens/admin", {"validFor": "10m"}, admin)
    assert (await api.tokens.verify(str(reply.body))).subject == "admin"


@pytest.mark.parametrize(("body", "fields"), [
    ({"mesh": "Default", "name": "web-1"}, ["mesh"]),
    ({"mesh": "default"}, ["name"]),
    ({"mesh": "default", "name": "x", "validFor": "forever"}, ["validFor"]),
    ({"mesh": "a.b", "name": "x/y", "validFor": 3}, ["mesh", "name", "validFor"]),
    ({"mesh": "default", "name": "x", "validFor": "99999999999999999999d"}, ["validFor"]),
], ids=["mesh-chars", "no-name", "bad-duration", "everything", "duration-overflow"])
async def test_token_request_validation(api: AuthApi, body: dict[str, object], fields: list[str]) -> None:
    reply = await api.call("POST", "/tokens/dataplane", body, api.tokens.issue_admin(HOUR))
    assert_kuma_body(reply, 400, "Could not issue a token")
    assert [c["field"] for c in reply.body["causes"]] == fields  # type: ignore[index]


async def test_revocation_needs_a_token_id(api: AuthApi) -> None:
    reply = await api.call("POST", "/tokens/revocations", {"id": "../etc"}, api.tokens.issue_admin(HOUR))
    assert_kuma_body(reply, 400, "Could not revoke a token")
    assert reply.body["causes"][0]["field"] == "id"  # type: ignore[index]


async def test_localhost_is_admin_by_default() -> None:
    async for api in _serve(localhost_is_admin=True):
        assert (await api.call("PUT", "/meshes/default", MESH)).status == 201
        assert (await api.call("POST", "/tokens/admin", {})).status == 200


async def test_revoking_twice_says_so(api: AuthApi) -> None:
    admin = api.tokens.issue_admin(HOUR)
    first = await api.call("POST", "/tokens/revocations", {"id": "4" * 32}, admin)
    again = await api.call("POST", "/tokens/revocations", {"id": "4" * 32}, admin)
    assert (first, again) == (Reply(200, {"revoked": "4" * 32, "alreadyRevoked": False}),
                              Reply(200, {"revoked": "4" * 32, "alreadyRevoked": True}))


async def test_a_revocation_the_store_cannot_write_is_503_and_not_claimed(tmp_path: Path) -> None:
    """A full disk (SQLITE_FULL, forced with max_page_count): the API must not answer success, the token
    must stay as it was, and once there is space again the same revocation is stored whole."""
    store = await SqliteStore.open(tmp_path / "cp.db")
    tokens = Tokens(KEY, RevocationList(store))
    runner = web.AppRunner(create_app(store, Metrics(), auth=ApiAuth(tokens, localhost_is_admin=True)),
                           access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    victim = tokens.issue_dataplane("default", "web-1", HOUR)
    victim_id = (await tokens.verify(victim)).token_id
    try:
        pages = await store._run(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
        await store._run(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}"))
        with pytest.raises(StoreUnavailable):
            for n in range(5000):  # fill the last page
                await store.revoke_token(f"{n:032x}")
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/tokens/revocations", json={"id": victim_id}) as response:
                assert response.status == 503, await response.text()
                body = await response.json()
            assert body["title"] == "Store unavailable" and "full" in body["details"]
            assert (await tokens.verify(victim)).token_id == victim_id  # not claimed revoked
            await store._run(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))
            async with session.post(f"{base}/tokens/revocations", json={"id": victim_id}) as response:
                assert (response.status, await response.json()) == (200, {"revoked": victim_id,
                                                                          "alreadyRevoked": False})
        with pytest.raises(TokenError, match="revoked"):
            await tokens.verify(victim)
    finally:
        await runner.cleanup()
        await store.close()
