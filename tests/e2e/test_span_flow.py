"""Are spans flowing? Real Envoys report their tracing counters to the control plane's stats sink, and the
verdict follows what really happens to the spans: a collector that takes them, one that is stopped and
started again, one that answers 500, sampling 0 with traffic; Prometheus shows bounded series.

The usual two-proxy topology (support/plane.py); every Envoy flushes its stats every `STATS_FLUSH_S`
(conftest). Deadlines are counted in flush intervals, as the issue states them, plus the time one request
takes; waiting is on conditions, never on a fixed sleep.
"""

from __future__ import annotations

import re
from typing import Any, Final

import pytest

from .conftest import STATS_FLUSH_S
from .support.collectors import DatadogAgent, OtlpCollector, ZipkinCollector
from .support.plane import Api, Sidecar, StartSidecar, Topology, send, wait_streams_done
from .support.waiting import eventually
from .test_meshtrace import MESH, otel_meshtrace
from .test_tracing import (
    DOCS_DATADOG_MESH,
    DOCS_TRAFFIC_TRACE,
    start_topology,
    traffic_trace,
    yaml_doc,
    zipkin_mesh,
)

pytestmark = pytest.mark.e2e

TWO_INTERVALS_S: Final = 2 * STATS_FLUSH_S + 1.0
"""Two flush intervals, plus a second for the report to be read and the request to finish."""
SETTLE_S: Final = 15.0


async def spans_of(api: Api, dataplane: str) -> dict[str, Any]:
    body = await api.get(f"/meshes/default/dataplanes/{dataplane}/spans")
    (block,) = body["spans"]
    assert isinstance(block, dict)
    return block


async def wait_verdict(api: Api, dataplane: str, verdict: str, timeout: float) -> dict[str, Any]:
    """Wait until the dataplane's verdict is `verdict`; return its Spans block."""
    seen: list[dict[str, Any]] = []

    async def reached() -> bool:
        seen.append(await spans_of(api, dataplane))
        return bool(seen[-1]["verdict"] == verdict)

    await eventually(reached, timeout=timeout, interval=0.1,
                     message=f"{dataplane} never reached {verdict!r}; last: {seen[-1] if seen else None}")
    return seen[-1]


async def reporting(api: Api, *sidecars: Sidecar) -> None:
    """Both Envoys have reported twice (a verdict exists): traffic sent from now on is in the totals."""
    for sidecar in sidecars:
        await wait_verdict(api, sidecar.name, "no traffic", SETTLE_S)


async def traffic_until(api: Api, url: str, dataplane: str, verdict: str, timeout: float) -> dict[str, Any]:
    """One request per poll until the verdict is reached (what a real service's steady traffic does)."""
    seen: list[dict[str, Any]] = []

    async def reached() -> bool:
        await send(url, expect="backend")
        seen.append(await spans_of(api, dataplane))
        return bool(seen[-1]["verdict"] == verdict)

    await eventually(reached, timeout=timeout, interval=0.2,
                     message=f"{dataplane} never reached {verdict!r} under traffic; last: {seen[-1] if seen else None}")
    return seen[-1]


