"""Dataplane authentication and TLS on the ADS server, with a raw gRPC client (issue 7, items 4 and 6;
issue 11 §2 "authenticate from metadata before the request body is kept", §3 "expiry and revocation on open
streams").

The server runs with `TokenAuthenticator` (what `controlplane run --dataplane-auth token` installs). A stream
presents its token as gRPC initial metadata `authorization: Bearer <token>`, exactly as Envoy's
`initial_metadata` does; the status code, its message and the failure metric are checked for each refusal.
Streams that were accepted are closed when their token expires (short-lived tokens, waiting on the stream's
end with a deadline) or is revoked, here or through another replica sharing the store (the poller).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import jwt
import pytest
from ads_test_client import AdsClient, StreamEnded
from tls_certs import make_certs
from xds_resources import CDS, NODE, snapshot

from controlplane.auth.keys import generate_signing_key
from controlplane.auth.revocation import RevocationList
from controlplane.auth.tokens import ISSUER, Tokens
from controlplane.observability import Metrics
from controlplane.store.memory import MemoryStore
from controlplane.xds.authn import TokenAuthenticator
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import start_ads_server

HOUR = timedelta(hours=1)
MESH, NAME = NODE.split(".", 1)


class Plane:
    def __init__(self, port: int, tokens: Tokens, metrics: Metrics, store: MemoryStore) -> None:
        self.port, self.tokens, self.metrics, self.store = port, tokens, metrics, store

    def failures(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value("xds_auth_failures_total", {"reason": reason})
        return value or 0.0


@pytest.fixture
async def plane(cache: SnapshotCache) -> AsyncIterator[Plane]:
    store, metrics = MemoryStore(), Metrics()
    tokens = Tokens(generate_signing_key(), RevocationList(store))
    cache.set_snapshot(NODE, snapshot(clusters=["c1"]))
    server, port = await start_ads_server(
        cache, "127.0.0.1", 0, authenticator=TokenAuthenticator(tokens, metrics.xds_auth_failures)
    )
    try:
        yield Plane(port, tokens, metrics, store)
    finally:
        await server.stop(0)


async def open_stream(port: int, token: str | None, node: str = NODE, *, delta: bool = False,
                      header: str | None = None) -> tuple[grpc.aio.Channel, AdsClient]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    value = header if header is not None else (f"Bearer {token}" if token is not None else None)
    metadata = (("authorization", value),) if value is not None else None
    ads = AdsClient(channel, node, delta=delta, metadata=metadata)
    # A refusal from the metadata can end the call before this first write; the reader still reports it.
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
        if delta:
            await ads.delta_request(CDS)
        else:
            await ads.request(CDS)
    return channel, ads


async def refused(plane: Plane, token: str | None, node: str = NODE, **kwargs: object) -> StreamEnded:
    channel, ads = await open_stream(plane.port, token, node, **kwargs)  # type: ignore[arg-type]
    try:
        with pytest.raises(StreamEnded) as caught:
            await ads.recv()
        return caught.value
    finally:
        await ads.close()
        await channel.close()


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_valid_token_gets_config(plane: Plane, delta: bool) -> None:
    channel, ads = await open_stream(plane.port, plane.tokens.issue_dataplane(MESH, NAME, HOUR), delta=delta)
    try:
        response = await ads.recv()
        assert response.type_url == CDS
    finally:
        await ads.close()
        await channel.close()


async def test_missing_token_is_unauthenticated(plane: Plane) -> None:
    ended = await refused(plane, None)
    assert ended.code == grpc.StatusCode.UNAUTHENTICATED
    assert ended.details.startswith("dataplane token rejected: no token: send gRPC metadata"), ended.details
    assert plane.failures("missing") == 1


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer not.a.jwt"], ids=["basic", "empty", "garbage"])
async def test_unusable_authorization_is_unauthenticated(plane: Plane, header: str) -> None:
    ended = await refused(plane, None, header=header)
    assert ended.code == grpc.StatusCode.UNAUTHENTICATED


async def test_expired_token_is_unauthenticated(plane: Plane) -> None:
    past = datetime.now(UTC) - timedelta(hours=2)
    claims = {"iss": ISSUER, "sub": "dataplane", "iat": past, "exp": past + HOUR, "jti": "1" * 32,
              "mesh": MESH, "name": NAME}
    token = jwt.encode(claims, plane.tokens._key.private_key, algorithm="RS256")
    ended = await refused(plane, token)
    assert (ended.code, plane.failures("expired")) == (grpc.StatusCode.UNAUTHENTICATED, 1)
    assert "expired" in ended.details


async def test_token_signed_by_another_key_is_unauthenticated(plane: Plane) -> None:
    foreign = Tokens(generate_signing_key(), RevocationList(None)).issue_dataplane(MESH, NAME, HOUR)
    ended = await refused(plane, foreign)
    assert (ended.code, plane.failures("bad_signature")) == (grpc.StatusCode.UNAUTHENTICATED, 1)
    assert "signature" in ended.details


@pytest.mark.parametrize(("mesh", "name"), [(MESH, "other"), ("other-mesh", NAME)], ids=["name", "mesh"])
async def test_token_for_another_dataplane_is_permission_denied(plane: Plane, mesh: str, name: str) -> None:
    ended = await refused(plane, plane.tokens.issue_dataplane(mesh, name, HOUR))
    assert (ended.code, plane.failures("wrong_dataplane")) == (grpc.StatusCode.PERMISSION_DENIED, 1)
    assert f"token is for dataplane {name!r} in mesh {mesh!r}" in ended.details


async def test_admin_token_is_not_a_dataplane_token(plane: Plane) -> None:
    ended = await refused(plane, plane.tokens.issue_admin(HOUR))
    assert (ended.code, plane.failures("wrong_kind")) == (grpc.StatusCode.PERMISSION_DENIED, 1)


async def test_revoked_token_is_unauthenticated(plane: Plane) -> None:
    token = plane.tokens.issue_dataplane(MESH, NAME, HOUR)
    await plane.tokens.revocations.revoke((await plane.tokens.verify(token)).token_id)
    ended = await refused(plane, token)
    assert (ended.code, plane.failures("revoked")) == (grpc.StatusCode.UNAUTHENTICATED, 1)
    assert "revoked" in ended.details


async def test_bad_node_id_with_a_valid_token_is_invalid_argument(plane: Plane) -> None:
    ended = await refused(plane, plane.tokens.issue_dataplane(MESH, NAME, HOUR), "default.Bad Name")
    assert ended.code == grpc.StatusCode.INVALID_ARGUMENT
    assert plane.failures("wrong_dataplane") == 0


@pytest.mark.parametrize("token", [None, "not.a.jwt"], ids=["missing", "garbage"])
@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_unauthenticated_stream_is_refused_before_any_request_is_read(
    plane: Plane, token: str | None, delta: bool
) -> None:
    """The refusal comes from the call's metadata alone: the client has not sent (and the server has not read)
    a single request. Before, the server waited for the first request, however large, and judged it after."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{plane.port}") as channel:
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        ads = AdsClient(channel, NODE, delta=delta, metadata=metadata)
        try:
            ended = await ads.ended()
        finally:
            await ads.close()
    assert ended.code == grpc.StatusCode.UNAUTHENTICATED
    assert plane.failures("missing" if token is None else "malformed") == 1


