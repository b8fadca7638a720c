"""Who may open an ADS stream, and for how long: the `Authenticator` seam of the ADS server and its token
implementation.

Three moments, in this order (go-control-plane's OnStreamOpen / OnStreamRequest callbacks returning an
error, xds-protocol.md §2.3):
1. `authenticate(metadata)`, when the call arrives and BEFORE its first request is read: the credentials
   travel in gRPC initial metadata, so an unauthenticated client is refused without the server ever
   receiving (let alone keeping) a request body that may be tens of MB (issue 11 §2, "pre-auth memory").
2. `authorize(claims, node)`, after the first request, the only one sure to carry the node (§1.3): may these
   credentials fetch this node's config?
3. `enforce(claims)`, for the life of the stream: raises when the token expires (a timer at its `exp`) or is
   revoked (an event from the revocation list), so a stream does not outlive its credentials.
A `StreamRejected` ends the stream with its gRPC code; the server logs it with the stream's context.

`TokenAuthenticator` (`controlplane run --dataplane-auth token`) wants gRPC initial metadata
`authorization: Bearer <dataplane token>` (Envoy's `initial_metadata` on the ADS grpc_service, written by
`controlplane bootstrap --token-file`): missing, malformed, expired, foreign-key or revoked tokens are
UNAUTHENTICATED; an admin token, or a valid token for another mesh/name, is PERMISSION_DENIED, as Kuma
answers a proxy that presents another dataplane's token. Each refusal, and each stream closed because its
token lapsed, is counted in `xds_auth_failures_total{reason}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, Protocol

import grpc
from prometheus_client import Counter

from controlplane.auth.tokens import DATAPLANE, TokenClaims, TokenError, Tokens, bearer_token
from controlplane.errors import ControlPlaneError
from controlplane.xds.node import NodeId

Metadata = Sequence[tuple[str, str | bytes]]
DATAPLANE_AUTH_MODES: Final = ("none", "token")
_DENIED: Final = ("wrong_dataplane", "wrong_kind")


class StreamRejected(ControlPlaneError):
    """The stream may not proceed; the server aborts it with `code` and this message."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(message)


class Authenticator(Protocol):
    async def authenticate(self, metadata: Metadata) -> TokenClaims | None:
        """Before the first request is read: the stream's verified credentials (None when not checked);
        raise StreamRejected to end it."""

    def authorize(self, claims: TokenClaims | None, node: NodeId) -> None:
        """After the first request: raise StreamRejected if `claims` may not fetch `node`'s config."""

    async def enforce(self, claims: TokenClaims) -> None:
        """Wait while `claims` stay valid; raise StreamRejected when they lapse (never returns normally)."""


class AllowAll:
    """`--dataplane-auth none` (the default, so the quick start needs no tokens)."""

    async def authenticate(self, metadata: Metadata) -> TokenClaims | None:
        return None

    def authorize(self, claims: TokenClaims | None, node: NodeId) -> None:
        return None

    async def enforce(self, claims: TokenClaims) -> None:
        await asyncio.Event().wait()  # nothing to enforce: wait until the stream's other tasks end


class TokenAuthenticator:
    def __init__(self, tokens: Tokens, failures: Counter) -> None:
        self._tokens = tokens
        self._failures = failures

    async def authenticate(self, metadata: Metadata) -> TokenClaims | None:
        token = bearer_token(_header(metadata, "authorization"))
        try:
            if token is None:
                raise TokenError("missing", "no token: send gRPC metadata `authorization: Bearer <dataplane token>` "
                                            "(controlplane bootstrap --token-file)")
            claims = await self._tokens.verify(token)
            if claims.subject != DATAPLANE:
                raise TokenError("wrong_kind", f"a {claims.subject} token is not a dataplane token")
        except TokenError as exc:
            raise self._rejected(exc, "dataplane token rejected") from None
        return claims

    def authorize(self, claims: TokenClaims | None, node: NodeId) -> None:
        if claims is None or (claims.mesh, claims.name) == (node.mesh, node.name):
            return
        error = TokenError("wrong_dataplane", f"the token is for dataplane {claims.name!r} in mesh {claims.mesh!r}")
        raise self._rejected(error, f"dataplane token rejected for node {node}")

    async def enforce(self, claims: TokenClaims) -> None:
        remaining = (claims.expires_at - datetime.now(UTC)).total_seconds()
        with self._tokens.revocations.watching(claims.token_id) as revoked:
            try:
                async with asyncio.timeout(max(remaining, 0.0)):
                    await revoked.wait()
            except TimeoutError:
                error = TokenError("expired", f"token {claims.token_id} has expired")
            else:
                error = TokenError("revoked", f"token {claims.token_id} has been revoked")
        raise self._rejected(error, "stream closed")

    def _rejected(self, error: TokenError, context: str) -> StreamRejected:
        self._failures.labels(error.reason).inc()
        code = grpc.StatusCode.PERMISSION_DENIED if error.reason in _DENIED else grpc.StatusCode.UNAUTHENTICATED
        return StreamRejected(code, f"{context}: {error}", error.reason)


def _header(metadata: Metadata, name: str) -> str | None:
    for key, value in metadata:
        if key.lower() == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return None
