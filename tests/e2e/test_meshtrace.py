"""End-to-end MeshTrace (issue 13): Kuma's MeshTrace docs YAML, real Envoys, fake collectors that speak the
real wire formats (OTLP/gRPC, OTLP/HTTP, zipkin, datadog), and the spans each collector receives.

Topology (tests/e2e/support/plane.py): requests enter web's outbound listener, which routes to backend's
inbound listener, which forwards to the backend app. With MeshTrace's OpenTelemetry backend that is one
CLIENT span (`egress <Host>`) from web's Envoy and one SERVER span (`ingress`) from backend's, in one trace:
OpenTelemetry spans never share ids, so the SERVER span's parent is the CLIENT span. The policies are the
docs' examples (examples/meshtrace-*.yaml, applied unchanged by tests/cli) with only the collector address
replaced and, where a test needs every request traced, the docs' `sampling` (80/60/40) left out.
Every test ends with Envoy's `update_rejected` counters at 0: nothing generated was refused.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import yaml

from .support.collectors import DatadogAgent, OtlpCollector, Span, ZipkinCollector
from .support.plane import (
    HOST,
    OPENTELEMETRY_SPANS_SENT,
    ZIPKIN_SPANS_SENT,
    Api,
    Sidecar,
    StartSidecar,
    Topology,
    converging,
    counter,
    no_spans,
    send,
    wait_streams_done,
)
from .test_tracing import (
    CLEAN_XDS,
    DOCS_TRAFFIC_TRACE,
    DOCS_URL,
    DOCS_ZIPKIN_MESH,
    cluster_names,
    start_topology,
    xds_stats,
    yaml_doc,
)

pytestmark = pytest.mark.e2e

EXAMPLES: Final = Path(__file__).resolve().parents[2] / "examples"
MESH: Final = {"type": "Mesh", "name": "default"}
CLI: Final = str(Path(sys.executable).parent / "controlplane")
BACKEND_KEYS: Final = {"Zipkin": "zipkin", "Datadog": "datadog", "OpenTelemetry": "openTelemetry"}
TAGS: Final = ("team", "env", "version", "b3-traceid", "b3-parent-span-id")


def docs_meshtrace(example: str, collector: str, *, name: str | None = None, sampling: bool = False,
                   target_ref: dict[str, Any] | None = None) -> dict[str, Any]:
    """An examples/ file (the docs' YAML) with its one backend pointed at ``collector`` (zipkin/datadog `url`,
    OpenTelemetry `endpoint`); the docs' sampling is dropped unless ``sampling``."""
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / example).read_text())
    (backend,) = doc["spec"]["default"]["backends"]
    settings = backend[BACKEND_KEYS[backend["type"]]]
    settings["endpoint" if backend["type"] == "OpenTelemetry" else "url"] = collector
    if not sampling:
        doc["spec"]["default"].pop("sampling", None)
    if name is not None:
        doc["name"] = name
    if target_ref is not None:
        doc["spec"]["targetRef"] = target_ref
    return doc


def otel_meshtrace(endpoint: str, name: str = "default", target_ref: dict[str, Any] | None = None,
                   sampling: dict[str, Any] | None = None) -> dict[str, Any]:
    """The docs' simple OpenTelemetry MeshTrace (examples/meshtrace-opentelemetry.yaml)."""
    doc = docs_meshtrace("meshtrace-opentelemetry.yaml", endpoint, name=name, target_ref=target_ref)
    if sampling is not None:
        doc["spec"]["default"]["sampling"] = sampling
    return doc


async def assert_clean(*sidecars: Sidecar) -> None:
    """Envoy refused nothing the control plane sent (and nothing is left warming)."""
    for sidecar in sidecars:
        assert await xds_stats(sidecar.envoy) == CLEAN_XDS, sidecar.name


