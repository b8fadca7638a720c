"""Who may open an ADS stream: the `Authenticator` seam of the ADS server and its token implementation.

The server calls `authenticate(node, metadata)` once per stream, on the first request (the only one sure to
carry the node, xds-protocol.md §1.3), before anything is sent, like go-control-plane's `OnStreamRequest`
callback returning an error (xds-protocol.md §2.3). A `StreamRejected` ends the stream with its gRPC code.

`TokenAuthenticator` (`controlplane run --dataplane-auth token`) wants gRPC initial metadata
`authorization: Bearer <dataplane token>` (Envoy's `initial_metadata` on the ADS grpc_service, written by
`controlplane bootstrap --token-file`): missing, malformed, expired, foreign-key or revoked tokens are
UNAUTHENTICATED; a valid token for another mesh/name (or an admin token) is PERMISSION_DENIED, as Kuma
answers a proxy that presents another dataplane's token. Each refusal is counted in
`xds_auth_failures_total{reason}` and logged at warning, without the token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

import grpc
import structlog
from prometheus_client import Counter

from controlplane.auth.tokens import DATAPLANE, TokenError, Tokens, bearer_token
from controlplane.errors import ControlPlaneError
from controlplane.xds.node import NodeId

log = structlog.get_logger(__name__)

Metadata = Sequence[tuple[str, str | bytes]]
DATAPLANE_AUTH_MODES: Final = ("none", "token")


class StreamRejected(ControlPlaneError):
    """The stream may not proceed; the server aborts it with `code` and this message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code = code
        super().__init__(message)


class Authenticator(Protocol):
    async def authenticate(self, node: NodeId, metadata: Metadata) -> None:
        """Return to accept the stream; raise StreamRejected to end it."""


class AllowAll:
    """`--dataplane-auth none` (the default, so the quick start needs no tokens)."""

    async def authenticate(self, node: NodeId, metadata: Metadata) -> None:
        return None


class TokenAuthenticator:
    def __init__(self, tokens: Tokens, failures: Counter) -> None:
        self._tokens = tokens
        self._failures = failures

    async def authenticate(self, node: NodeId, metadata: Metadata) -> None:
        try:
            await self._check(node, metadata)
        except TokenError as exc:
            self._failures.labels(exc.reason).inc()
            log.warning("stream_unauthenticated", node_id=str(node), reason=exc.reason, error=str(exc))
            denied = exc.reason in ("wrong_dataplane", "wrong_kind")
            code = grpc.StatusCode.PERMISSION_DENIED if denied else grpc.StatusCode.UNAUTHENTICATED
            raise StreamRejected(code, f"dataplane token rejected for node {node}: {exc}") from None

    async def _check(self, node: NodeId, metadata: Metadata) -> None:
        token = bearer_token(_header(metadata, "authorization"))
        if token is None:
            raise TokenError("missing", "no token: send gRPC metadata `authorization: Bearer <dataplane token>` "
                                        "(controlplane bootstrap --token-file)")
        claims = await self._tokens.verify(token)
        if claims.subject != DATAPLANE:
            raise TokenError("wrong_kind", f"a {claims.subject} token is not a dataplane token")
        if (claims.mesh, claims.name) != (node.mesh, node.name):
            raise TokenError("wrong_dataplane",
                             f"the token is for dataplane {claims.name!r} in mesh {claims.mesh!r}")


def _header(metadata: Metadata, name: str) -> str | None:
    for key, value in metadata:
        if key.lower() == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return None
