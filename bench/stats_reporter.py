"""Simulated Envoy stats sinks: one metrics-service stream per proxy to the control plane, a report per interval.

What one report holds is modelled on a real sidecar's with the bootstrap's stats matcher (controlplane/
spans/stats.py; 38 families measured on Envoy 1.40 with three HTTP listeners and three tracing clusters, more
with the xDS stats of an ADS-fed sidecar): the zipkin tracer's counters, the collector cluster's outcome and
health, every HTTP listener's requests and tracing decisions (one inbound and `reach` outbounds), and the
operational core (listener_manager, cluster_manager, control_plane), ≈ 60 families. Counters are cumulative
and grow every interval as a proxy with a request a second would make them. Streams start at a random point
of the first interval, as independent Envoy flush timers do, and are ≤ 50 per channel like the ADS clients.
Used by the client processes (bench/clients.py); the driver turns it on with `--stats-interval`.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Final

import grpc
from envoy.config.core.v3 import base_pb2

from controlplane.resources.generated import envoy_metrics_pb2 as em

METHOD: Final = "/envoy.service.metrics.v3.MetricsService/StreamMetrics"
STREAMS_PER_CHANNEL: Final = 50
OPERATIONS: Final = (
    *(f"listener_manager.{n}" for n in ("lds.update_attempt", "lds.update_success", "lds.update_rejected",
                                        "lds.update_failure", "listener_added", "listener_modified",
                                        "listener_create_success", "total_listeners_active",
                                        "total_listeners_warming", "total_listeners_draining",
                                        "total_filter_chains_draining", "workers_started")),
    *(f"cluster_manager.{n}" for n in ("cds.update_attempt", "cds.update_success", "cds.update_rejected",
                                       "cluster_added", "cluster_modified", "active_clusters", "warming_clusters",
                                       "update_merge_cancelled", "cluster_updated", "upstream_connections")),
    "control_plane.connected_state", "control_plane.pending_requests", "control_plane.rate_limit_enforced",
)


def report_families(tick: int, outbounds: int, interval_s: float = 5.0) -> list[bytes]:
    """The families (serialised, as on the wire) of a report after `tick` intervals in which every HTTP listener
    (one inbound, `outbounds` outbounds) took a request a second, each sampled and its span accepted in its own
    report; the other tracing decisions stay 0, as they do in an Envoy whose sampling says yes."""
    listeners = ("localhost_8080", *(f"svc-{i}" for i in range(outbounds)))
    requests = interval_s * tick
    spans = requests * len(listeners)
    counters = {"tracing.zipkin.spans_sent": spans, "tracing.zipkin.reports_sent": spans,
                "tracing.zipkin.timer_flushed": float(tick), "cluster.tracing_zipkin.upstream_rq_2xx": spans}
    for prefix in listeners:
        counters |= {f"http.{prefix}.downstream_rq_total": requests, f"http.{prefix}.downstream_rq_completed": requests,
                     f"http.{prefix}.tracing.random_sampling": requests, f"http.{prefix}.tracing.service_forced": 0.0}
    gauges = {"cluster.tracing_zipkin.membership_healthy": 1.0, "cluster.tracing_zipkin.membership_total": 1.0,
              "http.localhost_8080.downstream_rq_active": 0.0, **dict.fromkeys(OPERATIONS, 1.0)}
    families = [em.MetricFamily(name=name, type=em.COUNTER, metric=[em.Metric(counter=em.Counter(value=value))])
                for name, value in counters.items()]
    families += [em.MetricFamily(name=name, type=em.GAUGE, metric=[em.Metric(gauge=em.Gauge(value=value))])
                 for name, value in gauges.items()]
    return [family.SerializeToString() for family in families]


class Reporters:
    """Every simulated stats sink of one client process."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.channels: list[grpc.aio.Channel] = []
        self.sent = 0
        self.errors = 0

    def start(self, target: str, nodes: list[tuple[int, str]], interval_s: float, outbounds: int) -> None:
        for position, (_, node_id) in enumerate(nodes):
            if position % STREAMS_PER_CHANNEL == 0:
                options = [("bench.channel", f"stats-{os.getpid()}-{position}")]
                self.channels.append(grpc.aio.insecure_channel(target, options=options))
            self.tasks.append(asyncio.create_task(self._report(self.channels[-1], node_id, interval_s, outbounds)))

    async def _report(self, channel: grpc.aio.Channel, node_id: str, interval_s: float, outbounds: int) -> None:
        method = channel.stream_unary(METHOD, request_serializer=em.StreamMetricsMessage.SerializeToString,
                                      response_deserializer=em.StreamMetricsResponse.FromString)
        await asyncio.sleep(random.uniform(0, interval_s))
        call = method()
        node = base_pb2.Node(id=node_id, cluster="bench").SerializeToString()
        tick = 0
        try:
            while True:
                message = em.StreamMetricsMessage(envoy_metrics=report_families(tick, outbounds, interval_s))
                if tick == 0:
                    message.identifier.node = node  # Envoy names the node on the first message only
                await call.write(message)
                self.sent += 1
                tick += 1
                await asyncio.sleep(interval_s)
        except grpc.aio.AioRpcError:
            self.errors += 1
        finally:
            call.cancel()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for channel in self.channels:
            await channel.close()
        self.tasks, self.channels = [], []