def otel_summary(span: Span) -> dict[str, Any]:
    """What is deterministic about an OTLP span from our topology (no ids, times, sizes, user agent)."""
    attributes = span["attributes"]
    keys = ("node_id", "upstream_cluster", "http.method", "http.url", "http.protocol", "http.status_code",
            "response_flags", "component")
    return {"service": span["service"], "kind": span["kind"], "name": span["name"], "scope": span["scope"],
            "transport": span["transport"], "sdk": span["resource"].get("telemetry.sdk.name"),
            "attributes": {key: attributes.get(key) for key in keys},
            "tags": {key: attributes[key] for key in TAGS if key in attributes}}


def expected_otel_spans(topology: Topology, path: str, tags: dict[str, str],
                        transport: str = "grpc") -> list[dict[str, Any]]:
    host = f"{HOST}:{topology.web_outbound}"

    def span(service: str, kind: str, name: str, cluster: str) -> dict[str, Any]:
        return {"service": service, "kind": kind, "name": name, "scope": "envoy", "transport": transport,
                "sdk": "envoy", "attributes": {
                    "node_id": f"default.{service}-1", "upstream_cluster": cluster, "http.method": "GET",
                    "http.url": f"http://{host}{path}", "http.protocol": "HTTP/1.1",
                    "http.status_code": "200", "response_flags": "-", "component": "proxy"},
                "tags": tags}

    return [span("backend", "SERVER", "ingress", f"localhost:{topology.backend_app.port}"),
            span("web", "CLIENT", f"egress {host}", "backend")]


def one_trace(spans: list[Span], topology: Topology) -> None:
    """web's CLIENT span is the root, backend's SERVER span its child, and the app saw that trace."""
    client = next(s for s in spans if s["kind"] == "CLIENT")
    server = next(s for s in spans if s["kind"] == "SERVER")
    assert client["traceId"] == server["traceId"] and len(client["traceId"]) == 32
    assert (client["parentSpanId"], server["parentSpanId"]) == ("", client["spanId"])
    traceparent = topology.backend_app.requests[-1].headers["traceparent"]
    assert traceparent == f"00-{server['traceId']}-{server['spanId']}-01"  # W3C, sampled


@pytest.mark.envoy_versions
@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_docs_opentelemetry_meshtrace_traces_a_request_in_both_proxies_with_its_tags(
    api: Api, topology: Topology, sidecars: StartSidecar, delta: bool
) -> None:
    async with OtlpCollector() as otel:
        policy = docs_meshtrace("meshtrace-opentelemetry-full.yaml", otel.endpoint)
        backend, web = await start_topology(api, topology, sidecars, MESH, policy, delta=delta)
        for sidecar in (web, backend):
            assert "meshtrace:opentelemetry" in await cluster_names(sidecar.envoy), sidecar.name

        await send(topology.outbound_url, expect="backend")
        spans = await otel.wait_for_spans(count=2)
        await wait_streams_done(web, backend)
        for sidecar in (web, backend):  # exactly one span each, nothing else on its way
            assert await counter(sidecar.envoy, OPENTELEMETRY_SPANS_SENT) == 1, sidecar.name
        # The literal tag, and the header tag's default (x-env absent); x-version has no default: no tag.
        # The b3 header tags stay absent too: Envoy's OpenTelemetry tracer propagates W3C traceparent only.
        defaults = {"team": "core", "env": "prod"}
        assert sorted(map(otel_summary, spans), key=lambda s: s["service"]) == expected_otel_spans(
            topology, "/request-0", defaults)
        one_trace(spans, topology)
        assert {(r.path, r.headers["user-agent"].split("/")[0]) for r in otel.requests} == {
            ("/opentelemetry.proto.collector.trace.v1.TraceService/Export", "OTel-OTLP-Exporter-Envoy")}

        # With the headers present, the header tags carry them (both hops see the request's headers).
        await send_with_headers(topology.outbound_url, {"x-env": "staging", "x-version": "v2"})
        spans = await otel.wait_for_spans(lambda s: s["attributes"].get("env") == "staging", count=2)
        assert {s["service"]: otel_summary(s)["tags"] for s in spans} == {
            service: {"team": "core", "env": "staging", "version": "v2"} for service in ("web", "backend")}
        await assert_clean(web, backend)


