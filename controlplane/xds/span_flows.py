"""The registry of every proxy's span flow: fed by the stats sink, judged on read, exported to Prometheus.

Responsible for: one `ProxyFlow` per node id (bounded: the `MAX_PROXIES` most recently reporting), the
clock, attributing what a report adds to the proxy's mesh and applied backend (`tracing_spans_total`), and
verdicts on read from the reconciler's records (every policy plugin's decision) and the flows, so the
verdict is never stale and costs nothing while nobody asks. Loop thread only. Must not: parse stats (that is
spans/stats.py) or decide verdicts (spans/verdict.py).

Prometheus (label cardinality bounded by configuration: meshes × backends × a fixed set, never a proxy):
`tracing_spans_total{mesh,backend,result}` counts spans by what became of the reports that carried them
(`accepted`: the collector took them, `dropped`: they never reached it, `failed`: it refused them; an
interval's spans are split in proportion to its reports' outcomes; for datadog, whose Envoy counts no
spans, reports are counted); `tracing_collector_unreachable{mesh,backend}` is the number of proxies whose
verdict is `collector unreachable`, and `tracing_proxies{mesh,backend,verdict}` the count per verdict, both
computed when scraped.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final

from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from controlplane.observability import Metrics
from controlplane.spans.flow import ProxyFlow, outcome
from controlplane.spans.stats import Counts, read_report
from controlplane.spans.verdict import State, Verdict, judge
from controlplane.xds.node import InvalidNodeId, parse_node_id
from controlplane.xds.reconciler import ProxyRecord

MAX_PROXIES: Final = 100_000
RESULTS: Final = ("accepted", "dropped", "failed")


class SpanFlows:
    """Every proxy's flow; `record` a report as it arrives, ask `verdict` when showing one."""

    def __init__(self, records: Mapping[str, ProxyRecord], metrics: Metrics | None = None, *,
                 clock: Callable[[], float] = time.time, max_proxies: int = MAX_PROXIES) -> None:
        self._records = records
        self._metrics = metrics
        self._clock = clock
        self._max = max_proxies
        self._flows: OrderedDict[str, ProxyFlow] = OrderedDict()
        self._children: dict[tuple[str, str, str], PromCounter] = {}
        self._listeners: list[Callable[[str], None]] = []

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """`listener(node_id)` after every report is recorded (the GUI's verdict feed); must not block."""
        self._listeners.append(listener)

    def now(self) -> float:
        return self._clock()

    def record(self, node_id: str, families: Iterable[bytes]) -> None:
        """One stats report of `node_id` (serialised `MetricFamily`s; its stream was authenticated and authorized
        for it)."""
        counts = read_report(families)
        flow = self._flows.get(node_id)
        if flow is None:
            flow = self._flows[node_id] = ProxyFlow()
            if len(self._flows) > self._max:
                self._flows.popitem(last=False)
        else:
            self._flows.move_to_end(node_id)
        d = flow.record(self._clock(), counts)
        if self._metrics is not None:
            self._metrics.stats_reports.inc()
            if d is not None:
                self._count_spans(node_id, d)
        for listener in self._listeners:
            listener(node_id)

    def _count_spans(self, node_id: str, d: Counts) -> None:
        record = self._records.get(node_id)
        tracing = record.policies.tracing if record is not None else None
        if tracing is None:
            return
        result = outcome(d)  # ~1 µs; recomputed rather than carried, to keep ProxyFlow's API a plain delta
        spans = d.spans_sent if d.counts_spans else result.reports
        if not spans:
            return
        shares = (result.accepted, result.dropped, result.failed) if result.reports else (1.0, 0.0, 0.0)
        total = sum(shares)
        mesh = node_id.partition(".")[0]  # the stream's node id was parsed and authorized when it opened
        for label, share in zip(RESULTS, shares, strict=True):
            if share:
                self._counter(mesh, tracing.backend.name, label).inc(spans * share / total)

    def _counter(self, mesh: str, backend: str, result: str) -> PromCounter:
        """The labelled child, looked up once per label set (prometheus' `labels()` locks on every call)."""
        key = (mesh, backend, result)
        child = self._children.get(key)
        if child is None:
            assert self._metrics is not None
            child = self._children[key] = self._metrics.tracing_spans.labels(mesh, backend, result)
        return child

    def flow(self, node_id: str) -> ProxyFlow | None:
        return self._flows.get(node_id)

    def forget(self, node_id: str) -> None:
        self._flows.pop(node_id, None)

    def verdict(self, node_id: str, now: float | None = None) -> Verdict:
        """The verdict on `node_id` now (not traced / pending when the reconciler has no record of it)."""
        record = self._records.get(node_id)
        return judge(record.policies if record is not None else None, self._flows.get(node_id),
                     self._clock() if now is None else now)

    def verdicts(self, node_ids: Iterable[str]) -> Iterator[tuple[str, Verdict]]:
        now = self._clock()
        for node in node_ids:
            yield node, self.verdict(node, now)


class SpanFlowCollector(Collector):
    """Scrape-time gauges from the verdicts of every proxy the reconciler knows (see the module docstring)."""

    def __init__(self, flows: SpanFlows, records: Mapping[str, ProxyRecord]) -> None:
        self._flows, self._records = flows, records

    def collect(self) -> Iterator[GaugeMetricFamily]:
        unreachable = GaugeMetricFamily("tracing_collector_unreachable",
                                        "Proxies whose tracing collector is unreachable", labels=["mesh", "backend"])
        proxies = GaugeMetricFamily("tracing_proxies", "Traced proxies by span-flow verdict",
                                    labels=["mesh", "backend", "verdict"])
        by_backend: Counter[tuple[str, str, State]] = Counter()
        for node, verdict in self._flows.verdicts(list(self._records)):
            if verdict.backend is not None and verdict.state is not State.NOT_TRACED:
                by_backend[(_mesh_of(node), verdict.backend, verdict.state)] += 1
        backends = sorted({(mesh, backend) for mesh, backend, _ in by_backend})
        for mesh, backend in backends:
            unreachable.add_metric([mesh, backend], by_backend[(mesh, backend, State.UNREACHABLE)])
            for state in State:
                if state is not State.NOT_TRACED:
                    proxies.add_metric([mesh, backend, state.value], by_backend[(mesh, backend, state)])
        yield unreachable
        yield proxies


def _mesh_of(node_id: str) -> str:
    try:
        return parse_node_id(node_id).mesh
    except InvalidNodeId:
        return ""
