"""The verdict on one proxy's tracing: are its spans flowing, and if not, why (pure functions).

Inputs are what the control plane decided (every policy plugin's `Decision`, generic over policy kinds:
TrafficTrace, MeshTrace) and what the proxy's own Envoy reported (`ProxyFlow`). In order:

1. `not traced`: no decision yields tracing; the message is the policy's reason ("no TrafficTrace selects
   this dataplane", "backend not found: ...").
2. `no stats`: fewer than two reports, or none for `STALE_INTERVALS` flush intervals (at least
   `MIN_STALE_S`): the Envoy is gone, runs without the control plane's stats sink, or cannot reach it.
3. `collector unreachable`, static: the collector cluster has no healthy member (its host does not resolve,
   or health checks fail), whatever the traffic.
4. The newest interval (report to report) in which the tracer did something decides, looking back at most
   `LOOKBACK_S`: any report accepted → `flowing` (a collector that just came back, or that fails now and
   then, is flowing); else connection failures, no healthy host, timeouts or dropped reports → `collector
   unreachable`; else 4xx/5xx answers or failed reports → `collector rejecting`; else spans left with no
   answer yet → `flowing`. An interval with requests but no sampled one decides too → `no sampled requests`
   (so lowering sampling to 0 shows at once, not after the look-back).
5. Nothing decided: no requests in the last interval → `no traffic`; requests were sampled but Envoy has
   not flushed their spans yet (zipkin batches 5 or waits for its 5 s timer) → `flowing`, saying so.

Looking back past quiet intervals keeps a proxy with sparse traffic `flowing` instead of flickering; the
newest active interval, not the best one, decides, so an outage shows from its first failed report.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from controlplane.policies.plugin import Decision
from controlplane.policies.plugins import ProxyPolicies
from controlplane.spans.flow import ProxyFlow, Rates, outcome
from controlplane.spans.stats import Counts
from controlplane.tracing.backend import Sampling

STALE_INTERVALS: Final = 3
MIN_STALE_S: Final = 15.0
LOOKBACK_S: Final = 60.0


class State(enum.Enum):
    FLOWING = "flowing"
    UNREACHABLE = "collector unreachable"
    REJECTING = "collector rejecting"
    NO_SAMPLED = "no sampled requests"
    NO_TRAFFIC = "no traffic"
    NOT_TRACED = "not traced"
    NO_STATS = "no stats"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verdict on one proxy, with the numbers behind it.

    `backend`/`backend_type`/`kind` name the tracing that applies (None when not traced); `reason` is the
    policy's reason code when not traced. `as_of` is when the deciding interval ended (None: no interval
    decided). `last_seen` is when the collector last accepted spans; `last_report` when Envoy last reported.
    """

    state: State
    message: str
    backend: str | None = None
    backend_type: str | None = None
    kind: str | None = None
    reason: str | None = None
    rates: Rates | None = None
    totals: Counts | None = None
    as_of: float | None = None
    last_seen: float | None = None
    last_report: float | None = None

    @property
    def flowing(self) -> bool:
        return self.state is State.FLOWING


def judge(policies: ProxyPolicies | None, flow: ProxyFlow | None, now: float) -> Verdict:
    """The verdict on a proxy at `now` (see the module docstring for the rules, in order)."""
    tracing = policies.tracing if policies is not None else None
    if policies is None or tracing is None or policies.applied is None:
        return _not_traced(policies)
    named = Verdict(State.NO_STATS, "", backend=tracing.backend.name, backend_type=tracing.backend.type_name,
                    kind=policies.applied.kind)
    latest = flow.latest if flow is not None else None
    if flow is None or latest is None or len(flow.samples) < 2:
        message = ("Envoy has sent one stats report; a verdict needs a second" if latest is not None
                   else "Envoy has not reported its stats (it runs without the control plane's stats sink, "
                        "or has not flushed them yet)")
        return replace(named, message=message, last_report=latest.at if latest else None)
    base = replace(named, rates=flow.rates(), totals=flow.totals, last_seen=flow.last_accepted_at,
                   last_report=latest.at)
    quiet = now - latest.at
    if quiet > max(STALE_INTERVALS * (flow.interval() or 0.0), MIN_STALE_S):
        return replace(base, message=f"no stats report for {quiet:.0f}s (the Envoy stopped, or its stats sink "
                                     "cannot reach the control plane)")
    counts = latest.counts
    if counts.membership_total is not None and not counts.membership_healthy:
        return replace(base, state=State.UNREACHABLE, as_of=latest.at,
                       message="the collector cluster has no healthy endpoint (its address does not resolve, "
                               "or it fails health checks)")
    for at, d in flow.intervals(latest.at - LOOKBACK_S):
        decided = classify(d)
        if decided is not None:
            state, message = decided
            if state is State.NO_SAMPLED:
                message += _sampling(tracing.sampling)
            return replace(base, state=state, message=message, as_of=at)
    _, last = next(flow.intervals(float("-inf")))
    if not last.requests:
        return replace(base, state=State.NO_TRAFFIC,
                       message="no request reached a traced listener in the last interval")
    return replace(base, state=State.FLOWING,
                   message=f"{_n(last.sampled, 'request')} sampled; Envoy has not flushed their spans yet")