async def send_with_headers(url: str, headers: dict[str, str]) -> None:
    """One GET with these request headers, on a new connection (as `send`)."""
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=10)
    async with (aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                session.get(f"{url}/with-headers", headers=headers) as response):
        assert response.status == 200, await response.text()


@pytest.mark.envoy_versions
async def test_sampling_overall_zero_then_hundred_applies_live_without_restart(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with OtlpCollector() as otel:
        backend, web = await start_topology(api, topology, sidecars, MESH,
                                            otel_meshtrace(otel.endpoint, sampling={"overall": 0}))
        pids = (web.envoy.pid, backend.envoy.pid)
        inbound_stats = f"http.localhost_{topology.backend_app.port}.tracing"

        async with no_spans(otel, web, backend, spans_sent_stat=OPENTELEMETRY_SPANS_SENT):
            await send(topology.outbound_url, 3, expect="backend")
        # Positive control: the requests went through both proxies, each of which decided not to trace
        # (the W3C sampled flag is 00 on what the app received).
        assert [r.headers["traceparent"][-2:] for r in topology.backend_app.requests] == ["00", "00", "00"]
        assert await counter(web.envoy, "http.backend.tracing.not_traceable") == 3
        assert await counter(backend.envoy, f"{inbound_stats}.not_traceable") == 3

        async with converging(api, web, backend):
            await api.apply(otel_meshtrace(otel.endpoint, sampling={"overall": 100}))
        await send(topology.outbound_url, expect="backend")
        spans = await otel.wait_for_spans(count=2)
        assert sorted((s["service"], s["kind"]) for s in spans) == [("backend", "SERVER"), ("web", "CLIENT")]
        one_trace(spans, topology)
        assert (web.envoy.pid, backend.envoy.pid) == pids
        assert web.envoy.process.returncode is None and backend.envoy.process.returncode is None
        await assert_clean(web, backend)


async def test_meshsubset_region_policy_sends_eu_spans_to_its_own_collector_until_deleted(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with OtlpCollector() as collector_a, OtlpCollector() as collector_b:
        mesh_wide = otel_meshtrace(collector_a.endpoint, "mesh-wide", {"kind": "Mesh"})
        eu = otel_meshtrace(collector_b.endpoint, "eu", {"kind": "MeshSubset", "tags": {"region": "eu"}})
        backend, web = await start_topology(api, topology, sidecars, MESH, mesh_wide, eu,
                                            web_tags={"region": "eu"}, backend_tags={"region": "us"})
        rules = await api.get("/meshes/default/dataplanes/web-1/_rules")
        (rule,) = rules["rules"]
        assert [o["name"] for o in rule["proxyRule"]["origin"]] == ["mesh-wide", "eu"]  # eu ranks higher
        assert rule["proxyRule"]["conf"]["backends"][0]["openTelemetry"] == {"endpoint": collector_b.endpoint}
        for policy, selected in (("eu", ["web-1"]), ("mesh-wide", ["backend-1", "web-1"])):
            body = await api.get(f"/meshes/default/meshtraces/{policy}/_resources/dataplanes")
            assert sorted(item["name"] for item in body["items"]) == selected, policy

        # web (eu) → backend (us); then web's inbound alone; then backend's inbound alone.
        await send(topology.outbound_url, expect="backend")
        await send(f"http://{HOST}:{topology.web_inbound}", expect="web")
        await send(f"http://{HOST}:{topology.backend_inbound}", expect="backend")
        b_spans = await collector_b.wait_for_spans(count=2)
        a_spans = await collector_a.wait_for_spans(count=2)
        await wait_streams_done(web, backend)
        assert await counter(web.envoy, OPENTELEMETRY_SPANS_SENT) == len(collector_b.spans) == 2
        assert await counter(backend.envoy, OPENTELEMETRY_SPANS_SENT) == len(collector_a.spans) == 2
        assert sorted((s["service"], s["kind"]) for s in b_spans) == [("web", "CLIENT"), ("web", "SERVER")]
        assert sorted((s["service"], s["kind"]) for s in a_spans) == [("backend", "SERVER")] * 2

        async with converging(api, web):
            await api.delete(eu)
        rules = await api.get("/meshes/default/dataplanes/web-1/_rules")
        assert [o["name"] for o in rules["rules"][0]["proxyRule"]["origin"]] == ["mesh-wide"]
        await send(topology.outbound_url, expect="backend")
        back_at_a = await collector_a.wait_for_spans(lambda s: s["service"] == "web", count=1)
        await wait_streams_done(web, backend)
        assert [(s["service"], s["kind"]) for s in back_at_a] == [("web", "CLIENT")]
        # Every span web flushed is accounted for: the 2 before the deletion at B, the new one at A.
        assert await counter(web.envoy, OPENTELEMETRY_SPANS_SENT) == 3
        assert (len(collector_b.spans), len(collector_a.spans)) == (2, 4)
        await assert_clean(web, backend)


async def test_docs_zipkin_meshtrace_reaches_the_zipkin_collector(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with ZipkinCollector() as zipkin:
        backend, web = await start_topology(api, topology, sidecars, MESH,
                                            docs_meshtrace("meshtrace-zipkin-full.yaml", zipkin.url))
        await send(topology.outbound_url, expect="backend")
        spans = await zipkin.wait_for_spans(count=2)
        await wait_streams_done(web, backend)
        for sidecar in (web, backend):
            assert await counter(sidecar.envoy, ZIPKIN_SPANS_SENT) == 1, sidecar.name
            assert "meshtrace:zipkin" in await cluster_names(sidecar.envoy), sidecar.name
        trace_id = topology.backend_app.requests[0].headers["x-b3-traceid"]
        assert len(trace_id) == 16  # traceId128bit defaults to false
        summary = sorted((s["kind"], s["localEndpoint"]["serviceName"], s["traceId"], s["id"],
                          s.get("shared", False), s["tags"].get("team"), s["tags"].get("env"),
                          "version" in s["tags"]) for s in spans)
        # sharedSpanContext defaults to true: the SERVER span shares the CLIENT span's id.
        assert summary == [("CLIENT", "web", trace_id, trace_id, False, "core", "prod", False),
                           ("SERVER", "backend", trace_id, trace_id, True, "core", "prod", False)]
        for report in zipkin.requests:  # httpJson to the URL's path, Host = the URL's host:port
            assert (report.path, report.headers["Host"], report.headers["Content-Type"]) == (
                "/api/v2/spans", zipkin.address, "application/json")
        await assert_clean(web, backend)


async def test_docs_datadog_meshtrace_reaches_the_agent_with_split_services_and_tags(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with DatadogAgent() as agent:
        backend, web = await start_topology(api, topology, sidecars, MESH,
                                            docs_meshtrace("meshtrace-datadog-full.yaml", agent.url))
        await send(topology.outbound_url, expect="backend")
        spans = await agent.wait_for_spans(count=2, timeout=10)  # dd-trace-cpp flushes every 2 s
        await assert_clean(web, backend)
        for sidecar in (web, backend):
            assert "meshtrace:datadog" in await cluster_names(sidecar.envoy), sidecar.name

    assert {report.path for report in agent.requests} == {"/v0.4/traces"}
    trace_id = int(topology.backend_app.requests[0].headers["x-datadog-trace-id"])
    # splitService: true in the docs' full example.
    by_service = {s["service"]: (s["name"], s["resource"], s["trace_id"], s["meta"].get("team"),
                                 s["meta"].get("env")) for s in spans}
    assert by_service == {
        "web_OUTBOUND_backend": ("envoy.proxy", f"egress {HOST}:{topology.web_outbound}", trace_id, "core",
                                 "prod"),
        "backend_INBOUND": ("envoy.proxy", "ingress", trace_id, "core", "prod"),
    }


async def test_meshtrace_displaces_traffictrace_on_the_proxies_it_targets(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    """TrafficTrace everywhere (zipkin), a MeshTrace for web-1 only (OpenTelemetry): web's spans go only to
    the MeshTrace's collector, backend keeps the TrafficTrace's, and inspection names the displaced policy."""
    async with ZipkinCollector() as zipkin, OtlpCollector() as otel:
        meshtrace = otel_meshtrace(otel.endpoint, "default", {"kind": "Dataplane", "name": "web-1"})
        backend, web = await start_topology(api, topology, sidecars, yaml_doc(DOCS_ZIPKIN_MESH.replace(
            DOCS_URL, zipkin.url)), yaml_doc(DOCS_TRAFFIC_TRACE), meshtrace)

        await send(topology.outbound_url, expect="backend")  # web CLIENT → otel, backend SERVER → zipkin
        await send(f"http://{HOST}:{topology.web_inbound}", expect="web")  # web SERVER → otel
        web_spans = await otel.wait_for_spans(count=2)
        (backend_span,) = await zipkin.wait_for_spans()
        await wait_streams_done(web, backend)
        assert sorted((s["service"], s["kind"]) for s in web_spans) == [("web", "CLIENT"), ("web", "SERVER")]
        assert (backend_span["localEndpoint"]["serviceName"], backend_span["kind"]) == ("backend", "SERVER")
        # Every span is accounted for by the Envoy that flushed it: web has no zipkin tracer at all.
        sent = (ZIPKIN_SPANS_SENT, OPENTELEMETRY_SPANS_SENT)
        assert [await counter(web.envoy, name) for name in sent] == [0, 2]
        assert [await counter(backend.envoy, name) for name in sent] == [1, 0]
        assert (len(zipkin.spans), len(otel.spans)) == (1, 2)
        assert await cluster_names(web.envoy) >= {"meshtrace:opentelemetry"}
        assert "tracing:jaeger-collector" not in await cluster_names(web.envoy)
        assert not any(n.startswith("meshtrace:") for n in await cluster_names(backend.envoy))

        displaced = "TrafficTrace trace-all-traffic not applied: MeshTrace default targets this proxy"
        web_tracing = (await api.policies("web-1"))["tracing"]
        assert (web_tracing["policy"], web_tracing["policies"], web_tracing["type"]) == (
            "MeshTrace", ["default"], "opentelemetry")
        assert web_tracing["notApplied"] == [{"kind": "TrafficTrace", "name": "trace-all-traffic",
                                              "message": displaced}]
        backend_tracing = (await api.policies("backend-1"))["tracing"]
        assert (backend_tracing["trafficTrace"], backend_tracing["type"]) == ("trace-all-traffic", "zipkin")
        assert "notApplied" not in backend_tracing
        out = await inspect_dataplane(api, "web-1")
        assert f"    {displaced}\n" in out and "  MeshTrace (merge order): default\n" in out, out
        await assert_clean(web, backend)


async def inspect_dataplane(api: Api, name: str) -> str:
    """`controlplane inspect dataplane NAME`, the real CLI in a child process."""
    result = await asyncio.to_thread(subprocess.run, [CLI, "inspect", "dataplane", name], capture_output=True,
                                     text=True, timeout=60, check=False,
                                     env={**os.environ, "CONTROLPLANE_API_URL": api.base})
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_otlp_over_http_endpoint_reaches_the_receivers_http_endpoint(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with OtlpCollector() as otel:
        backend, web = await start_topology(api, topology, sidecars, MESH, otel_meshtrace(otel.http_url))
        await send(topology.outbound_url, expect="backend")
        spans = await otel.wait_for_spans(count=2)
        await wait_streams_done(web, backend)
        assert sorted(map(otel_summary, spans), key=lambda s: s["service"]) == expected_otel_spans(
            topology, "/request-0", {}, transport="http")
        one_trace(spans, topology)
        assert len(otel.requests) == 2
        for report in otel.requests:  # Envoy's http_service: POST, binary protobuf, chunked
            wire = (report.method, report.path, report.headers["Content-Type"],
                    report.headers.get("Transfer-Encoding"))
            assert wire == ("POST", "/v1/traces", "application/x-protobuf", "chunked")
        await assert_clean(web, backend)
