"""Envoy's metrics service on the ADS server (xds/stats_sink.py) with a raw gRPC client: reports reach the
span-flow registry, and streams are authenticated exactly like ADS (`--dataplane-auth token`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest
from envoy.config.core.v3 import base_pb2

from controlplane.auth.keys import generate_signing_key
from controlplane.auth.revocation import RevocationList
from controlplane.auth.tokens import Tokens
from controlplane.observability import Metrics
from controlplane.resources.generated import envoy_metrics_pb2 as em
from controlplane.store.memory import MemoryStore
from controlplane.xds.authn import TokenAuthenticator
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.server import start_ads_server
from controlplane.xds.span_flows import SpanFlows
from controlplane.xds.stats_sink import METRICS_SERVICE, StatsSink

HOUR = timedelta(hours=1)
NODE = "default.web-1"


class Sink:
    def __init__(self, port: int, tokens: Tokens, flows: SpanFlows, metrics: Metrics) -> None:
        self.port, self.tokens, self.flows, self.metrics = port, tokens, flows, metrics


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    metrics = Metrics()
    tokens = Tokens(generate_signing_key(), RevocationList(MemoryStore()))
    flows = SpanFlows({}, metrics)
    stats_sink = StatsSink(flows, TokenAuthenticator(tokens, metrics.xds_auth_failures))
    server, port = await start_ads_server(SnapshotCache(), "127.0.0.1", 0, services=[stats_sink.register])
    try:
        yield Sink(port, tokens, flows, metrics)
    finally:
        await server.stop(0)


def report(spans: float, node: str | None = None) -> em.StreamMetricsMessage:
    message = em.StreamMetricsMessage(envoy_metrics=[
        em.MetricFamily(name=name, type=em.COUNTER, metric=[em.Metric(counter=em.Counter(value=spans))]).SerializeToString()
        for name in ("tracing.zipkin.spans_sent", "http.web.downstream_rq_total")])
    if node is not None:
        message.identifier.node = base_pb2.Node(id=node, cluster="web").SerializeToString()
    return message


def stream(port: int, token: str | None) -> tuple[grpc.aio.Channel, grpc.aio.StreamUnaryCall]:  # type: ignore[type-arg]
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    method = channel.stream_unary(f"/{METRICS_SERVICE}/StreamMetrics",
                                  request_serializer=em.StreamMetricsMessage.SerializeToString,
                                  response_deserializer=em.StreamMetricsResponse.FromString)
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    return channel, method(metadata=metadata)


async def test_reports_of_an_authenticated_envoy_reach_its_flow(sink: Sink) -> None:
    channel, call = stream(sink.port, sink.tokens.issue_dataplane("default", "web-1", HOUR))
    try:
        await call.write(report(3, NODE))  # Envoy names the node on the first message only
        await call.write(report(5))
        async with asyncio.timeout(5):
            while (flow := sink.flows.flow(NODE)) is None or len(flow.samples) < 2:
                await asyncio.sleep(0.01)
        assert [s.counts.spans_sent for s in flow.samples] == [3.0, 5.0]
        assert sink.metrics.registry.get_sample_value("stats_reports_total") == 2.0
    finally:
        call.cancel()
        await channel.close()


@pytest.mark.parametrize(("token_for", "code", "reason"), [
    (None, grpc.StatusCode.UNAUTHENTICATED, "missing"),
    ("intruder", grpc.StatusCode.PERMISSION_DENIED, "wrong_dataplane"),
], ids=["no-token", "another-dataplanes-token"])
async def test_streams_are_authenticated_like_ads(sink: Sink, token_for: str | None, code: grpc.StatusCode,
                                                  reason: str) -> None:
    token = sink.tokens.issue_dataplane("default", token_for, HOUR) if token_for else None
    channel, call = stream(sink.port, token)
    try:
        await call.write(report(3, NODE))
        await call.done_writing()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == code
        assert refused.value.details().startswith("dataplane token rejected"), refused.value.details()
    finally:
        await channel.close()
    assert sink.flows.flow(NODE) is None
    assert sink.metrics.registry.get_sample_value("xds_auth_failures_total", {"reason": reason}) == 1.0


async def test_a_first_message_without_a_valid_node_is_refused(sink: Sink) -> None:
    channel, call = stream(sink.port, sink.tokens.issue_dataplane("default", "web-1", HOUR))
    try:
        await call.write(report(3, "no-dot"))
        await call.done_writing()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details() == "invalid node in the first stats message: the name should be provided after the dot"
    finally:
        await channel.close()
