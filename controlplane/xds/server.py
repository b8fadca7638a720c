"""ADS gRPC servicer (SotW `StreamAggregatedResources` and delta `DeltaAggregatedResources`) on grpc.aio.

Responsible for the I/O of a stream only: read requests, hand them to the pure state machine
(`SotwState` in stream_state.py, `DeltaState` in delta.py), write the responses it returns, wake up when the
node's snapshot changes, report to the observer, and close the stream on protocol errors. Every protocol
decision lives in those state classes, where it is unit-tested without gRPC.

Why both variants on one ADS endpoint: Envoy can use either (`GRPC` / `DELTA_GRPC`); proxyless gRPC clients
speak only SotW ADS (reference/xds-protocol.md §1.1, §5). Per-type xDS services are not offered: only ADS can
keep the CDS → EDS → LDS → RDS order that stops clusters and listeners from warming forever (§1.10).

Each stream runs helper tasks created by its handler and cancelled and awaited in its `finally`: a reader
(requests), a pusher (snapshot changes) and, for a stream that presented a token, a guard that ends the
stream when the token expires or is revoked (authn.py). A lock serialises reader and pusher, so responses
leave in the order the state machine produced them.

Authentication reads the call's metadata before the first request (authn.py explains why); the node the
first request names is then checked against the credentials.

Limits (README "Limits"): gRPC refuses a request larger than the receive cap with RESOURCE_EXHAUSTED before
it reaches Python; what a stream accumulates is bounded by `StreamLimits` (limits.py); connections that
never finish the HTTP/2 handshake, or carry no stream for a while, are closed (server_options.py). A request
is dropped as soon as it has been handled: a stream lives for hours and must not pin its last (or first)
message.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, Final, Protocol

import grpc
import structlog
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from controlplane.auth.tokens import TokenClaims
from controlplane.xds.authn import AllowAll, Authenticator, StreamRejected
from controlplane.xds.cache import SnapshotCache, Watch
from controlplane.xds.delta import DeltaState
from controlplane.xds.envoy_version import EnvoyVersion, UnsupportedEnvoy, check_supported, envoy_version_of
from controlplane.xds.limits import DEFAULT_LIMITS, LimitExceeded, StreamLimits
from controlplane.xds.node import InvalidNodeId, parse_node_id
from controlplane.xds.observer import (
    CompositeObserver,
    NodeStatus,
    NoopObserver,
    StatusRegistry,
    StreamObserver,
)
from controlplane.xds.server_options import SERVER_OPTIONS
from controlplane.xds.snapshot import Snapshot
from controlplane.xds.stream_state import ProtocolViolation, RequestEvent, SotwState, Variant

log = structlog.get_logger(__name__)

ADS_SERVICE: Final = "envoy.service.discovery.v3.AggregatedDiscoveryService"
class AdsBindError(RuntimeError):
    """The ADS server could not listen on its address: `str()` is one line naming it and the reason.

    grpc's `add_insecure_port`/`add_secure_port` raise a bare RuntimeError ("Failed to bind to address
    ...; set GRPC_VERBOSITY=debug ...") for every bind failure, so the reason is found by binding a plain
    socket to the same address (e.g. "address already in use": with `grpc.so_reuseport` 0, a port another
    control plane listens on is one). A subclass of RuntimeError, so callers catching grpc's error still do.
    """

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"cannot listen for ADS on {address}: {reason}")
        self.address = address
        self.reason = reason


def _bind_failure(host: str, port: int) -> str:
    """Why `host:port` cannot be bound, as the OS says it (grpc does not tell)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(address)
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    return "gRPC could not bind it"


