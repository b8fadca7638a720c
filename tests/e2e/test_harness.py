"""Self-tests of the e2e support: prove the fakes speak the wire formats a real Envoy uses.

These run a real Envoy with a *static* configuration (no control plane), so a failure here points at
the harness or at our understanding of Envoy, never at the control plane. If the fake collectors
accepted something Envoy never sends, every tracing e2e test built on them would prove nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from controlplane.dataplane.bootstrap import ReconnectBackoff, build_bootstrap

from .support.collectors import DatadogAgent, ZipkinCollector
from .support.envoy import find_envoy, run_envoy
from .support.upstream import UpstreamApp
from .support.waiting import eventually, free_port

pytestmark = pytest.mark.e2e

T = TypeVar("T")
SERVICE = "web"
LISTENER = "inbound:127.0.0.1"


def _static_cluster(name: str, host: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _address(host, port)}}]},
            ],
        },
    }


def _address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _static_bootstrap(
    *, listener_port: int, upstream: UpstreamApp, tracer: dict[str, Any], tracing_cluster: dict[str, Any]
) -> dict[str, Any]:
    """One inbound HTTP listener traced by ``tracer`` (an HCM ``tracing.provider``), routing to ``upstream``.

    Shaped like Kuma's inbound listener (kuma-tracing.md §3.1-3.3), minus everything tracing does not need.
    """
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
        ".HttpConnectionManager",
        "stat_prefix": "inbound",
        "tracing": {"provider": tracer, "spawn_upstream_span": False},
        "route_config": {
            "name": "inbound",
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}],
                }
            ],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    return {
        "node": {"id": "default.web-1", "cluster": SERVICE},
        "static_resources": {
            "listeners": [
                {
                    "name": LISTENER,
                    "address": _address("127.0.0.1", listener_port),
                    "traffic_direction": "INBOUND",
                    "filter_chains": [
                        {
                            "filters": [
                                {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                            ]
                        }
                    ],
                }
            ],
            "clusters": [_static_cluster("upstream", upstream.host, upstream.port), tracing_cluster],
        },
        "admin": {"address": _address("127.0.0.1", 0)},
        "layered_runtime": {
            "layers": [{"name": "static_layer", "static_layer": {"tracing.zipkin.min_flush_spans": 1}}]
        },
    }


@pytest.fixture
async def upstream() -> AsyncIterator[UpstreamApp]:
    async with UpstreamApp("backend") as app:
        yield app


async def _send_request(port: int) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/hello") as response:
        assert response.status == 200, await response.text()
        return await response.text()


def _single(items: list[T]) -> T:
    assert len(items) == 1, items
    return items[0]


async def test_zipkin_spans_reach_collector_with_node_cluster_as_service(upstream: UpstreamApp) -> None:
    async with ZipkinCollector() as zipkin:
        tracer = {
            "name": "envoy.tracers.zipkin",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
                "collector_cluster": "tracing:zipkin",
                "collector_endpoint": zipkin.path,
                "collector_endpoint_version": "HTTP_JSON",
                "collector_hostname": zipkin.address,
            },
        }
        port = free_port()
        bootstrap = _static_bootstrap(
            listener_port=port,
            upstream=upstream,
            tracer=tracer,
            tracing_cluster=_static_cluster("tracing:zipkin", zipkin.host, zipkin.port),
        )
        async with run_envoy(bootstrap) as envoy:
            assert await envoy.wait_listener_ready(LISTENER) == port
            assert await _send_request(port) == "backend"
            span = _single(await zipkin.wait_for_spans(timeout=10))
            # min_flush_spans=1 flushed the span at once, not the 5 s flush timer.
            stats = await envoy.stats(r"^tracing\.zipkin\.")
            assert stats["tracing.zipkin.reports_sent"] == 1, stats
            assert stats["tracing.zipkin.timer_flushed"] == 0, stats

    report = zipkin.requests[0]
    assert (report.method, report.path, report.headers["Content-Type"]) == (
        "POST", "/api/v2/spans", "application/json"
    )  # fmt: skip
    assert report.headers["Host"] == zipkin.address  # collector_hostname, kuma-tracing.md §3.2
    seen = _single(upstream.requests).headers
    assert span["localEndpoint"]["serviceName"] == SERVICE  # node.cluster, kuma-tracing.md §3.4
    assert span["kind"] == "SERVER"
    assert span["traceId"] == seen["x-b3-traceid"]
    assert span["id"] == seen["x-b3-spanid"]  # spawn_upstream_span false: upstream sees our span
    assert seen["x-b3-sampled"] == "1"
    assert span["tags"]["guid:x-request-id"] == seen["x-request-id"]
    assert span["tags"]["node_id"] == "default.web-1"


async def test_datadog_spans_reach_agent_as_msgpack(upstream: UpstreamApp) -> None:
    async with DatadogAgent() as agent:
        tracer = {
            "name": "envoy.tracers.datadog",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.DatadogConfig",
                "collector_cluster": "tracing:datadog",
                "service_name": "web-dd",
            },
        }
        port = free_port()
        bootstrap = _static_bootstrap(
            listener_port=port,
            upstream=upstream,
            tracer=tracer,
            tracing_cluster=_static_cluster("tracing:datadog", agent.host, agent.port),
        )
        async with run_envoy(bootstrap) as envoy:
            await envoy.wait_listener_ready(LISTENER)
            assert await _send_request(port) == "backend"
            # dd-trace-cpp flushes on a fixed 2 s timer that DatadogConfig cannot shorten.
            span = _single(await agent.wait_for_spans(timeout=10))

    report = agent.requests[0]
    assert (report.method, report.path, report.headers["Content-Type"]) == (
        "POST", "/v0.4/traces", "application/msgpack"
    )  # fmt: skip
    assert report.headers["X-Datadog-Trace-Count"] == "1"
    assert agent.traces == [[span]]
    seen = _single(upstream.requests).headers
    assert (span["service"], span["name"], span["resource"]) == ("web-dd", "envoy.proxy", "ingress")
    assert span["trace_id"] == int(seen["x-datadog-trace-id"])
    assert span["span_id"] == int(seen["x-datadog-parent-id"])
    assert span["meta"]["guid:x-request-id"] == seen["x-request-id"]


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_built_bootstrap_passes_envoy_validate(tmp_path: Path, delta: bool) -> None:
    bootstrap = build_bootstrap(
        node_id="default.web-1",
        service=SERVICE,
        cp_host="localhost",
        cp_port=5678,
        delta=delta,
        runtime={"tracing.zipkin.min_flush_spans": 1},
    )
    config = tmp_path / "bootstrap.json"
    config.write_text(json.dumps(bootstrap))
    process = await asyncio.create_subprocess_exec(
        find_envoy(), "--mode", "validate", "-c", str(config), "--disable-hot-restart",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()


async def test_envoy_redials_unreachable_control_plane_with_configured_backoff() -> None:
    """The bootstrap runs for real: Envoy dials ads_cluster over and over, fast, while it is down.

    A TCP server that hangs up at once stands in for a control plane that keeps dying; with
    base 0.1 s / max 0.5 s Envoy must come back several times within a couple of seconds (the 30 s
    default maximum would make control-plane restart tests crawl).
    """
    attempts = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        cp_port = server.sockets[0].getsockname()[1]
        bootstrap = build_bootstrap(
            node_id="default.web-1",
            service=SERVICE,
            cp_host="127.0.0.1",
            cp_port=cp_port,
            reconnect_backoff=ReconnectBackoff(base_s=0.1, max_s=0.5),
        )
        async with run_envoy(bootstrap) as envoy:
            await eventually(lambda: attempts >= 6, timeout=5, message="Envoy did not redial the ADS server")
            assert await envoy.server_state() != "LIVE"  # no CDS/LDS yet: still initialising
            info = json.loads(await envoy.admin_get("/server_info"))
            assert info["node"]["cluster"] == SERVICE, info["node"]
        assert envoy.process.returncode is not None


async def test_run_envoy_reports_bad_config_with_log() -> None:
    bootstrap = {"static_resources": {"clusters": [{"name": "broken", "type": "NO_SUCH_TYPE"}]}}
    with pytest.raises(AssertionError, match="NO_SUCH_TYPE"):
        async with run_envoy(bootstrap):
            pass  # pragma: no cover


async def test_run_envoy_leaves_no_process_behind() -> None:
    async with run_envoy(build_bootstrap(node_id="n", service="s", cp_host="127.0.0.1", cp_port=1)) as envoy:
        pid = envoy.pid
        assert await envoy.server_state() in {"PRE_INITIALIZING", "INITIALIZING"}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_upstream_forwards_trace_headers_to_next_hop() -> None:
    async with UpstreamApp("backend") as backend, UpstreamApp("frontend", next_hop=backend.url) as frontend:
        headers = {"x-request-id": "r-1", "x-b3-traceid": "abc", "x-b3-spanid": "def", "x-unrelated": "no"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{frontend.url}/a?b=1", headers=headers) as response,
        ):
            assert (response.status, await response.text()) == (200, "frontend -> backend")
    forwarded = _single(backend.requests)
    assert forwarded.path == "/a?b=1"
    assert {name: forwarded.headers.get(name) for name in headers} == {**headers, "x-unrelated": None}
