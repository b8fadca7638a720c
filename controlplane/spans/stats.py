"""Which Envoy stats the control plane needs to tell whether spans flow, and how one report is read.

Envoy's stats sink (`envoy.stat_sinks.metrics_service`) sends every stat Envoy has used, each flush: a
sidecar with a little traffic uses ~250 (measured, Envoy 1.40), thousands with many clusters. So the
bootstrap keeps only what is listed here (`stats_config.stats_matcher`, an inclusion list: Envoy has no
per-sink filter for this sink), which is also all that flows:

* the tracers' report counters, `tracing.<tracer>.*`: zipkin `spans_sent`, `reports_sent` (202 only),
  `reports_dropped` (any other answer, or none), `reports_failed`, `reports_skipped_no_cluster`; datadog the
  same without `spans_sent`; opentelemetry only `spans_sent` and `timer_flushed` (measured with Envoy 1.36
  and 1.40: an OTLP/gRPC collector's error status leaves no trace in any counter);
* the collector clusters' outcome counters and health, `cluster.<collector>.*` (`tracing:<backend>` of a
  TrafficTrace, `meshtrace:<provider>` of a MeshTrace, whose stat names are sanitised to `tracing_<backend>`
  by `alt_stat_name` or keep their `:`): connection failures, no healthy host, timeouts, 2xx/4xx/5xx
  answers, healthy and total members. These are what tells an unreachable collector (connection failures;
  Envoy answers the tracer itself with a local 503) from one that rejects reports (its own 4xx/5xx);
* the HTTP connection managers' tracing decisions and request totals, `http.<stat_prefix>.tracing.*` and
  `downstream_rq_total` (plus `downstream_rq_active`/`_completed`), to tell "no traffic" from "traffic, but
  sampling said no";
* a small operational core that operators and the xDS health checks read in Envoy's admin `/stats`:
  `control_plane.*`, `listener_manager.*`, `cluster_manager.*` and the ADS cluster's TLS and connection
  failures. Everything else is not created at all (`--envoy-stats all` keeps Envoy's default).

Pure: `read_report` turns the families of one report into `Counts`, ignoring everything it does not use.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

from envoy.type.matcher.v3 import regex_pb2, string_pb2

from controlplane.resources.generated import envoy_metrics_pb2

COLLECTOR_CLUSTER_PREFIXES: Final = ("tracing", "meshtrace")
"""How collector clusters are named: `tracing:<backend>` (TrafficTrace), `meshtrace:<provider>` (MeshTrace)."""
CLUSTER_STATS: Final = ("upstream_cx_connect_fail", "upstream_cx_none_healthy", "upstream_rq_timeout",
                        "upstream_rq_2xx", "upstream_rq_4xx", "upstream_rq_5xx", "membership_healthy",
                        "membership_total")
TRACER_STATS: Final = ("spans_sent", "reports_sent", "reports_dropped", "reports_failed",
                       "reports_skipped_no_cluster")
SAMPLED_DECISIONS: Final = ("random_sampling", "service_forced", "client_enabled")
"""HCM tracing decisions that start a span; `not_traceable` and `health_check` do not."""
UNSAMPLED_DECISIONS: Final = ("not_traceable", "health_check")
ADMIN_STAT_PREFIX: Final = "admin"
"""The admin listener's HCM (`http.admin.*`): the control plane's own admin reads must not count as traffic."""

_OPERATIONS_PREFIXES: Final = ("control_plane.", "listener_manager.", "cluster_manager.")
_COLLECTOR: Final = "|".join(COLLECTOR_CLUSTER_PREFIXES)
_REGEXES: Final = (
    rf"^cluster\.({_COLLECTOR})[_:][^.]*\.({'|'.join(CLUSTER_STATS)})$",
    r"^http\.[^.]+\.(tracing\.[a-z_]+|downstream_rq_(total|active|completed))$",
    r"^cluster\.ads_cluster\.(ssl\.[a-z_]+|upstream_cx_connect_fail|upstream_cx_active)$",
)


def stats_inclusion_list() -> list[string_pb2.StringMatcher]:
    """The bootstrap's `stats_config.stats_matcher.inclusion_list` (see the module docstring)."""
    matchers = [string_pb2.StringMatcher(prefix=prefix) for prefix in ("tracing.", *_OPERATIONS_PREFIXES)]
    matchers += [string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=regex)) for regex in _REGEXES]
    return matchers


