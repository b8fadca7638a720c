"""The control plane's end of the Envoy admin tunnel (protos/admin_tunnel.proto): ask a runner for its
Envoy's config dump, stats or clusters.

Responsible for: the `Connect` stream each runner keeps open (authenticated exactly like ADS: the dataplane
token from the call's metadata before anything is read, then the node its `Hello` names authorized against
it, and the stream ended when the token lapses), one tunnel per node (a newer stream replaces the older),
and `fetch`, which sends a request down the node's tunnel and waits, under a deadline, for the chunks of the
answer. Read-only by construction: a request names one of three views, never a path; the runner maps each to
one admin GET. Bounded: at most `MAX_PENDING` requests in flight per tunnel and `MAX_BODY_BYTES` per answer.
Must not: reach an Envoy admin interface itself (it is on the runner's loopback, and stays there).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, Final

import grpc
import structlog

from controlplane.auth.tokens import TokenClaims
from controlplane.errors import ControlPlaneError
from controlplane.resources.generated import admin_tunnel_pb2
from controlplane.xds.authn import AllowAll, Authenticator, StreamRejected
from controlplane.xds.node import InvalidNodeId, parse_node_id

log = structlog.get_logger(__name__)

TUNNEL_SERVICE: Final = "controlplane.admin.v1.EnvoyAdminTunnel"
VIEWS: Final = {"config-dump": admin_tunnel_pb2.CONFIG_DUMP, "stats": admin_tunnel_pb2.STATS,
                "clusters": admin_tunnel_pb2.CLUSTERS}
MAX_PENDING: Final = 8
MAX_BODY_BYTES: Final = 64 * 1024 * 1024
FETCH_TIMEOUT_S: Final = 10.0


class TunnelUnavailable(ControlPlaneError):
    """No runner serves this node's Envoy (it was not started by `dataplane run` or the demo, or is gone)."""


class TunnelTimeout(ControlPlaneError):
    """The runner did not answer in time."""


@dataclass(frozen=True, slots=True)
class AdminAnswer:
    status: int
    content_type: str
    body: bytes


@dataclass
class _Tunnel:
    node_id: str
    outgoing: asyncio.Queue[admin_tunnel_pb2.TunnelDown] = field(default_factory=asyncio.Queue)
    pending: dict[int, asyncio.Future[AdminAnswer]] = field(default_factory=dict)
    chunks: dict[int, list[bytes]] = field(default_factory=dict)


