"""Stand-ins for Envoys, for GUI tests against a control plane in another process: ADS streams that ACK (or
NACK) what they are sent, and stats-sink streams that report cumulative counters every `interval_s`.

Responsible for: speaking the real protocols (SotW ADS with the xds-protos messages, Envoy's metrics service
with the control plane's compiled messages) so the control plane's status registry and span flows see what
real Envoys would make them see, on an event loop of its own thread (the browser tests are synchronous).
Must not: assert anything (the tests compare the page with the API).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from controlplane.resources.generated import envoy_metrics_pb2 as em
from controlplane.xds.stats_sink import METRICS_SERVICE
from controlplane.xds.types import ADS_ORDER, LISTENER_TYPE

Stats = Callable[[int], Mapping[str, float]]
"""Cumulative counters of the i-th report (i = 1, 2, ...)."""
GAUGES: Final = ("membership_healthy", "membership_total")


def flowing(service: str, collector: str) -> Stats:
    """A proxy whose collector takes every span: `collector` is its cluster's stat name (`tracing_<backend>`)."""
    return lambda i: {"tracing.zipkin.spans_sent": 2 * i, "tracing.zipkin.reports_sent": 2 * i,
                      f"cluster.{collector}.upstream_rq_2xx": 2 * i, f"cluster.{collector}.membership_healthy": 1,
                      f"cluster.{collector}.membership_total": 1, f"http.{service}.downstream_rq_total": 2 * i,
                      f"http.{service}.tracing.random_sampling": 2 * i}


def unreachable(service: str, collector: str) -> Stats:
    """A proxy whose collector refuses connections: every report is dropped."""
    return lambda i: {"tracing.zipkin.spans_sent": 2 * i, "tracing.zipkin.reports_dropped": 2 * i,
                      f"cluster.{collector}.upstream_cx_connect_fail": 2 * i,
                      f"cluster.{collector}.upstream_rq_5xx": 2 * i, f"cluster.{collector}.membership_healthy": 1,
                      f"cluster.{collector}.membership_total": 1, f"http.{service}.downstream_rq_total": 2 * i}


def unsampled(service: str, collector: str) -> Stats:
    """Traffic, but sampling decides against every request."""
    return lambda i: {f"cluster.{collector}.membership_healthy": 1, f"cluster.{collector}.membership_total": 1,
                      f"http.{service}.downstream_rq_total": 3 * i, f"http.{service}.tracing.not_traceable": 3 * i}


def _families(stats: Mapping[str, float]) -> list[bytes]:
    """Each a serialised `MetricFamily`: the message keeps them as bytes (protos/envoy_metrics.proto)."""
    out = []
    for name, value in stats.items():
        gauge = name.rpartition(".")[2] in GAUGES
        metric = em.Metric(gauge=em.Gauge(value=value)) if gauge else em.Metric(counter=em.Counter(value=value))
        out.append(em.MetricFamily(name=name, type=em.GAUGE if gauge else em.COUNTER, metric=[metric]).SerializeToString())
    return out


class Fleet:
    """Fake proxies of one control plane (`xds_port`); `close()` ends every stream and the thread."""

    def __init__(self, xds_port: int, interval_s: float = 0.5) -> None:
        self.address, self.interval_s = f"127.0.0.1:{xds_port}", interval_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gui-fleet", daemon=True)
        self._thread.start()
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def connect(self, node: str, *, nack: str = "", stats: Stats | None = None) -> None:
        """An ADS stream for `node` subscribed to every type, ACKing (or NACKing listeners with `nack` as
        Envoy's error), and with `stats` a metrics stream reporting every `interval_s`."""
        async def start() -> None:
            tasks = self._tasks.setdefault(node, [])
            tasks.append(asyncio.create_task(self._ads(node, nack), name=f"ads-{node}"))
            if stats is not None:
                tasks.append(asyncio.create_task(self._report(node, stats), name=f"stats-{node}"))
        self._run(start())

    def disconnect(self, node: str) -> None:
        async def stop() -> None:
            tasks = self._tasks.pop(node, [])
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._run(stop())

    def close(self) -> None:
        for node in list(self._tasks):
            self.disconnect(node)

        async def settle() -> None:  # grpc's own per-call tasks, so none is destroyed pending
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
        self._run(settle())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _ads(self, node: str, nack: str) -> None:
        async with grpc.aio.insecure_channel(self.address) as channel:
            call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
            first = True
            for type_url in ADS_ORDER:
                request = discovery_pb2.DiscoveryRequest(type_url=type_url)
                if first:
                    request.node.CopyFrom(base_pb2.Node(id=node, cluster=node.split(".", 1)[1]))
                    first = False
                await call.write(request)
            async for response in call:
                answer = discovery_pb2.DiscoveryRequest(type_url=response.type_url, response_nonce=response.nonce)
                if nack and response.type_url == LISTENER_TYPE:
                    answer.error_detail.CopyFrom(status_pb2.Status(code=3, message=nack))
                else:
                    answer.version_info = response.version_info
                await call.write(answer)

    async def _report(self, node: str, stats: Stats) -> None:
        async with grpc.aio.insecure_channel(self.address) as channel:
            method = channel.stream_unary(f"/{METRICS_SERVICE}/StreamMetrics",
                                          request_serializer=em.StreamMetricsMessage.SerializeToString,
                                          response_deserializer=em.StreamMetricsResponse.FromString)
            call = method()
            i = 0
            while True:
                i += 1
                message = em.StreamMetricsMessage(envoy_metrics=_families(stats(i)))
                if i == 1:
                    message.identifier.node = base_pb2.Node(id=node, cluster="fleet").SerializeToString()
                await call.write(message)
                await asyncio.sleep(self.interval_s)  # Envoy's flush interval