class Counts(NamedTuple):
    """What one report says, summed over the proxy's tracers, collector clusters and HTTP listeners.

    Counters are Envoy's cumulative values; `membership_*` are gauges, None when the report had no
    collector cluster. A proxy traces to one backend at a time (one tracer, one collector cluster), so
    summing loses nothing; a removed collector cluster's stats vanish from the next report.
    """

    spans_sent: float = 0.0
    reports_sent: float = 0.0
    reports_dropped: float = 0.0
    reports_failed: float = 0.0
    reports_skipped: float = 0.0
    cx_connect_fail: float = 0.0
    cx_none_healthy: float = 0.0
    rq_timeout: float = 0.0
    rq_2xx: float = 0.0
    rq_4xx: float = 0.0
    rq_5xx: float = 0.0
    requests: float = 0.0
    sampled: float = 0.0
    unsampled: float = 0.0
    membership_healthy: float | None = None
    membership_total: float | None = None
    counts_spans: bool = False
    """A tracer of the proxy counts spans (`spans_sent`); datadog's counts only reports."""


COUNTERS: Final = Counts._fields[:14]
"""The cumulative fields of `Counts`, in order (deltas are taken over these)."""

_TRACER_FIELD: Final = {"spans_sent": "spans_sent", "reports_sent": "reports_sent",
                        "reports_dropped": "reports_dropped", "reports_failed": "reports_failed",
                        "reports_skipped_no_cluster": "reports_skipped"}
_CLUSTER_FIELD: Final = {"upstream_cx_connect_fail": "cx_connect_fail", "upstream_cx_none_healthy": "cx_none_healthy",
                         "upstream_rq_timeout": "rq_timeout", "upstream_rq_2xx": "rq_2xx", "upstream_rq_4xx": "rq_4xx",
                         "upstream_rq_5xx": "rq_5xx", "membership_healthy": "membership_healthy",
                         "membership_total": "membership_total"}
_COLLECTOR_STARTS: Final = tuple(f"cluster.{p}{sep}" for p in COLLECTOR_CLUSTER_PREFIXES for sep in "_:")


def read_report(families: Iterable[envoy_metrics_pb2.MetricFamily]) -> Counts:
    """Sum one stats-sink report into `Counts`; stats it does not know are skipped (cheaply: one report per
    proxy every flush interval, so this is the ingest's hot loop)."""
    values: dict[str, float] = {}
    for family in families:
        field = _field_of(family.name)
        if field is None or not family.metric:
            continue
        metric = family.metric[0]
        value = metric.gauge.value if family.type == envoy_metrics_pb2.GAUGE else metric.counter.value
        values[field] = values.get(field, 0.0) + value
    return Counts._make([*(values.get(name, 0.0) for name in COUNTERS), values.get("membership_healthy"),
                         values.get("membership_total"), "spans_sent" in values])


def _field_of(name: str) -> str | None:
    """The `Counts` field a stat adds to, or None."""
    if name.startswith("tracing."):
        return _TRACER_FIELD.get(name.rpartition(".")[2])
    if name.startswith("http."):
        prefix, _, stat = name[5:].partition(".")
        if prefix == ADMIN_STAT_PREFIX:
            return None
        if stat == "downstream_rq_total":
            return "requests"
        if stat.startswith("tracing."):
            decision = stat[8:]
            return "sampled" if decision in SAMPLED_DECISIONS else "unsampled" if decision in UNSAMPLED_DECISIONS else None
        return None
    if name.startswith(_COLLECTOR_STARTS):
        _, _, stat = name[8:].partition(".")  # collector stat names hold no dot (alt_stat_name, provider names)
        return _CLUSTER_FIELD.get(stat)
    return None
