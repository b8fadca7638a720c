"""Logging and metrics set-up. Only the CLI calls `configure_logging`; nothing is configured at import.

Metrics live in one `Metrics` object built per process (not module-level globals), so tests can run several
control planes in one interpreter without colliding in prometheus-client's default registry.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Final

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LOG_FORMATS: Final = ("console", "json")
_TIME_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BYTE_BUCKETS: Final = (1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0)


def configure_logging(fmt: str = "console", level: str = "info") -> None:
    """structlog to stderr, console (human) or JSON lines (machines); stdlib logging routed the same way."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")


@dataclass
class Metrics:
    """Every Prometheus metric of the process, registered in its own registry (served on /metrics)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.api_requests = Counter("api_requests", "HTTP API requests", ["method", "route", "status"], registry=r)
        self.streams_active = Gauge("xds_streams_active", "Connected ADS streams", ["variant"], registry=r)
        self.ghost_nodes = Gauge("xds_nodes_without_dataplane",
                                 "Connected ADS nodes whose node id names no Dataplane", registry=r)
        self.requests = Counter(
            "xds_requests", "xDS requests received", ["type_url", "kind"], registry=r
        )
        self.responses = Counter("xds_responses", "xDS responses sent", ["type_url"], registry=r)
        self.response_bytes = Histogram(
            "xds_response_bytes", "Size of xDS responses", ["type_url"], buckets=_BYTE_BUCKETS, registry=r
        )
        self.nacks = Counter("xds_nacks", "NACKs received from proxies", ["type_url"], registry=r)
        self.generation_seconds = Histogram(
            "xds_generation_seconds", "Time to generate one proxy's snapshot", ["result"],
            buckets=_TIME_BUCKETS, registry=r,
        )
        self.convergence_seconds = Histogram(
            "xds_convergence_seconds", "Store change accepted -> proxy ACK of the resulting version",
            ["type_url"], buckets=_TIME_BUCKETS, registry=r,
        )
        self.xds_auth_failures = Counter(
            "xds_auth_failures", "ADS streams refused by dataplane authentication", ["reason"], registry=r
        )
        self.api_auth_failures = Counter(
            "api_auth_failures", "HTTP API writes refused by authentication", ["reason"], registry=r
        )
        self.loop_lag_seconds = Histogram(
            "asyncio_loop_lag_seconds", "How late a task asking to wake every 50 ms was woken",
            buckets=_TIME_BUCKETS, registry=r,
        )
        self.tracing_spans = Counter(
            "tracing_spans", "Spans Envoys reported, by what became of them (xds/span_flows.py)",
            ["mesh", "backend", "result"], registry=r,
        )
        self.stats_reports = Counter("stats_reports", "Stats reports received from Envoys' stats sinks", registry=r)
        self.snapshots_rejected = Counter(
            "xds_snapshots_rejected", "Snapshots not published because they were inconsistent", registry=r
        )
