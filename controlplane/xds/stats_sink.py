"""Envoy's metrics service (`envoy.service.metrics.v3.MetricsService/StreamMetrics`) on the ADS server.

Every Envoy whose bootstrap the control plane wrote streams its stats here (`envoy.stat_sinks.metrics_service`
over the static `ads_cluster`, so the same address, TLS and token as ADS) every flush interval. Responsible
for the stream's I/O and its credentials: authenticated exactly like ADS (`Authenticator`: the token in the
call's metadata before anything is read, then the node of the first message, the only one that carries it,
authorized against it; the stream ends when the token expires or is revoked), then each report handed to
`SpanFlows`. Must not: interpret stats (spans/stats.py does) or keep anything itself.

Served with a generic handler because xds-protos ships no metrics-service stubs; the messages are compiled
from protos/envoy_metrics.proto. Envoy never half-closes this stream; it opens a new one after any error, at
its next flush.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import grpc
import structlog
from envoy.config.core.v3 import base_pb2
from google.protobuf.message import DecodeError

from controlplane.auth.tokens import TokenClaims
from controlplane.resources.generated import envoy_metrics_pb2
from controlplane.xds.authn import AllowAll, Authenticator, StreamRejected
from controlplane.xds.node import InvalidNodeId, NodeId, parse_node_id
from controlplane.xds.span_flows import SpanFlows

log = structlog.get_logger(__name__)

METRICS_SERVICE: Final = "envoy.service.metrics.v3.MetricsService"


class StatsSink:
    """Servicer of `StreamMetrics`; `register` adds it to a grpc.aio server (start_ads_server's `services`)."""

    def __init__(self, flows: SpanFlows, authenticator: Authenticator | None = None) -> None:
        self._flows = flows
        self._authenticator: Authenticator = authenticator or AllowAll()

    def register(self, server: grpc.aio.Server) -> None:
        handler = grpc.stream_unary_rpc_method_handler(
            self.StreamMetrics, request_deserializer=envoy_metrics_pb2.StreamMetricsMessage.FromString,
            response_serializer=envoy_metrics_pb2.StreamMetricsResponse.SerializeToString)
        handlers = {"StreamMetrics": handler}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(METRICS_SERVICE, handlers),))
        server.add_registered_method_handlers(METRICS_SERVICE, handlers)

    async def StreamMetrics(self, request_iterator: Any, context: Any) -> envoy_metrics_pb2.StreamMetricsResponse:
        opened = await self._open(context)
        if opened is None:
            return envoy_metrics_pb2.StreamMetricsResponse()
        claims, node_id = opened
        bound = log.bind(node_id=node_id)
        bound.debug("stats_stream_opened")
        tasks = [asyncio.create_task(self._read(context, node_id))]
        if claims is not None:
            tasks.append(asyncio.create_task(self._authenticator.enforce(claims)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        except StreamRejected as exc:  # the token expired or was revoked
            bound.info("stats_stream_closed", reason=exc.reason)
            await context.abort(exc.code, str(exc))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        bound.debug("stats_stream_closed")
        return envoy_metrics_pb2.StreamMetricsResponse()

    async def _open(self, context: Any) -> tuple[TokenClaims | None, str] | None:
        """Authenticate, read and record the first report, authorize its node; None if the stream ended.
        A refusal aborts the call (its status and message reach Envoy's log)."""
        try:
            claims = await self._authenticator.authenticate(tuple(context.invocation_metadata() or ()))
            first = await context.read()
            if first is grpc.aio.EOF:
                return None
            node = _node_of(first)
            self._authenticator.authorize(claims, node)
        except StreamRejected as exc:
            log.warning("stats_stream_unauthenticated", reason=exc.reason, error=str(exc), peer=context.peer())
            await context.abort(exc.code, str(exc))
            raise  # not reached: abort raises
        except InvalidNodeId as exc:
            log.warning("stats_stream_rejected", reason=str(exc), peer=context.peer())
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid node in the first stats message: {exc}")
            raise
        self._flows.record(str(node), first.envoy_metrics)
        return claims, str(node)

    async def _read(self, context: Any, node_id: str) -> None:
        while True:
            message = await context.read()
            if message is grpc.aio.EOF:
                return
            self._flows.record(node_id, message.envoy_metrics)


def _node_of(message: envoy_metrics_pb2.StreamMetricsMessage) -> NodeId:
    """The node the first message names (its `identifier.node`, an `envoy.config.core.v3.Node`)."""
    try:
        node = base_pb2.Node.FromString(message.identifier.node)
    except DecodeError as exc:
        raise InvalidNodeId(f"undecodable node: {exc}") from None
    return parse_node_id(node.id)
