"""Policy evaluation: which TrafficTrace applies to a Dataplane, which backend it resolves to, and which
protocol a destination speaks. Pure functions over resources; no store, no I/O, no logging.
"""

from controlplane.policy.matching import SelectorRank, match_tags, rank_selector, select_traffic_trace
from controlplane.policy.protocol import Protocol, infer_protocol, parse_protocol
from controlplane.policy.tracing import (
    ResolutionReason,
    TracingResolution,
    datadog_config,
    resolve_tracing,
    zipkin_config,
)

__all__ = [
    "Protocol",
    "ResolutionReason",
    "SelectorRank",
    "TracingResolution",
    "datadog_config",
    "infer_protocol",
    "match_tags",
    "parse_protocol",
    "rank_selector",
    "resolve_tracing",
    "select_traffic_trace",
    "zipkin_config",
]
