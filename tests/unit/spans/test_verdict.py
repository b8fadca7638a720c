"""The verdict on a proxy's tracing, from its policy decision and its Envoy's reports (every rule)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from spans_helpers import families, traced, untraced

from controlplane.policies.plugins import ProxyPolicies
from controlplane.spans.flow import ProxyFlow
from controlplane.spans.stats import read_report
from controlplane.spans.verdict import State, Verdict, judge

STEP = 5.0
HEALTHY = {"cluster.tracing_jaeger.membership_healthy": 1, "cluster.tracing_jaeger.membership_total": 1}


def flow_of(*reports: Mapping[str, float]) -> ProxyFlow:
    """Reports STEP seconds apart (cumulative stats, as Envoy sends them), starting at t=0."""
    flow = ProxyFlow()
    for i, stats in enumerate(reports):
        flow.record(i * STEP, read_report(families({**HEALTHY, **stats})))
    return flow


def up(spans: int, requests: int | None = None) -> dict[str, float]:
    """Cumulative stats after `spans` requests were traced and each span was accepted in its own report."""
    return {"tracing.zipkin.spans_sent": spans, "tracing.zipkin.reports_sent": spans,
            "cluster.tracing_jaeger.upstream_rq_2xx": spans,
            "http.web.downstream_rq_total": spans if requests is None else requests,
            "http.web.tracing.random_sampling": spans}


def down(base: int, failures: int) -> dict[str, float]:
    """`up(base)`, then `failures` more traced requests whose reports found the collector down."""
    return {**up(base, base + failures), "tracing.zipkin.spans_sent": base + failures,
            "http.web.tracing.random_sampling": base + failures, "tracing.zipkin.reports_dropped": failures,
            "cluster.tracing_jaeger.upstream_cx_connect_fail": failures,
            "cluster.tracing_jaeger.upstream_rq_5xx": failures}


def now_after(flow: ProxyFlow) -> float:
    latest = flow.latest
    return (latest.at if latest else 0.0) + 1.0


def verdict(reports: Sequence[Mapping[str, float]], policies: ProxyPolicies | None = None) -> Verdict:
    flow = flow_of(*reports)
    return judge(policies if policies is not None else traced(), flow, now_after(flow))


CASES = [
    ("flowing", [up(0), up(3)], State.FLOWING, "the collector accepted 3 reports"),
    ("collector-down", [up(3), down(3, 2)], State.UNREACHABLE,
     "2 reports never reached the collector (2 connection failures)"),
    ("collector-500", [up(3), {**up(3, 5), "tracing.zipkin.spans_sent": 5, "http.web.tracing.random_sampling": 5,
                               "tracing.zipkin.reports_dropped": 2, "cluster.tracing_jaeger.upstream_rq_5xx": 2}],
     State.REJECTING, "the collector did not accept 2 reports (answered 2 with 4xx/5xx)"),
    ("back-after-restart", [up(3), down(3, 2), {**down(3, 2), "tracing.zipkin.spans_sent": 6,
                                                "tracing.zipkin.reports_sent": 4,
                                                "cluster.tracing_jaeger.upstream_rq_2xx": 4,
                                                "http.web.downstream_rq_total": 6}],
     State.FLOWING, "the collector accepted 1 report"),
    ("sampling-zero", [{}, {"http.web.downstream_rq_total": 4, "http.web.tracing.not_traceable": 4}],
     State.NO_SAMPLED, "4 requests, none sampled"),
    ("sampling-lowered-after-flowing", [up(0), up(3), {**up(3, 7), "http.web.tracing.not_traceable": 4}],
     State.NO_SAMPLED, "4 requests, none sampled"),
    ("no-traffic", [{}, {}], State.NO_TRAFFIC, "no request reached a traced listener in the last interval"),
    ("sparse-traffic-stays-flowing", [up(0), up(2), up(2), up(2)], State.FLOWING, "the collector accepted 2 reports"),
    ("outage-shows-from-the-first-failure", [up(0), up(2), up(2), down(2, 1)], State.UNREACHABLE,
     "1 report never reached the collector (1 connection failure)"),
    ("spans-buffered-by-envoy", [{}, {"http.web.downstream_rq_total": 2, "http.web.tracing.random_sampling": 2}],
     State.FLOWING, "2 requests sampled; Envoy has not flushed their spans yet"),
    ("no-healthy-endpoint", [{"cluster.tracing_jaeger.membership_healthy": 0,
                              "cluster.tracing_jaeger.membership_total": 0}] * 2,
     State.UNREACHABLE, ("the collector cluster has no healthy endpoint (its address does not resolve, or it fails "
                        "health checks)")),
]


@pytest.mark.parametrize(("reports", "state", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verdicts(reports: list[dict[str, float]], state: State, message: str) -> None:
    result = verdict(reports)
    assert (result.state, result.message, result.backend, result.backend_type, result.kind) == (
        state, message, "jaeger", "zipkin", "TrafficTrace")


def test_sampling_zero_names_the_sampling_the_policy_set() -> None:
    result = verdict([{}, {"http.web.downstream_rq_total": 4, "http.web.tracing.not_traceable": 4}],
                     traced(sampling=0.0))
    assert (result.state, result.message) == (State.NO_SAMPLED, "4 requests, none sampled (sampling 0%)")


def test_not_traced_names_every_policy_kind_when_none_targets_the_proxy() -> None:
    """What `inspect dataplane`'s Tracing line says too (api/inspect_views.py), whatever the stats show."""
    result = judge(untraced(), flow_of(up(0), up(3)), 11.0)
    assert result == Verdict(State.NOT_TRACED, "no MeshTrace or TrafficTrace targets this dataplane",
                             reason="no_matching_policy")


def test_not_traced_carries_the_reason_of_the_policy_that_targets_the_proxy() -> None:
    result = judge(traced(backend="jaeger", mesh_backend="zipkin"), flow_of(up(0), up(3)), 11.0)
    assert (result.state, result.kind, result.reason, result.backend) == (State.NOT_TRACED, "TrafficTrace",
                                                                         "backend_not_found", "jaeger")
    assert result.message.startswith("backend not found"), result.message


def test_no_stats_before_two_reports_and_when_reports_stop() -> None:
    assert judge(traced(), None, 1.0).state is State.NO_STATS
    one = judge(traced(), flow_of(up(0)), 1.0)
    assert (one.state, one.message, one.last_report) == (
        State.NO_STATS, "Envoy has sent one stats report; a verdict needs a second", 0.0)
    stale = judge(traced(), flow_of(up(0), up(1)), STEP + 16.0)
    assert (stale.state, stale.message) == (
        State.NO_STATS, ("no stats report for 16s (the Envoy stopped, or its stats sink cannot reach the control "
                        "plane)"))


def test_a_verdict_carries_rates_totals_and_when_spans_were_last_accepted() -> None:
    result = verdict([up(0), up(3), up(3)])
    assert (result.as_of, result.last_seen, result.last_report) == (STEP, STEP, 2 * STEP)
    assert result.rates is not None and result.rates.spans_sent == 18.0 and result.rates.accepted == 18.0
    assert result.totals is not None and result.totals.spans_sent == 3