async def test_admin_token_is_refused_before_any_request_is_read(plane: Plane) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{plane.port}") as channel:
        ads = AdsClient(channel, NODE, metadata=(("authorization", f"Bearer {plane.tokens.issue_admin(HOUR)}"),))
        try:
            ended = await ads.ended()
        finally:
            await ads.close()
    assert (ended.code, plane.failures("wrong_kind")) == (grpc.StatusCode.PERMISSION_DENIED, 1)


# Open streams: expiry and revocation -------------------------------------------------------------------


async def connected(plane: Plane, token: str, *, delta: bool = False) -> tuple[grpc.aio.Channel, AdsClient]:
    channel, ads = await open_stream(plane.port, token, delta=delta)
    assert (await ads.recv()).type_url == CDS
    return channel, ads


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_stream_is_closed_when_its_token_expires(plane: Plane, cache: SnapshotCache, delta: bool) -> None:
    token = plane.tokens.issue_dataplane(MESH, NAME, timedelta(seconds=2))
    expires = (await plane.tokens.verify(token)).expires_at
    channel, ads = await connected(plane, token, delta=delta)
    try:
        ended = await ads.ended(timeout=10)
        assert datetime.now(UTC) >= expires  # not before its time
    finally:
        await ads.close()
        await channel.close()
    assert ended.code == grpc.StatusCode.UNAUTHENTICATED
    assert "has expired" in ended.details
    assert plane.failures("expired") == 1
    assert plane.tokens.revocations.watcher_count == 0


