"""The benchmark's simulated stats sink sends what a real sidecar's would, and the control plane reads it as
spans flowing: the ingest the benchmark measures is the ingest of a healthy traced proxy."""

from __future__ import annotations

from bench.stats_reporter import report_families
from controlplane.resources.generated import envoy_metrics_pb2 as em
from controlplane.spans.flow import ProxyFlow
from controlplane.spans.stats import Counts, read_report
from controlplane.spans.verdict import State, classify


def test_a_report_is_about_sixty_families_that_read_as_a_traced_proxys_counts() -> None:
    families = report_families(tick=2, outbounds=5, interval_s=5.0)
    assert len(families) == 56
    assert all(em.MetricFamily.FromString(f).metric for f in families)  # each one is a real MetricFamily
    # 6 HTTP listeners × a request a second × 10 s, every one sampled, its span accepted in its own report.
    assert read_report(families) == Counts(spans_sent=60, reports_sent=60, rq_2xx=60, requests=60, sampled=60,
                                           membership_healthy=1, membership_total=1, counts_spans=True)


def test_successive_reports_are_an_interval_in_which_spans_flow() -> None:
    flow = ProxyFlow()
    for tick in range(3):
        delta = flow.record(5.0 * tick, read_report(report_families(tick, outbounds=5)))
    assert delta is not None
    assert classify(delta) == (State.FLOWING, "the collector accepted 30 reports")