class _Response(Protocol):
    """What the servicer needs from SotwResponse / DeltaResponse."""

    @property
    def type_url(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def nonce(self) -> str: ...

    @property
    def n_resources(self) -> int: ...

    def encode(self) -> bytes: ...


class _State(Protocol):
    """What the servicer needs from SotwState / DeltaState."""

    def on_request(self, request: Any) -> RequestEvent: ...

    def responses(self, snapshot: Snapshot) -> Sequence[_Response]: ...


class AdsServer:
    """Servicer for `envoy.service.discovery.v3.AggregatedDiscoveryService`.

    Also the place to ask which nodes are connected and what each has been sent / has ACKed / NACKed
    (`connected_nodes()`, `status(node_id)`), via its `StatusRegistry` observer (pass one in to share it
    with other readers, e.g. the inspection API, instead of keeping a second registry).
    """

    def __init__(self, cache: SnapshotCache, observer: StreamObserver | None = None,
                 authenticator: Authenticator | None = None, status: StatusRegistry | None = None,
                 limits: StreamLimits = DEFAULT_LIMITS) -> None:
        self._cache = cache
        self._limits = limits
        self._authenticator: Authenticator = authenticator or AllowAll()
        self._status = status if status is not None else StatusRegistry()
        self._observer = CompositeObserver((self._status, observer or NoopObserver()))
        self._stream_ids = itertools.count(1)

    async def StreamAggregatedResources(self, request_iterator: AsyncIterator[Any], context: Any) -> None:
        await _Stream(next(self._stream_ids), "sotw", SotwState(self._limits), self._cache, self._observer,
                      context, self._authenticator).run(_Requests(context))

    async def DeltaAggregatedResources(self, request_iterator: AsyncIterator[Any], context: Any) -> None:
        await _Stream(next(self._stream_ids), "delta", DeltaState(self._limits), self._cache, self._observer,
                      context, self._authenticator).run(_Requests(context))

    def connected_nodes(self) -> list[str]:
        return self._status.connected_nodes()

    def status(self, node_id: str) -> NodeStatus | None:
        return self._status.status(node_id)


class _Requests:
    """The stream's requests, read with `context.read()`, holding none of them.

    Used instead of grpc's `request_iterator` (never iterated, so grpc never starts it): that is an async
    generator whose frame keeps the last request it yielded until the next one arrives, and after the
    stream ends it sits in a reference cycle that only the cycle collector frees; a refused 4 MiB request
    stayed resident that long (tests/xds/test_ads_limits.py).
    """

    def __init__(self, context: Any) -> None:
        self._context = context

    def __aiter__(self) -> _Requests:
        return self

    async def __anext__(self) -> Any:
        message = await self._context.read()
        if message is grpc.aio.EOF:
            raise StopAsyncIteration
        return message


class _Stream:
    """One ADS stream: its state machine, its node, and the lock that orders its writes."""

    def __init__(self, stream_id: int, variant: Variant, state: _State, cache: SnapshotCache,
                 observer: StreamObserver, context: Any, authenticator: Authenticator) -> None:
        self._id = stream_id
        self._authenticator = authenticator
        self._variant: Variant = variant
        self._state = state
        self._cache = cache
        self._observer = observer
        self._context = context
        self._lock = asyncio.Lock()
        self._node_id = ""
        self._log = log.bind(stream_id=stream_id, variant=variant)

    async def run(self, requests: AsyncIterator[Any]) -> None:
        tasks: list[asyncio.Task[None]] = []
        watch: Watch | None = None
        try:
            # Before anything is read: an unauthenticated client's first request is never received.
            claims = await self._authenticator.authenticate(tuple(self._context.invocation_metadata() or ()))
            first = await anext(requests, None)
            if first is None:
                return
            self._open(first, claims)
            watch = self._cache.watch(self._node_id)
            await self._handle(first)
            del first  # held for the stream's life otherwise (a delta one can be MiBs of resource versions)
            tasks = [asyncio.create_task(self._read(requests)), asyncio.create_task(self._push(watch))]
            if claims is not None:
                tasks.append(asyncio.create_task(self._authenticator.enforce(claims)))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        except LimitExceeded as exc:
            self._log.warning("stream_rejected", reason=str(exc), limit=exc.limit)
            self._end(grpc.StatusCode.RESOURCE_EXHAUSTED, exc)
        except ProtocolViolation as exc:
            self._log.warning("stream_rejected", reason=str(exc))
            self._end(grpc.StatusCode.INVALID_ARGUMENT, exc)
        except StreamRejected as exc:  # counted by the authenticator; logged here, never with the token
            self._log.warning("stream_unauthenticated", reason=exc.reason, error=str(exc), peer=self._context.peer())
            self._end(exc.code, exc)
        except Exception as exc:  # noqa: BLE001 - task boundary, see below
            # Task boundary (STYLE §4.6): a bug ends only this stream, logged with stream_id and node_id.
            self._log.exception("stream_failed")
            self._end(grpc.StatusCode.INTERNAL, exc, "internal error in the ADS stream")
        finally:
            try:
                await _cancel_and_wait(tasks)
            finally:
                # Always, even if a second cancellation (gRPC cancels the handler when the client goes away,
                # and again on shutdown) interrupts the wait above: a skipped close leaked the stream in the
                # status registry and the streams gauge (tests/e2e/test_faults.py, 500-reconnect burst).
                self._close(watch)

    def _end(self, code: grpc.StatusCode, exc: Exception, details: str | None = None) -> None:
        """End the RPC with `code` when the handler returns, and let go of the exception's frames.

        Not `context.abort()`: it raises an AbortError that grpc keeps on the call state, whose traceback
        holds this handler's frames and so the request that caused it, in a cycle through the context that
        only a full collection frees. The traceback is dropped for the same reason: the reader task keeps
        the exception, and its frames hold the offending request.
        """
        exc.__traceback__ = None
        self._context.set_code(code)
        self._context.set_details(details if details is not None else str(exc))

    def _open(self, first: Any, claims: TokenClaims | None) -> None:
        # "Basic Protocol Overview" (§1.3): only the first request is guaranteed to carry the node; it is
        # cached for the life of the stream and later `node` fields are ignored. The credentials, verified
        # before this request was read, are checked against the node here, once, before anything is sent
        # (go-control-plane's OnStreamRequest, xds-protocol.md §2.3).
        raw = str(first.node.id) if first.HasField("node") else ""
        try:
            node = parse_node_id(raw)
        except InvalidNodeId as exc:
            raise ProtocolViolation(f"invalid node ID {raw[:300]!r}: {exc}") from exc
        self._log = self._log.bind(node_id=raw)
        self._authenticator.authorize(claims, node)
        if claims is not None:
            self._log = self._log.bind(token_id=claims.token_id)
        envoy_version = _supported_envoy(first.node, self._log)
        self._node_id = raw
        self._observer.on_stream_open(self._id, raw, self._variant, envoy_version)
        self._log.info("stream_opened", envoy_version=str(envoy_version) if envoy_version else None)

    def _close(self, watch: Watch | None) -> None:
        if watch is not None:
            watch.close()
        if self._node_id:
            self._observer.on_stream_close(self._id, self._node_id)
            self._log.info("stream_closed")

    async def _read(self, requests: AsyncIterator[Any]) -> None:
        async for request in requests:
            await self._handle(request)
            del request  # not kept while waiting for the next one

    async def _push(self, watch: Watch) -> None:
        while True:
            await watch.wait()
            async with self._lock:
                await self._flush()

    async def _handle(self, request: Any) -> None:
        async with self._lock:
            event = self._state.on_request(request)
            self._observer.on_request(self._id, self._node_id, event.type_url, event.kind, event.version,
                                      event.nonce, event.error_message)
            if event.kind == "nack":
                self._log.warning("nack_received", type_url=event.type_url, version=event.version,
                                  nonce=event.nonce, error=event.error_message)
            else:
                self._log.debug("request_received", type_url=event.type_url, kind=event.kind,
                                version=event.version, nonce=event.nonce)
            await self._flush()

    async def _flush(self) -> None:
        """Write everything the state machine owes the client for the node's current snapshot.

        No snapshot yet → nothing is sent and the stream stays open; answering with an empty config
        would wipe a reconnecting proxy's configuration before the control plane has generated it.
        """
        snapshot = self._cache.get_snapshot(self._node_id)
        if snapshot is None:
            return
        for response in self._state.responses(snapshot):
            # Already wire bytes (identity serialiser, see start_ads_server): shared per-resource encodings
            # plus this stream's version/type/nonce fields, so the size is just len().
            payload = response.encode()
            await self._context.write(payload)
            self._observer.on_response(self._id, self._node_id, response.type_url, response.version,
                                       response.nonce, response.n_resources, len(payload))
            self._log.debug("response_sent", type_url=response.type_url, version=response.version,
                            nonce=response.nonce, resources=response.n_resources, bytes=len(payload))


def _supported_envoy(node: base_pb2.Node, bound: structlog.typing.FilteringBoundLogger) -> EnvoyVersion | None:
    """The Envoy version the node reports; an Envoy older than the supported window is refused with
    FAILED_PRECONDITION naming the minimum (envoy_version.py says why refusing beats sending it fields it
    would silently drop). Envoy logs the status on every reconnect attempt, so the operator sees it there."""
    version = envoy_version_of(node)
    try:
        check_supported(version)
    except UnsupportedEnvoy as exc:
        bound.warning("stream_refused", envoy_version=str(version), reason=str(exc))
        raise StreamRejected(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None
    return version


async def _cancel_and_wait(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel the stream's helper tasks and wait for them; our own cancellation still propagates."""
    tasks = list(tasks)
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # already reported through the first failure; mark it retrieved


def _add_ads_service(ads: AdsServer, server: grpc.aio.Server) -> None:
    """Register the two ADS methods like the generated `add_AggregatedDiscoveryServiceServicer_to_server`,
    but with no response serialiser: the handlers write wire bytes that were mostly encoded once per
    resource (wire.py), so grpc passes them through instead of serialising a message per stream."""
    handlers = {
        "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
            ads.StreamAggregatedResources, request_deserializer=discovery_pb2.DiscoveryRequest.FromString),
        "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
            ads.DeltaAggregatedResources, request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(ADS_SERVICE, handlers),))
    server.add_registered_method_handlers(ADS_SERVICE, handlers)


async def start_ads_server(
    cache: SnapshotCache,
    host: str,
    port: int,
    observer: StreamObserver | None = None,
    *,
    ads: AdsServer | None = None,
    authenticator: Authenticator | None = None,
    status: StatusRegistry | None = None,
    credentials: grpc.ServerCredentials | None = None,
    options: Iterable[tuple[str, int]] = SERVER_OPTIONS,
    services: Iterable[Callable[[grpc.aio.Server], None]] = (),
) -> tuple[grpc.aio.Server, int]:
    """Start a grpc.aio server with the ADS service on host:port (0 = a free port); return it and the port.

    Pass `ads` to keep a handle on the servicer (for `status()` / `connected_nodes()`); otherwise one is
    built from `cache`, `observer` and `authenticator`. `credentials` (grpc.ssl_server_credentials) serve
    TLS instead of plaintext. The caller owns the server and stops it with `await server.stop(grace)`.
    Raises `AdsBindError` when the address cannot be bound (e.g. another control plane listens there).
    `services` register more services on the same server (the stats sink, the Envoy admin tunnel), so
    Envoys and their runners need one address and one set of credentials.
    """
    if ads is None:
        ads = AdsServer(cache, observer, authenticator, status)
    elif observer is not None or authenticator is not None or status is not None:
        raise ValueError("pass the observer, authenticator and status to AdsServer when passing ads=")
    server = grpc.aio.server(options=list(options))
    _add_ads_service(ads, server)
    for register in services:
        register(server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if credentials is None:
            bound_port = int(server.add_insecure_port(address))
        else:
            bound_port = int(server.add_secure_port(address, credentials))
    except RuntimeError:
        raise AdsBindError(address, _bind_failure(host, port)) from None
    await server.start()
    log.info("ads_server_started", address=address, port=bound_port, tls=credentials is not None)
    return server, bound_port