@pytest.mark.envoy_versions  # the tracer and cluster stats the verdict reads, in the oldest supported Envoy too
async def test_collector_up_flowing_with_the_collectors_counts(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with ZipkinCollector() as zipkin:
        backend, web = await start_topology(api, topology, sidecars, zipkin_mesh(zipkin.url),
                                            yaml_doc(DOCS_TRAFFIC_TRACE))
        await reporting(api, web, backend)
        await send(topology.outbound_url, 5, expect="backend")
        await zipkin.wait_for_spans(count=10)
        await wait_streams_done(web, backend)
        for sidecar in (web, backend):
            block = await wait_verdict(api, sidecar.name, "flowing", TWO_INTERVALS_S)
            assert (block["backend"], block["type"], block["policyKind"]) == ("jaeger-collector", "zipkin",
                                                                             "TrafficTrace")

        async def totals_match() -> bool:
            sent = [(await spans_of(api, s.name))["totals"]["spansSent"] for s in (web, backend)]
            accepted = [(await spans_of(api, s.name))["totals"]["accepted"] for s in (web, backend)]
            # min_flush_spans 1: a batch is one span, so "±1 batch" is ±1 span per proxy.
            return abs(sum(sent) - len(zipkin.spans)) <= 2 and abs(sum(accepted) - len(zipkin.requests)) <= 2

        await eventually(totals_match, timeout=TWO_INTERVALS_S, message="the totals never matched the collector")
        block = await spans_of(api, web.name)
        assert block["lastSeen"] is not None and block["perMinute"]["spansSent"] > 0


@pytest.mark.envoy_versions
async def test_collector_stopped_is_unreachable_then_flowing_again_after_restart(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with ZipkinCollector() as zipkin:
        _backend, web = await start_topology(api, topology, sidecars, zipkin_mesh(zipkin.url),
                                            yaml_doc(DOCS_TRAFFIC_TRACE))
        await traffic_until(api, topology.outbound_url, web.name, "flowing", SETTLE_S)
        await zipkin.stop()
        block = await traffic_until(api, topology.outbound_url, web.name, "collector unreachable",
                                    TWO_INTERVALS_S + 1.0)
        assert "connection failure" in block["message"], block
        await zipkin.start()  # same port: the collector cluster's endpoint is unchanged
        await traffic_until(api, topology.outbound_url, web.name, "flowing", TWO_INTERVALS_S + 1.0)


@pytest.mark.envoy_versions
async def test_collector_answering_500_is_rejecting(api: Api, topology: Topology, sidecars: StartSidecar) -> None:
    async with ZipkinCollector(status=500) as zipkin:
        backend, web = await start_topology(api, topology, sidecars, zipkin_mesh(zipkin.url),
                                            yaml_doc(DOCS_TRAFFIC_TRACE))
        await reporting(api, web, backend)
        block = await traffic_until(api, topology.outbound_url, web.name, "collector rejecting", TWO_INTERVALS_S + 1.0)
        assert "4xx/5xx" in block["message"], block
        assert block["perMinute"]["failed"] > 0 and block["perMinute"]["accepted"] == 0


async def test_sampling_zero_with_traffic_is_no_sampled_requests(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with ZipkinCollector() as zipkin:
        backend, web = await start_topology(api, topology, sidecars, zipkin_mesh(zipkin.url, sampling=0.0),
                                            yaml_doc(DOCS_TRAFFIC_TRACE))
        await reporting(api, web, backend)
        block = await traffic_until(api, topology.outbound_url, web.name, "no sampled requests", TWO_INTERVALS_S + 1.0)
        assert block["message"].endswith("none sampled (sampling 0%)"), block
        assert zipkin.spans == []


SERIES: Final = re.compile(r"^(tracing_[a-z_]+)\{([^}]*)\} ", re.MULTILINE)


async def test_prometheus_series_are_present_and_bounded(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with ZipkinCollector() as zipkin:
        backend, web = await start_topology(api, topology, sidecars, zipkin_mesh(zipkin.url),
                                            yaml_doc(DOCS_TRAFFIC_TRACE))
        await traffic_until(api, topology.outbound_url, web.name, "flowing", SETTLE_S)
        await zipkin.stop()
        await traffic_until(api, topology.outbound_url, web.name, "collector unreachable", TWO_INTERVALS_S + 1.0)
        await wait_verdict(api, backend.name, "collector unreachable", TWO_INTERVALS_S)  # its inbound spans too
        async with api.session.get(api.base + "/metrics") as response:
            text = await response.text()
    series = SERIES.findall(text)
    labels = {name: {tuple(sorted(kv.split("=")[0] for kv in raw.split(","))) for n, raw in series if n == name}
              for name, _ in series}
    assert labels["tracing_spans_total"] == {("backend", "mesh", "result")}
    assert labels["tracing_collector_unreachable"] == {("backend", "mesh")}
    assert labels["tracing_proxies"] == {("backend", "mesh", "verdict")}
    tracing_lines = [line for line in text.splitlines() if line.startswith("tracing_")]
    assert 'tracing_collector_unreachable{backend="jaeger-collector",mesh="default"} 2.0' in tracing_lines, tracing_lines
    for result in ("accepted", "dropped"):
        assert any(line.startswith(f'tracing_spans_total{{backend="jaeger-collector",mesh="default",result="{result}"}}')
                   for line in tracing_lines), tracing_lines
    # Bounded: one mesh × one backend × (3 results, each with its `_created`, + 1 + 6 verdicts); no proxy, node
    # or listener label.
    assert len(series) <= 3 * 2 + 1 + 6, series
    assert "web-1" not in "".join(raw for _, raw in series) and "backend-1" not in "".join(raw for _, raw in series)


async def test_datadog_agent_up_is_flowing_counted_in_reports(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    """Envoy's datadog tracer counts no spans, only reports (flushed on its 2 s timer): flowing all the same."""
    async with DatadogAgent() as agent:
        mesh = yaml_doc(DOCS_DATADOG_MESH.replace("port: 8126", f"port: {agent.port}"))
        backend, web = await start_topology(api, topology, sidecars, mesh, traffic_trace(backend="datadog-collector"))
        await reporting(api, web, backend)
        await traffic_until(api, topology.outbound_url, web.name, "flowing", SETTLE_S)
        await agent.wait_for_spans(timeout=SETTLE_S)

        async def accepted() -> bool:
            return bool((await spans_of(api, web.name))["totals"]["accepted"] >= 1)
        await eventually(accepted, timeout=TWO_INTERVALS_S + 2.0, message="the agent's answers were never counted")
        block = await spans_of(api, web.name)
        assert (block["verdict"], block["backend"], block["type"]) == ("flowing", "datadog-collector", "datadog")
        assert block["totals"]["spansSent"] == 0 and block["message"].startswith("the collector accepted")


BACKEND_OFF: Final = {"type": "MeshTrace", "mesh": "default", "name": "backend-off", "spec": {
    "targetRef": {"kind": "MeshService", "name": "backend"}, "default": {"backends": []}}}
"""Kuma's way to exclude a service from a mesh-wide MeshTrace: a more specific one with no backend."""


@pytest.mark.envoy_versions  # the OpenTelemetry tracer and meshtrace cluster stats, in the oldest Envoy too
async def test_meshtrace_verdicts_collector_stopped_and_a_proxy_excluded_by_empty_backends(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    """The verdicts are generic over policy kinds: under MeshTrace (OpenTelemetry over gRPC, the docs' example)
    web's spans flow, its collector stopped is `collector unreachable` and back `flowing` once it restarts;
    backend, excluded by a MeshTrace with `backends: []`, is `not traced` with that policy's reason."""
    async with OtlpCollector() as otlp:
        mesh_wide = otel_meshtrace(otlp.endpoint, "mesh-wide", {"kind": "Mesh"})
        backend, web = await start_topology(api, topology, sidecars, MESH, mesh_wide, BACKEND_OFF)
        excluded = await spans_of(api, backend.name)
        assert excluded == {"verdict": "not traced", "message": "MeshTrace backend-off sets `backends: []`: tracing is off",
                            "backend": None, "type": None, "policyKind": "MeshTrace", "reason": "backends_empty",
                            "asOf": None, "lastSeen": None, "lastReport": None}, excluded
        block = await traffic_until(api, topology.outbound_url, web.name, "flowing", SETTLE_S)
        assert (block["policyKind"], block["type"]) == ("MeshTrace", "opentelemetry"), block
        await otlp.stop()
        block = await traffic_until(api, topology.outbound_url, web.name, "collector unreachable", TWO_INTERVALS_S + 1.0)
        assert "connection failure" in block["message"], block
        assert block["perMinute"]["dropped"] > 0, block
        await otlp.start()  # same ports: the collector cluster's endpoint is unchanged
        await traffic_until(api, topology.outbound_url, web.name, "flowing", TWO_INTERVALS_S + 1.0)
        assert (await spans_of(api, backend.name))["verdict"] == "not traced"