async def test_stream_is_closed_when_its_token_is_revoked_and_others_keep_their_stream(
    plane: Plane, cache: SnapshotCache
) -> None:
    doomed = plane.tokens.issue_dataplane(MESH, NAME, HOUR)
    kept = plane.tokens.issue_dataplane(MESH, NAME, HOUR)
    (c1, revoked_stream), (c2, kept_stream) = await connected(plane, doomed), await connected(plane, kept)
    try:
        await plane.tokens.revocations.revoke((await plane.tokens.verify(doomed)).token_id)
        ended = await revoked_stream.ended()
        assert ended.code == grpc.StatusCode.UNAUTHENTICATED and "has been revoked" in ended.details
        cache.set_snapshot(NODE, snapshot(clusters=["c1", "c2"]))  # the other stream still gets pushes
        assert (await kept_stream.recv()).type_url == CDS
    finally:
        for ads, channel in ((revoked_stream, c1), (kept_stream, c2)):
            await ads.close()
            await channel.close()
    assert plane.failures("revoked") == 1
    assert (await refused(plane, doomed)).code == grpc.StatusCode.UNAUTHENTICATED  # and it cannot come back


async def test_revocation_through_another_replica_closes_the_stream(plane: Plane) -> None:
    """A second RevocationList on the same store is the other replica; this one's poller (what `controlplane
    run` starts, `--revocation-poll-interval`) learns about the revocation and closes the stream."""
    token = plane.tokens.issue_dataplane(MESH, NAME, HOUR)
    channel, ads = await connected(plane, token)
    poller = asyncio.create_task(plane.tokens.revocations.run(interval_s=0.05))
    try:
        await RevocationList(plane.store).revoke((await plane.tokens.verify(token)).token_id)
        ended = await ads.ended()
        assert ended.code == grpc.StatusCode.UNAUTHENTICATED and "has been revoked" in ended.details
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        await ads.close()
        await channel.close()


async def test_tls_ads_server(cache: SnapshotCache, tmp_path: Path) -> None:
    """`--tls-cert-file/--tls-key-file`: a client trusting the CA gets config; a plaintext client does not."""
    certs = make_certs(tmp_path)
    cache.set_snapshot(NODE, snapshot(clusters=["c1"]))
    credentials = grpc.ssl_server_credentials([(certs.key.read_bytes(), certs.cert.read_bytes())])
    server, port = await start_ads_server(cache, "127.0.0.1", 0, credentials=credentials)
    try:
        trusted = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", trusted) as channel:
            ads = AdsClient(channel, NODE)
            await ads.request(CDS)
            assert (await ads.recv()).type_url == CDS
            await ads.close()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            ads = AdsClient(channel, NODE)
            with pytest.raises((StreamEnded, grpc.aio.AioRpcError)) as caught:
                await ads.request(CDS)  # the write itself may fail: the handshake never completes
                await ads.recv()
            error = caught.value
            code = error.code if isinstance(error, StreamEnded) else error.code()
            assert code == grpc.StatusCode.UNAVAILABLE
            await ads.close()
    finally:
        await server.stop(0)