def classify(d: Counts) -> tuple[State, str] | None:
    """What one interval's delta says, or None when the tracer did nothing and sampling decided nothing."""
    result = outcome(d)
    if result.accepted:
        lost = f"; {result.dropped + result.failed:.0f} not accepted" if result.dropped or result.failed else ""
        return State.FLOWING, f"the collector accepted {_n(result.accepted, 'report')}{lost}"
    if result.dropped:
        causes = [_n(value, label) for value, label in (
            (d.cx_connect_fail, "connection failure"), (d.cx_none_healthy, "report with no healthy endpoint"),
            (d.rq_timeout, "timeout"), (d.reports_skipped, "report without a collector cluster")) if value]
        detail = ", ".join(causes) or f"{_n(d.reports_dropped, 'report')} dropped"
        return State.UNREACHABLE, f"{_n(result.dropped, 'report')} never reached the collector ({detail})"
    if result.failed:
        answered = d.rq_4xx + d.rq_5xx
        detail = f"answered {answered:.0f} with 4xx/5xx" if answered else f"{_n(d.reports_failed, 'request')} failed"
        return State.REJECTING, f"the collector did not accept {_n(result.failed, 'report')} ({detail})"
    if d.spans_sent:
        return State.FLOWING, f"{_n(d.spans_sent, 'span')} sent, no answer from the collector yet"
    if d.requests and not d.sampled:
        return State.NO_SAMPLED, f"{_n(d.requests, 'request')}, none sampled"
    return None


def _n(count: float, noun: str) -> str:
    """`1 report`, `3 reports`."""
    return f"{count:.0f} {noun}" if round(count) == 1 else f"{count:.0f} {noun}s"


def _sampling(sampling: Sampling) -> str:
    """`(sampling 0%)`: the percentages the policy set (Envoy's default for an unset one is 100)."""
    set_ = [f"{label}{value:g}%" for label, value in (("", sampling.overall), ("client ", sampling.client),
                                                       ("random ", sampling.random)) if value is not None]
    return f" (sampling {', '.join(set_)})" if set_ else ""


def _not_traced(policies: ProxyPolicies | None) -> Verdict:
    if policies is None:
        return Verdict(State.NOT_TRACED, "the control plane has not generated this dataplane's configuration yet",
                       reason="pending")
    decision: Decision | None = policies.applied
    if decision is None and len(policies.decisions) > 1:
        return Verdict(State.NOT_TRACED, untargeted_message(policies.decisions), reason=NO_MATCHING_POLICY)
    decision = decision or (policies.decisions[0] if policies.decisions else None)
    if decision is None:
        return Verdict(State.NOT_TRACED, "no tracing policy kind is installed", reason="no_policy")
    return Verdict(State.NOT_TRACED, decision.message or "tracing is off", kind=decision.kind,
                   reason=decision.reason or None, backend=decision.backend or None)


NO_MATCHING_POLICY: Final = "no_matching_policy"


def untargeted_message(decisions: Sequence[Decision]) -> str:
    """Why a proxy no policy of any kind targets is not traced (`inspect dataplane` says the same)."""
    return f"no {' or '.join(d.kind for d in decisions)} targets this dataplane"
