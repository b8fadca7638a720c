"""One proxy's recent stats reports: deltas per flush interval, per-minute rates and running totals.

Envoy reports cumulative counters every flush interval; what matters is what changed. A `ProxyFlow` keeps the
last `HISTORY` reports (bounded: 32 × one small tuple per proxy, whatever the uptime), so the verdict can
look at the last interval and, when that one was quiet, at the ones before it, and rates can be taken over
the last minute. A counter that goes down means the Envoy restarted (or a new one took the node id): the
history restarts from zero at the previous report, so the first interval after a restart counts what the new
Envoy did, and no negative delta is ever produced.

Outcome of a delta's reports (`outcome`): accepted (the collector answered 2xx), dropped (never reached it:
connection failures, no healthy endpoint, timeouts, no collector cluster; Envoy answers the tracer with a
local 5xx for these, which is not the collector's), failed (the collector answered 4xx/5xx, or the tracer
saw the request fail). Pure: times are given, never read.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, cast

from controlplane.spans.stats import COUNTERS, Counts

HISTORY: Final = 32
RATE_WINDOW_S: Final = 60.0
_N: Final = len(COUNTERS)


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    counts: Counts


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of the reports (batches of spans) of one delta."""

    accepted: float
    dropped: float
    failed: float

    @property
    def reports(self) -> float:
        return self.accepted + self.dropped + self.failed


def counters(counts: Counts) -> tuple[float, ...]:
    """The cumulative fields of `counts` (`COUNTERS`), in order."""
    return cast(tuple[float, ...], counts[:_N])


def with_counters(values: Iterable[float], gauges: Counts) -> Counts:
    """`gauges` (its gauges and flags) with `values` as its counters."""
    return Counts._make([*values, gauges.membership_healthy, gauges.membership_total, gauges.counts_spans])


def delta(newer: Counts, older: Counts) -> Counts:
    """Counter differences (gauges and flags from `newer`). `map` with `operator`: once per report per proxy."""
    return with_counters(map(operator.sub, counters(newer), counters(older)), newer)


def is_reset(newer: Counts, older: Counts) -> bool:
    return any(map(operator.lt, counters(newer), counters(older)))


def outcome(d: Counts) -> Outcome:
    """Accepted, dropped and failed reports of a delta (see the module docstring).

    The collector cluster's counts are the ground truth when present (every tracer has one); a tracer's own
    `reports_dropped` covers both kinds of failure (zipkin drops a report on any non-202 answer), so it only
    adds what the cluster does not explain.
    """
    unreachable = d.cx_connect_fail + d.cx_none_healthy + d.rq_timeout + d.reports_skipped
    rejected = max(0.0, d.rq_4xx + d.rq_5xx - d.cx_connect_fail - d.cx_none_healthy - d.rq_timeout)
    failed = rejected + d.reports_failed
    dropped = max(unreachable, d.reports_dropped - rejected)
    return Outcome(max(d.rq_2xx, d.reports_sent), dropped, failed)


@dataclass(frozen=True, slots=True)
class Rates:
    """Per-minute rates over `window_s` seconds of reports (the last minute, or less history)."""

    window_s: float
    spans_sent: float
    accepted: float
    dropped: float
    failed: float
    requests: float
    sampled: float


class ProxyFlow:
    """A proxy's last reports; `record` each one as it arrives."""

    __slots__ = ("last_accepted_at", "samples", "totals")

    def __init__(self) -> None:
        self.samples: deque[Sample] = deque(maxlen=HISTORY)
        self.totals = Counts()
        """Sum of every delta recorded (what the proxy did while the control plane watched)."""
        self.last_accepted_at: float | None = None
        """When a report last showed the collector accepting spans (or spans leaving, for a tracer whose
        collector answers nothing the stats can see)."""

    def record(self, at: float, counts: Counts) -> Counts | None:
        """Add a report; return its delta to the previous one (None for the first)."""
        if self.samples and is_reset(counts, self.samples[-1].counts):
            previous_at = self.samples[-1].at
            self.samples.clear()
            self.samples.append(Sample(previous_at, Counts()))
        previous = self.samples[-1] if self.samples else None
        self.samples.append(Sample(at, counts))
        if previous is None:
            return None
        d = delta(counts, previous.counts)
        self.totals = with_counters(map(operator.add, counters(self.totals), counters(d)), counts)
        result = outcome(d)
        if result.accepted > 0 or (d.spans_sent > 0 and not result.reports):
            self.last_accepted_at = at
        return d

    @property
    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def interval(self) -> float | None:
        """Seconds between the last two reports (the flush interval, as the Envoy runs it)."""
        if len(self.samples) < 2:
            return None
        return self.samples[-1].at - self.samples[-2].at

    def intervals(self, since: float) -> Iterator[tuple[float, Counts]]:
        """(end time, delta) of each interval ending after `since`, newest first."""
        samples = list(self.samples)
        for older, newer in zip(reversed(samples[:-1]), reversed(samples[1:]), strict=True):
            if newer.at <= since:
                return
            yield newer.at, delta(newer.counts, older.counts)

    def rates(self, window_s: float = RATE_WINDOW_S) -> Rates | None:
        """Per-minute rates over the reports of the last `window_s` seconds; None before two reports."""
        latest = self.latest
        if latest is None or len(self.samples) < 2:
            return None
        oldest = next((s for s in self.samples if s.at >= latest.at - window_s), self.samples[0])
        if oldest is latest:
            oldest = self.samples[-2]
        span = latest.at - oldest.at
        if span <= 0:
            return None
        d = delta(latest.counts, oldest.counts)
        result = outcome(d)
        scale = 60.0 / span
        return Rates(span, d.spans_sent * scale, result.accepted * scale, result.dropped * scale,
                     result.failed * scale, d.requests * scale, d.sampled * scale)