class AdminTunnels:
    """Servicer of `Connect` and the registry of open tunnels; loop thread only."""

    def __init__(self, authenticator: Authenticator | None = None) -> None:
        self._authenticator: Authenticator = authenticator or AllowAll()
        self._tunnels: dict[str, _Tunnel] = {}
        self._ids = itertools.count(1)

    def register(self, server: grpc.aio.Server) -> None:
        handler = grpc.stream_stream_rpc_method_handler(
            self.Connect, request_deserializer=admin_tunnel_pb2.TunnelUp.FromString,
            response_serializer=admin_tunnel_pb2.TunnelDown.SerializeToString)
        handlers = {"Connect": handler}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(TUNNEL_SERVICE, handlers),))
        server.add_registered_method_handlers(TUNNEL_SERVICE, handlers)

    def connected(self, node_id: str) -> bool:
        return node_id in self._tunnels

    async def fetch(self, node_id: str, view: str, timeout: float = FETCH_TIMEOUT_S) -> AdminAnswer:
        """One view (`config-dump`, `stats`, `clusters`) of `node_id`'s Envoy, through its runner."""
        tunnel = self._tunnels.get(node_id)
        if tunnel is None:
            raise TunnelUnavailable(f"no runner serves the Envoy of {node_id}: only Envoys started by "
                                    "`controlplane dataplane run` or `controlplane demo` keep an admin tunnel")
        if len(tunnel.pending) >= MAX_PENDING:
            raise TunnelTimeout(f"{MAX_PENDING} requests to the runner of {node_id} are still waiting")
        request_id = next(self._ids)
        answer: asyncio.Future[AdminAnswer] = asyncio.get_running_loop().create_future()
        tunnel.pending[request_id] = answer
        try:
            tunnel.outgoing.put_nowait(admin_tunnel_pb2.TunnelDown(
                request=admin_tunnel_pb2.AdminRequest(id=request_id, view=VIEWS[view])))
            async with asyncio.timeout(timeout):
                return await answer
        except TimeoutError:
            raise TunnelTimeout(f"the runner of {node_id} did not answer within {timeout:.0f}s") from None
        finally:
            tunnel.pending.pop(request_id, None)
            tunnel.chunks.pop(request_id, None)

    async def Connect(self, request_iterator: Any, context: Any) -> None:
        opened = await self._open(context)
        if opened is None:
            return
        claims, tunnel = opened
        previous = self._tunnels.get(tunnel.node_id)
        self._tunnels[tunnel.node_id] = tunnel
        if previous is not None:
            _fail(previous, "a newer tunnel replaced this one")
        bound = log.bind(node_id=tunnel.node_id)
        bound.info("admin_tunnel_opened")
        tasks = [asyncio.create_task(self._send(context, tunnel)), asyncio.create_task(self._receive(context, tunnel))]
        if claims is not None:
            tasks.append(asyncio.create_task(self._authenticator.enforce(claims)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        except StreamRejected as exc:
            bound.info("admin_tunnel_closed", reason=exc.reason)
            await context.abort(exc.code, str(exc))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._tunnels.get(tunnel.node_id) is tunnel:
                del self._tunnels[tunnel.node_id]
            _fail(tunnel, "the runner's tunnel closed")
            bound.info("admin_tunnel_closed")

    async def _open(self, context: Any) -> tuple[TokenClaims | None, _Tunnel] | None:
        try:
            claims = await self._authenticator.authenticate(tuple(context.invocation_metadata() or ()))
            first = await context.read()
            if first is grpc.aio.EOF:
                return None
            if not first.HasField("hello"):
                raise InvalidNodeId("the first message must be a hello naming the node")
            node = parse_node_id(first.hello.node_id)
            self._authenticator.authorize(claims, node)
        except StreamRejected as exc:
            log.warning("admin_tunnel_unauthenticated", reason=exc.reason, error=str(exc), peer=context.peer())
            await context.abort(exc.code, str(exc))
            raise
        except InvalidNodeId as exc:
            log.warning("admin_tunnel_rejected", reason=str(exc), peer=context.peer())
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid hello: {exc}")
            raise
        return claims, _Tunnel(str(node))

    async def _send(self, context: Any, tunnel: _Tunnel) -> None:
        while True:
            await context.write(await tunnel.outgoing.get())

    async def _receive(self, context: Any, tunnel: _Tunnel) -> None:
        while True:
            message = await context.read()
            if message is grpc.aio.EOF:
                return
            if message.HasField("response"):
                _answer(tunnel, message.response)


def _answer(tunnel: _Tunnel, response: admin_tunnel_pb2.AdminResponse) -> None:
    """Collect one chunk; resolve the request on the last. Answers to requests nobody waits for are dropped."""
    waiting = tunnel.pending.get(response.id)
    if waiting is None or waiting.done():
        return
    chunks = tunnel.chunks.setdefault(response.id, [])
    chunks.append(response.chunk)
    if sum(len(c) for c in chunks) > MAX_BODY_BYTES:
        waiting.set_exception(TunnelTimeout(f"the answer is larger than {MAX_BODY_BYTES} bytes"))
        return
    if response.last:
        if response.error:
            waiting.set_exception(TunnelUnavailable(f"the runner could not read its Envoy: {response.error}"))
        else:
            waiting.set_result(AdminAnswer(response.status, response.content_type, b"".join(chunks)))


def _fail(tunnel: _Tunnel, reason: str) -> None:
    for waiting in tunnel.pending.values():
        if not waiting.done():
            waiting.set_exception(TunnelUnavailable(reason))
