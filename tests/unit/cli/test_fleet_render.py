"""`controlplane inspect dataplanes|dataplane|mesh` text: kumactl's table and the span-flow blocks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controlplane.cli import fleet
from controlplane.cli.inspect import render_dataplane

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("timestamp", "text"), [
    (None, "never"), ("2026-01-01T12:00:00Z", "0s"), ("2026-01-01T11:59:18Z", "42s"), ("2026-01-01T11:55:00Z", "5m"),
    ("2026-01-01T09:00:00Z", "3h"), ("2025-12-30T12:00:00Z", "2d"), ("2024-12-01T12:00:00Z", "1y"),
    ("2026-01-01T12:00:05Z", "never"),
])
def test_ago_is_kumactls(timestamp: str | None, text: str) -> None:
    assert fleet.ago(timestamp, NOW) == text


def subscription(connect: str, sent: int, rejected: int, disconnect: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"id": "1", "controlPlaneInstanceId": "cp", "connectTime": connect,
                               "status": {"lastUpdateTime": connect,
                                          "total": {"responsesSent": str(sent), "responsesRejected": str(rejected)}},
                               "version": {"envoy": {"version": "1.40.0"}}}
    if disconnect:
        body["disconnectTime"] = disconnect
    return body


def overview(name: str, subscriptions: list[dict[str, object]], tracing: dict[str, object]) -> dict[str, object]:
    return {"type": "DataplaneOverview", "mesh": "default", "name": name,
            "dataplane": {"networking": {"address": "127.0.0.1", "inbound": [
                {"port": 1, "tags": {"kuma.io/service": "web", "version": "v1"}},
                {"port": 2, "tags": {"kuma.io/service": "metrics", "version": "v1"}}]}},
            "dataplaneInsight": {"subscriptions": subscriptions, "metadata": {"tracing": tracing}}}


def test_the_dataplanes_table_has_kumactls_columns_plus_tracing_and_lists_ghosts() -> None:
    items = [
        overview("web-1", [subscription("2026-01-01T10:00:00Z", 10, 1, "2026-01-01T10:30:00Z"),
                           subscription("2026-01-01T11:59:00Z", 4, 0)],
                 {"verdict": "flowing", "backend": "jaeger"}),
        overview("web-2", [subscription("2026-01-01T11:00:00Z", 3, 0, "2026-01-01T11:58:00Z")],
                 {"verdict": "not traced", "message": "no TrafficTrace selects this dataplane"}),
    ]
    ghosts = [{"message": "Envoy `default.ghost` is connected but no Dataplane default/ghost exists",
               "connectTime": "2026-01-01T11:59:50Z"}]
    assert fleet.dataplanes_table(items, ghosts, NOW).splitlines() == [
        ("MESH      NAME    TAGS                                     STATUS    LAST CONNECTED AGO   "
        "LAST UPDATED AGO   TOTAL UPDATES   TOTAL ERRORS   ENVOY VERSION   TRACING"),
        ("default   web-1   kuma.io/service=metrics,web version=v1   Online    1m                   "
        "1m                 14              1              1.40.0          flowing (jaeger)"),
        ("default   web-2   kuma.io/service=metrics,web version=v1   Offline   1h                   "
        "1h                 3               0              1.40.0          off: no TrafficTrace selects this dataplane"),
        "Envoy `default.ghost` is connected but no Dataplane default/ghost exists (connected 10s ago)",
    ]


SPANS = {"verdict": "collector unreachable", "message": "3 reports never reached the collector (3 connection failures)",
         "backend": "jaeger", "type": "zipkin", "policyKind": "TrafficTrace",
         "perMinute": {"spansSent": 12.0, "accepted": 0.0, "dropped": 12.0, "failed": 0.0, "requests": 12.0,
                       "sampled": 12.0, "windowSeconds": 60.0},
         "lastSeen": "2026-01-01T11:59:00Z", "lastReport": "2026-01-01T11:59:58Z", "asOf": "2026-01-01T11:59:58Z"}


def test_inspect_dataplane_shows_a_spans_block_per_backend() -> None:
    policies = {"dataplane": {"mesh": "default", "name": "web-1"}, "listeners": [],
                "tracing": {"enabled": True, "trafficTrace": "all", "type": "zipkin", "backend": "jaeger",
                            "sampling": 100.0, "samplingSet": False}}
    text = render_dataplane(policies, {"connected": False, "types": {}}, {"spans": [SPANS]}, NOW)
    assert text.splitlines()[4:] == [
        "  Spans:",
        "    jaeger (zipkin): collector unreachable: 3 reports never reached the collector (3 connection failures)",
        "      per minute: spans sent 12, reports accepted 0, dropped 12, failed 0; requests 12, sampled 12",
        "      last seen 1m ago; last report 2s ago",
        "  xDS: not connected",
    ]
    off = {"verdict": "not traced", "message": "no TrafficTrace selects this dataplane"}
    assert fleet.spans_lines(off, NOW) == ["    not traced: no TrafficTrace selects this dataplane"]


def test_inspect_mesh_counts_proxies_per_verdict_and_backend() -> None:
    body = {"mesh": "default", "dataplanes": 4,
            "backends": [{"backend": "jaeger", "type": "zipkin", "proxies": {"flowing": 2, "collector unreachable": 1},
                          "perMinute": {"spansSent": 30.0, "accepted": 20.0, "dropped": 10.0, "failed": 0.0}}],
            "notTraced": [{"reason": "no TrafficTrace selects this dataplane", "proxies": 1}]}
    assert fleet.mesh_text(body, NOW).splitlines() == [
        "Mesh default",
        "  Dataplanes: 4",
        "  Backend jaeger (zipkin): 3 proxies: 2 flowing, 1 collector unreachable",
        "    per minute: spans sent 30, reports accepted 20, dropped 10, failed 0",
        "  Not traced: 1 (no TrafficTrace selects this dataplane)",
    ]
