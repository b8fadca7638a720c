"""Reading one stats-sink report: which of Envoy's stats count, and how they add up."""

from __future__ import annotations

from spans_helpers import families

from controlplane.spans.stats import Counts, read_report, stats_inclusion_list

# Names as Envoy 1.40 and 1.36 report them (controlplane/spans/stats.py says how they were measured).
ZIPKIN_UP = {
    "tracing.zipkin.spans_sent": 3, "tracing.zipkin.reports_sent": 3, "tracing.zipkin.timer_flushed": 3,
    "cluster.tracing_jaeger.upstream_rq_2xx": 3, "cluster.tracing_jaeger.internal.upstream_rq_2xx": 3,
    "cluster.tracing_jaeger.upstream_rq_202": 3, "cluster.tracing_jaeger.membership_healthy": 1,
    "cluster.tracing_jaeger.membership_total": 1, "cluster.tracing_jaeger.upstream_cx_total": 3,
    "http.localhost_8080.downstream_rq_total": 2, "http.backend.downstream_rq_total": 1,
    "http.localhost_8080.tracing.random_sampling": 1, "http.localhost_8080.tracing.service_forced": 1,
    "http.backend.tracing.not_traceable": 1, "http.admin.downstream_rq_total": 40,
    "cluster.backend.upstream_rq_2xx": 7, "listener_manager.lds.update_success": 2,
    "control_plane.connected_state": 1,
}


def test_a_report_sums_tracer_collector_and_listener_stats_and_ignores_the_rest() -> None:
    assert read_report(families(ZIPKIN_UP)) == Counts(
        spans_sent=3, reports_sent=3, rq_2xx=3, requests=3, sampled=2, unsampled=1,
        membership_healthy=1, membership_total=1, counts_spans=True,
    )


def test_collector_down_and_rejecting_counters_land_in_their_fields() -> None:
    down = {"tracing.zipkin.spans_sent": 3, "tracing.zipkin.reports_dropped": 3,
            "cluster.tracing_jaeger.upstream_cx_connect_fail": 3, "cluster.tracing_jaeger.upstream_rq_5xx": 3,
            "cluster.tracing_jaeger.upstream_cx_none_healthy": 1, "cluster.tracing_jaeger.upstream_rq_timeout": 1,
            "cluster.meshtrace:opentelemetry.upstream_rq_4xx": 2, "tracing.zipkin.reports_failed": 1,
            "tracing.datadog.reports_skipped_no_cluster": 4}
    assert read_report(families(down)) == Counts(
        spans_sent=3, reports_dropped=3, reports_failed=1, reports_skipped=4, cx_connect_fail=3, cx_none_healthy=1,
        rq_timeout=1, rq_4xx=2, rq_5xx=3, counts_spans=True,
    )


def test_a_datadog_report_counts_no_spans() -> None:
    report = read_report(families({"tracing.datadog.reports_sent": 1, "cluster.tracing_dd.upstream_rq_2xx": 1}))
    assert report == Counts(reports_sent=1, rq_2xx=1)


def test_the_inclusion_list_keeps_what_read_report_and_the_xds_checks_use() -> None:
    rendered = [m.prefix or m.safe_regex.regex for m in stats_inclusion_list()]
    assert rendered == [
        "tracing.", "control_plane.", "listener_manager.", "cluster_manager.",
        (r"^cluster\.(tracing|meshtrace)[_:][^.]*\.(upstream_cx_connect_fail|upstream_cx_none_healthy"
        r"|upstream_rq_timeout|upstream_rq_2xx|upstream_rq_4xx|upstream_rq_5xx|membership_healthy"
        r"|membership_total)$"),
        r"^http\.[^.]+\.(tracing\.[a-z_]+|downstream_rq_(total|active|completed))$",
        r"^cluster\.ads_cluster\.(ssl\.[a-z_]+|upstream_cx_connect_fail|upstream_cx_active)$",
    ]


def test_families_in_another_layout_are_decoded_by_the_general_walk() -> None:
    """Labels, a help text, a long name or a big metric leave the fast path; the value is the same."""
    from controlplane.resources.generated import envoy_metrics_pb2 as em

    long_prefix = "x" * 200
    cases = [
        em.MetricFamily(name="tracing.zipkin.spans_sent", help="spans", type=em.COUNTER,
                        metric=[em.Metric(counter=em.Counter(value=7))]),
        em.MetricFamily(name="tracing.zipkin.spans_sent", type=em.COUNTER, metric=[
            em.Metric(label=[em.LabelPair(name="a", value="b" * 200)], counter=em.Counter(value=7), timestamp_ms=5)]),
        em.MetricFamily(name=f"http.{long_prefix}.downstream_rq_total", type=em.COUNTER,
                        metric=[em.Metric(counter=em.Counter(value=7), timestamp_ms=1_700_000_000_000)]),
        em.MetricFamily(name="tracing.zipkin.spans_sent", type=em.UNTYPED, metric=[em.Metric(untyped=em.Untyped(value=7))]),
    ]
    reports = [read_report([case.SerializeToString()]) for case in cases]
    assert [(r.spans_sent, r.requests) for r in reports] == [(7, 0), (7, 0), (0, 7), (7, 0)]
    assert read_report([b"", b"\x12\x00", em.MetricFamily(name="tracing.zipkin.spans_sent").SerializeToString()]) \
        == Counts(counts_spans=True)
