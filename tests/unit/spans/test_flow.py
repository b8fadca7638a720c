"""ProxyFlow: deltas per interval, restarts, bounded history, per-minute rates and report outcomes."""

from __future__ import annotations

from controlplane.spans.flow import HISTORY, Outcome, ProxyFlow, Rates, outcome
from controlplane.spans.stats import Counts


def test_deltas_are_taken_between_consecutive_reports() -> None:
    flow = ProxyFlow()
    assert flow.record(0.0, Counts(spans_sent=10, rq_2xx=2)) is None
    assert flow.record(5.0, Counts(spans_sent=15, rq_2xx=3)) == Counts(spans_sent=5, rq_2xx=1)
    assert flow.totals == Counts(spans_sent=5, rq_2xx=1)
    assert flow.last_accepted_at == 5.0 and flow.interval() == 5.0


def test_a_counter_going_down_is_an_envoy_restart_counted_from_zero() -> None:
    flow = ProxyFlow()
    flow.record(0.0, Counts(spans_sent=100, rq_2xx=20))
    flow.record(5.0, Counts(spans_sent=110, rq_2xx=22))
    assert flow.record(10.0, Counts(spans_sent=4, rq_2xx=1)) == Counts(spans_sent=4, rq_2xx=1)
    assert [(at, d) for at, d in flow.intervals(float("-inf"))] == [(10.0, Counts(spans_sent=4, rq_2xx=1))]
    assert flow.totals == Counts(spans_sent=14, rq_2xx=3)


def test_history_is_bounded() -> None:
    flow = ProxyFlow()
    for i in range(HISTORY * 3):
        flow.record(float(i), Counts(requests=float(i)))
    assert len(flow.samples) == HISTORY
    assert flow.totals.requests == HISTORY * 3 - 1


def test_rates_are_per_minute_over_the_last_minute() -> None:
    flow = ProxyFlow()
    for i in range(20):  # one report every 5 s for 95 s: 2 spans and 1 accepted report each
        flow.record(i * 5.0, Counts(spans_sent=2.0 * i, rq_2xx=float(i), requests=3.0 * i, sampled=2.0 * i))
    assert flow.rates() == Rates(window_s=60.0, spans_sent=24.0, accepted=12.0, dropped=0.0, failed=0.0,
                                 requests=36.0, sampled=24.0)


def test_report_outcomes_tell_unreachable_from_rejecting() -> None:
    # Collector down: a connection failure per report; Envoy answers each with a local 503.
    assert outcome(Counts(reports_dropped=3, cx_connect_fail=3, rq_5xx=3)) == Outcome(0, 3, 0)
    # Collector answering 500: zipkin counts them as dropped too; the cluster says the collector answered.
    assert outcome(Counts(reports_dropped=3, rq_5xx=3)) == Outcome(0, 0, 3)
    # OTLP/gRPC: no tracer counters, only the cluster's.
    assert outcome(Counts(spans_sent=5, cx_connect_fail=1, rq_5xx=1)) == Outcome(0, 1, 0)
    assert outcome(Counts(reports_sent=2, rq_2xx=2, reports_failed=1)) == Outcome(2, 0, 1)
    assert outcome(Counts(reports_skipped=2)) == Outcome(0, 2, 0)
