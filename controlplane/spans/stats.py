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

Pure: `read_report` turns the families of one report into `Counts`, ignoring everything it does not use
(its memo of stat names is a cache of a pure function, bounded).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Final, NamedTuple

from envoy.type.matcher.v3 import regex_pb2, string_pb2

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


def read_report(families: Iterable[bytes]) -> Counts:
    """Sum one stats-sink report (serialised `MetricFamily`s) into `Counts`; the ingest's hot loop.

    One report per proxy per flush interval, ~60 families each, most of them skipped: the name is read from
    the family's first bytes (protobuf writes fields in number order, and a family's name is field 1) and
    looked up in a memo, and only the families that count are decoded further (`_value`). Building ~60
    message objects per report instead cost about twice as much (76 vs 128-176 µs per report of 56 families,
    bench/RESULTS.md section 3).
    """
    values: dict[str, float] = {}
    memo, value_of = _FIELDS.get, _value  # locals: this loop runs ~60 times per report
    for raw in families:
        if raw[:1] != _NAME_TAG or len(raw) < 2:
            continue
        size = raw[1]
        pos = 2
        if size >= 0x80:
            size, pos = _varint(raw, 1)
        name = raw[pos:pos + size]
        field = memo(name, _UNKNOWN)
        if field is _UNKNOWN:
            field = _remember(name)
        if field is not None:
            values[field] = values.get(field, 0.0) + value_of(raw, pos + size)
    return Counts._make([*(values.get(name, 0.0) for name in COUNTERS), values.get("membership_healthy"),
                         values.get("membership_total"), "spans_sent" in values])


_NAME_TAG: Final = b"\x0a"
_UNKNOWN: Final = "?"
_MAX_MEMO: Final = 100_000
_FIELDS: dict[bytes, str | None] = {}
"""Stat name → `Counts` field (or None): a memo of the pure `_field_of`, bounded; names repeat every flush."""
_DOUBLE: Final = struct.Struct("<d")
_VALUE_TAGS: Final = frozenset({0x12, 0x1A, 0x2A})
"""Metric.gauge, Metric.counter, Metric.untyped: each a message whose field 1 is the double value."""


def _remember(name: bytes) -> str | None:
    if len(_FIELDS) >= _MAX_MEMO:
        _FIELDS.clear()
    field = _FIELDS[name] = _field_of(name.decode(errors="replace"))
    return field


def _value(raw: bytes, pos: int) -> float:
    """The value of the family whose fields after the name start at `pos`.

    Fast path for what Envoy writes, `type` (a 1-byte varint; a proto3 writer leaves out COUNTER, 0), then one
    `metric` of < 128 bytes holding just a counter or gauge `{value}` (and a timestamp):
    `[18 tt] 22 ll 1a|12 09 09 <double>`. Anything else (labels, a help text, longer lengths, a zero value
    left out by a proto3 writer) takes the general walk.
    """
    at = pos + 2 if pos < len(raw) and raw[pos] == 0x18 else pos
    if (len(raw) >= at + 13 and raw[at] == 0x22 and raw[at + 2] in _VALUE_TAGS and raw[at + 3] == 0x09
            and raw[at + 4] == 0x09):
        return float(_DOUBLE.unpack_from(raw, at + 5)[0])
    return _walk_value(raw, pos)


def _walk_value(raw: bytes, pos: int) -> float:
    """General wire walk: MetricFamily field 4 (the first metric) → gauge/counter/untyped → field 1 (double)."""
    family = _fields(raw, pos, len(raw))
    metric = family.get(4)
    if metric is None:
        return 0.0
    inner = _fields(raw, metric[0], metric[1])
    for number in (3, 2, 5):
        if number in inner:
            start, stop = inner[number]
            value = _fields(raw, start, stop).get(1)
            return float(_DOUBLE.unpack_from(raw, value[0])[0]) if value is not None else 0.0
    return 0.0


def _fields(raw: bytes, pos: int, end: int) -> dict[int, tuple[int, int]]:
    """Field number → (start, end) of its payload, first occurrence, for one message's bytes."""
    found: dict[int, tuple[int, int]] = {}
    while pos < end:
        tag, pos = _varint(raw, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            _, stop = _varint(raw, pos)
        elif wire_type == 1:
            stop = pos + 8
        elif wire_type == 2:
            size, pos = _varint(raw, pos)
            stop = pos + size
        elif wire_type == 5:
            stop = pos + 4
        else:
            return found  # groups: not in this schema
        found.setdefault(number, (pos, stop))
        pos = stop
    return found


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(raw):
        byte = raw[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    return result, pos


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
