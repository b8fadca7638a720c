"""`render_trace`: a zipkin trace from the demo's three sidecars, drawn as a tree (pure function)."""

from __future__ import annotations

from controlplane.demo.tree import Span, render_trace, trace_services


def _span(service: str, kind: str, span_id: str, parent: str | None, start: int, duration: int,
          status: str = "200", **tags: str) -> Span:
    span: dict[str, object] = {
        "traceId": "4bf92f3577b34da6", "id": span_id, "kind": kind, "name": f"{service}.mesh:80",
        "timestamp": start, "duration": duration, "localEndpoint": {"serviceName": service},
        "tags": {"http.status_code": status, **tags},
    }
    if parent is not None:
        span["parentId"] = parent
    return span


# Envoy shares span context: caller's CLIENT span and callee's SERVER span have the same id.
CHAIN = [
    _span("db", "SERVER", "d", "c", 1_000_300, 400),  # arrives first: it finishes first
    _span("backend", "CLIENT", "d", "c", 1_000_200, 900),
    _span("backend", "SERVER", "c", "s", 1_000_100, 1_500),
    _span("frontend", "CLIENT", "c", "s", 1_000_050, 2_100),
    _span("frontend", "SERVER", "s", None, 1_000_000, 3_250),
]


def test_shared_span_ids_nest_client_server_pairs() -> None:
    assert render_trace(CHAIN).splitlines() == [
        "trace 4bf92f3577b34da6  3 services (backend, db, frontend), 5 spans, 3.2 ms",
        "└─ frontend  server frontend.mesh:80  3.2 ms  200",
        "   └─ frontend  client frontend.mesh:80  2.1 ms  200",
        "      └─ backend  server backend.mesh:80  1.5 ms  200",
        "         └─ backend  client backend.mesh:80  0.9 ms  200",
        "            └─ db  server db.mesh:80  0.4 ms  200",
    ]


def test_siblings_by_start_time_errors_and_orphans() -> None:
    spans = [
        _span("web", "SERVER", "r", None, 10, 2_500_000, "503", error="true"),
        _span("web", "CLIENT", "b", "r", 30, 1_000, "503", error="true"),
        _span("web", "CLIENT", "a", "r", 20, 2_000),
        _span("cache", "SERVER", "x", "missing", 40, 10),  # its parent never arrived: shown at the top
    ]
    assert render_trace(spans).splitlines() == [
        "trace 4bf92f3577b34da6  2 services (cache, web), 4 spans, 2.50 s",
        "├─ web  server web.mesh:80  2.50 s  503 error",
        "│  ├─ web  client web.mesh:80  2.0 ms  200",
        "│  └─ web  client web.mesh:80  1.0 ms  503 error",
        "└─ cache  server cache.mesh:80  0.0 ms  200",
    ]


def test_malformed_spans_still_render() -> None:
    assert render_trace([]) == "trace (no spans)"
    cycle = [{"traceId": "t", "id": "a", "parentId": "b"}, {"traceId": "t", "id": "b", "parentId": "a"}]
    assert render_trace(cycle).splitlines() == [
        "trace t  1 services (?), 2 spans, -", "├─ ?  span ?  -  -", "└─ ?  span ?  -  -",
    ]


def test_trace_services() -> None:
    assert trace_services(CHAIN) == {"frontend", "backend", "db"}
