"""End-to-end tracing: the control plane configures real Envoys, requests flow through them, and fake
collectors receive exactly the spans Kuma's TrafficTrace semantics call for (reference/kuma-tracing.md).

Topology (tests/e2e/support/plane.py): requests enter web's outbound listener (P3), which routes to
backend's inbound listener (P1), which forwards to the backend app. With tracing on, that is one CLIENT
span from web's Envoy and one SERVER span from backend's Envoy, sharing the trace id and, because Envoy's
zipkin tracer defaults to ``shared_span_context``, the span id too (the server span is marked ``shared``).
"""

from __future__ import annotations

import json
from typing import Any, Final

import pytest

from controlplane.resources.yaml_loader import load_documents

from .support.collectors import DatadogAgent, Span, ZipkinCollector
from .support.envoy import EnvoyProcess
from .support.plane import (
    HOST,
    Api,
    Sidecar,
    StartSidecar,
    Topology,
    converging,
    counter,
    no_spans,
    send,
    wait_converged,
    wait_streams_done,
)

pytestmark = pytest.mark.e2e

# reference/traffic-trace-docs.txt, with the line numbers stripped and the indentation the docs page
# shows restored: the zipkin Mesh (its short form, `url` right under the backend) and `trace-all-traffic`
# (short form `backend:` under the resource). Only the collector URL is replaced.
DOCS_ZIPKIN_MESH: Final = """
type: Mesh
name: default
tracing:
  defaultBackend: jaeger-collector
  backends:
  - name: jaeger-collector
    type: zipkin
    sampling: 100.0
    url: http://my-jaeger-collector:9411/api/v2/spans # Replace by any zipkin compatible collector address.
"""
DOCS_URL: Final = "http://my-jaeger-collector:9411/api/v2/spans"
DOCS_DATADOG_MESH: Final = """
type: Mesh
name: default
tracing:
  backends:
  - name: datadog-collector
    type: datadog
    sampling: 100.0
    conf:
      address: 127.0.0.1
      port: 8126
"""
DOCS_TRAFFIC_TRACE: Final = """
type: TrafficTrace
name: trace-all-traffic
mesh: default
selectors:
- match:
    kuma.io/service: '*'
backend: jaeger-collector # or the name of any backend defined for the mesh
"""
TRAFFIC_TRACE_PATH: Final = {"type": "TrafficTrace", "mesh": "default", "name": "trace-all-traffic"}


def yaml_doc(text: str) -> dict[str, Any]:
    """The one document of ``text``, parsed the way `kumactl apply` would read it."""
    (doc,) = load_documents(text)
    assert isinstance(doc, dict), doc
    return doc


def zipkin_mesh(url: str, sampling: float = 100.0) -> dict[str, Any]:
    return yaml_doc(
        DOCS_ZIPKIN_MESH.replace(DOCS_URL, url).replace("sampling: 100.0", f"sampling: {sampling}")
    )


def traffic_trace(
    name: str = "trace-all-traffic", backend: str = "jaeger-collector", **match: str
) -> dict[str, Any]:
    selector = match or {"kuma.io/service": "*"}
    return {"type": "TrafficTrace", "mesh": "default", "name": name, "selectors": [{"match": selector}],
            "conf": {"backend": backend}}  # fmt: skip


async def start_topology(
    api: Api,
    topology: Topology,
    sidecars: StartSidecar,
    *docs: dict[str, Any],
    delta: bool = False,
    backend_protocol: str = "http",
    backend_tags: dict[str, str] | None = None,
    web_tags: dict[str, str] | None = None,
) -> tuple[Sidecar, Sidecar]:
    """Apply ``docs`` (Mesh first) and both Dataplanes (``*_tags``: extra inbound tags), start both
    Envoys and wait until they ACKed everything."""
    await api.apply(
        *docs,
        topology.backend_dataplane(backend_protocol, **(backend_tags or {})),
        topology.web_dataplane(**(web_tags or {})),
    )
    backend = await sidecars("backend-1", "backend", delta=delta)
    web = await sidecars("web-1", "web", delta=delta)
    await wait_converged(api, backend, web)
    return backend, web


SPAN_TAGS: Final = (
    "node_id", "upstream_cluster", "http.method", "http.url", "http.protocol", "http.status_code",
    "response_flags", "component", "guid:x-request-id",
)  # fmt: skip


def span_summary(span: Span) -> dict[str, Any]:
    """Everything about a zipkin span that is deterministic (no timestamps, durations, sizes, addresses)."""
    tags = span["tags"]
    return {
        "traceId": span["traceId"],
        "id": span["id"],
        "parentId": span.get("parentId"),
        "kind": span["kind"],
        "shared": span.get("shared", False),
        "name": span["name"],
        "serviceName": span["localEndpoint"]["serviceName"],
        "annotations": [annotation["value"] for annotation in span.get("annotations", [])],
        "tags": {key: tags.get(key) for key in SPAN_TAGS},
    }


def expected_spans(topology: Topology, trace_id: str, request_id: str, path: str) -> list[dict[str, Any]]:
    """web's egress (CLIENT) span and backend's ingress (SERVER) span of one request to ``path``."""
    host = f"{HOST}:{topology.web_outbound}"  # the Host header: Envoy's zipkin span name

    def span(
        kind: str, service: str, node: str, cluster: str, annotation: str, shared: bool
    ) -> dict[str, Any]:
        return {
            "traceId": trace_id, "id": trace_id, "parentId": None, "kind": kind, "shared": shared, "name": host,
            "serviceName": service, "annotations": [annotation],
            "tags": {
                "node_id": node, "upstream_cluster": cluster, "http.method": "GET", "http.url": f"http://{host}{path}",
                "http.protocol": "HTTP/1.1", "http.status_code": "200", "response_flags": "-", "component": "proxy",
                "guid:x-request-id": request_id,
            },
        }  # fmt: skip

    return [
        span("CLIENT", "web", "default.web-1", "backend", "cr", shared=False),
        span(
            "SERVER",
            "backend",
            "default.backend-1",
            f"localhost:{topology.backend_app.port}",
            "ss",
            shared=True,
        ),
    ]


async def xds_stats(envoy: EnvoyProcess) -> dict[str, int | str]:
    return await envoy.stats(
        r"^(listener_manager\.lds\.update_rejected|cluster_manager\.cds\.update_rejected"
        r"|cluster_manager\.warming_clusters)$"
    )


CLEAN_XDS: Final = {
    "listener_manager.lds.update_rejected": 0,
    "cluster_manager.cds.update_rejected": 0,
    "cluster_manager.warming_clusters": 0,
}


async def dynamic_listeners(envoy: EnvoyProcess) -> dict[str, dict[str, Any]]:
    """Active listeners from Envoy's config_dump, by name (proto field names, snake_case)."""
    dump = await envoy.config_dump("dynamic_listeners")
    return {
        config["name"]: config["active_state"]["listener"]
        for config in dump["configs"]
        if "active_state" in config
    }


def network_filters(listener: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for chain in listener.get("filter_chains", []) for f in chain.get("filters", [])]


async def cluster_names(envoy: EnvoyProcess) -> set[str]:
    body = json.loads(await envoy.admin_get("/clusters", format="json"))
    return {status["name"] for status in body.get("cluster_statuses", [])}


@pytest.mark.envoy_versions
@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_docs_zipkin_mesh_traces_a_request_in_both_proxies(
    api: Api, topology: Topology, sidecars: StartSidecar, delta: bool
) -> None:
    async with ZipkinCollector() as zipkin:
        mesh = yaml_doc(DOCS_ZIPKIN_MESH.replace(DOCS_URL, zipkin.url))
        backend, web = await start_topology(
            api, topology, sidecars, mesh, yaml_doc(DOCS_TRAFFIC_TRACE), delta=delta
        )

        await send(topology.outbound_url, expect="backend")
        spans = await zipkin.wait_for_spans(count=2)
        # Exactly two: both streams are done and each Envoy flushed exactly one span.
        await wait_streams_done(web, backend)
        for sidecar in (web, backend):
            assert await counter(sidecar.envoy, "tracing.zipkin.spans_sent") == 1

        seen = topology.backend_app.requests[0].headers
        trace_id = seen["x-b3-traceid"]
        assert len(trace_id) == 16  # traceId128bit is off
        assert {key: seen.get(key) for key in ("x-b3-spanid", "x-b3-sampled")} == {
            "x-b3-spanid": trace_id, "x-b3-sampled": "1"
        }  # fmt: skip
        assert seen["x-request-id"]
        actual = sorted((span_summary(span) for span in spans), key=lambda span: span["kind"])
        assert actual == expected_spans(topology, trace_id, seen["x-request-id"], "/request-0")
        for report in zipkin.requests:
            assert (report.method, report.path, report.headers["Host"]) == (
                "POST",
                "/api/v2/spans",
                zipkin.address,
            )
        for sidecar in (web, backend):
            assert await xds_stats(sidecar.envoy) == CLEAN_XDS, sidecar.name


@pytest.mark.envoy_versions
async def test_sampling_zero_sends_no_spans_until_raised_without_restart(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with ZipkinCollector() as zipkin:
        mesh = zipkin_mesh(zipkin.url, sampling=0.0)
        backend, web = await start_topology(api, topology, sidecars, mesh, yaml_doc(DOCS_TRAFFIC_TRACE))
        pids = (web.envoy.pid, backend.envoy.pid)
        inbound_stats = f"http.localhost_{topology.backend_app.port}.tracing"

        async with no_spans(zipkin, web, backend):
            await send(topology.outbound_url, 3, expect="backend")
        # Positive control: the requests went through both proxies, each of which decided not to trace.
        assert [r.headers["x-b3-sampled"] for r in topology.backend_app.requests] == ["0", "0", "0"]
        assert await web.envoy.stats(r"^http\.backend\.tracing\.(not_traceable|random_sampling)$") == {
            "http.backend.tracing.not_traceable": 3, "http.backend.tracing.random_sampling": 0
        }  # fmt: skip
        assert await counter(backend.envoy, f"{inbound_stats}.not_traceable") == 3

        async with converging(api, web, backend):
            await api.apply(zipkin_mesh(zipkin.url, sampling=100.0))
        await send(topology.outbound_url, expect="backend")
        spans = await zipkin.wait_for_spans(count=2)
        assert {(s["kind"], s["localEndpoint"]["serviceName"]) for s in spans} == {
            ("CLIENT", "web"),
            ("SERVER", "backend"),
        }
        assert {s["traceId"] for s in spans} == {topology.backend_app.requests[-1].headers["x-b3-traceid"]}
        assert await counter(web.envoy, "http.backend.tracing.random_sampling") == 1
        assert (web.envoy.pid, backend.envoy.pid) == pids
        assert web.envoy.process.returncode is None and backend.envoy.process.returncode is None


@pytest.mark.envoy_versions
@pytest.mark.parametrize(
    ("split", "services"),
    [(False, {"web", "backend"}), (True, {"web_OUTBOUND_backend", "backend_INBOUND"})],
    ids=["service", "split-service"],
)
async def test_datadog_spans_carry_the_dataplane_service_names(
    api: Api, topology: Topology, sidecars: StartSidecar, split: bool, services: set[str]
) -> None:
    async with DatadogAgent() as agent:
        mesh = yaml_doc(
            DOCS_DATADOG_MESH.replace("port: 8126", f"port: {agent.port}\n      splitService: {split}")
        )
        await start_topology(api, topology, sidecars, mesh, traffic_trace(backend="datadog-collector"))

        await send(topology.outbound_url, expect="backend")
        # dd-trace-cpp flushes on a fixed 2 s timer, per Envoy.
        spans = await agent.wait_for_spans(count=2, timeout=10)

    assert {report.path for report in agent.requests} == {"/v0.4/traces"}
    seen = topology.backend_app.requests[0].headers
    trace_id = int(seen["x-datadog-trace-id"])
    # Envoy names the operation "ingress" / "egress <Host>"; the service is what the generator set.
    by_service = {s["service"]: (s["name"], s["resource"], s["trace_id"]) for s in spans}
    assert len(spans) == len(by_service) == 2, spans
    assert set(by_service) == services
    web_service, backend_service = sorted(services, key=lambda service: not service.startswith("web"))
    assert by_service == {
        web_service: ("envoy.proxy", f"egress {HOST}:{topology.web_outbound}", trace_id),
        backend_service: ("envoy.proxy", "ingress", trace_id),
    }
    # One trace: web's egress span is the root, backend's ingress span its child.
    web_span, backend_span = (
        next(s for s in spans if s["service"] == name) for name in (web_service, backend_service)
    )
    assert (web_span["parent_id"], backend_span["parent_id"]) == (0, web_span["span_id"])


async def test_backends_chosen_by_region_tags_keep_spans_in_their_region(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with ZipkinCollector() as eu_collector, ZipkinCollector() as us_collector:
        mesh = {
            "type": "Mesh", "name": "default",
            "tracing": {"backends": [
                {"name": "eu", "type": "zipkin", "conf": {"url": eu_collector.url}},
                {"name": "us", "type": "zipkin", "conf": {"url": us_collector.url}},
            ]},
        }  # fmt: skip
        backend, web = await start_topology(
            api, topology, sidecars, mesh,
            traffic_trace("trace-eu", backend="eu", region="eu"), traffic_trace("trace-us", backend="us", region="us"),
            web_tags={"region": "eu"}, backend_tags={"region": "us"},
        )  # fmt: skip

        # web (eu) → backend (us); then web's inbound alone (eu); then backend's inbound alone (us).
        await send(topology.outbound_url, expect="backend")
        await send(f"http://{HOST}:{topology.web_inbound}", expect="web")
        await send(f"http://{HOST}:{topology.backend_inbound}", expect="backend")
        eu_spans = await eu_collector.wait_for_spans(count=2)
        us_spans = await us_collector.wait_for_spans(count=2)
        await wait_streams_done(web, backend)
        # Every span each Envoy flushed is accounted for in its own region's collector, none elsewhere.
        assert await counter(web.envoy, "tracing.zipkin.spans_sent") == len(eu_collector.spans) == 2
        assert await counter(backend.envoy, "tracing.zipkin.spans_sent") == len(us_collector.spans) == 2

    assert sorted((s["localEndpoint"]["serviceName"], s["kind"]) for s in eu_spans) == [
        ("web", "CLIENT"),
        ("web", "SERVER"),
    ]
    assert sorted((s["localEndpoint"]["serviceName"], s["kind"]) for s in us_spans) == [
        ("backend", "SERVER"), ("backend", "SERVER")
    ]  # fmt: skip
    # The cross-region request is still one trace, split between the two regions' collectors.
    through_mesh = topology.backend_app.requests[0].headers["x-b3-traceid"]
    assert [s["traceId"] for s in eu_spans if s["kind"] == "CLIENT"] == [through_mesh]
    assert through_mesh in {s["traceId"] for s in us_spans}


async def test_deleting_the_traffic_trace_stops_tracing_and_removes_the_cluster(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with ZipkinCollector() as zipkin:
        backend, web = await start_topology(
            api, topology, sidecars, zipkin_mesh(zipkin.url), yaml_doc(DOCS_TRAFFIC_TRACE)
        )
        await send(topology.outbound_url, expect="backend")
        await zipkin.wait_for_spans(count=2)  # tracing works before the deletion
        for sidecar in (web, backend):
            assert "tracing:jaeger-collector" in await cluster_names(sidecar.envoy)

        async with converging(api, web, backend):
            await api.delete(TRAFFIC_TRACE_PATH)
        for sidecar in (web, backend):
            assert "tracing:jaeger-collector" not in await cluster_names(sidecar.envoy), sidecar.name
            assert await xds_stats(sidecar.envoy) == CLEAN_XDS, sidecar.name
            for name, listener in (await dynamic_listeners(sidecar.envoy)).items():
                for network_filter in network_filters(listener):
                    assert "tracing" not in network_filter["typed_config"], (sidecar.name, name)

        async with no_spans(zipkin, web, backend):
            await send(topology.outbound_url, 3, expect="backend")
        assert len(topology.backend_app.requests) == 4  # positive control: the requests did go through
        assert await counter(web.envoy, "http.backend.downstream_rq_completed") == 4


async def test_tcp_service_is_proxied_but_not_traced(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with ZipkinCollector() as zipkin:
        backend, web = await start_topology(
            api,
            topology,
            sidecars,
            zipkin_mesh(zipkin.url),
            yaml_doc(DOCS_TRAFFIC_TRACE),
            backend_protocol="tcp",
        )
        web_listeners = await dynamic_listeners(web.envoy)
        backend_listeners = await dynamic_listeners(backend.envoy)
        for listener in (
            web_listeners[topology.outbound_listener],
            backend_listeners[topology.backend_listener],
        ):
            assert [f["name"] for f in network_filters(listener)] == ["envoy.filters.network.tcp_proxy"]
        # The tracing cluster is generated regardless of protocols (kuma-tracing.md §3.3).
        assert "tracing:jaeger-collector" in await cluster_names(backend.envoy)
        rows = (await api.policies("web-1"))["listeners"]
        assert [(row["listener"], row["protocol"], row["traced"], row["reason"]) for row in rows] == [
            (topology.web_listener, "http", True, ""),
            (topology.outbound_listener, "tcp", False, "protocol is not http, http2 or grpc"),
        ]

        async with no_spans(zipkin, web, backend):
            await send(topology.outbound_url, 3, expect="backend")  # HTTP carried by tcp_proxy
        assert len(topology.backend_app.requests) == 3

        # Positive control: web's own inbound is HTTP and traced, so the tracer itself works.
        (web_hcm,) = network_filters(web_listeners[topology.web_listener])
        assert web_hcm["typed_config"]["tracing"]["provider"]["name"] == "envoy.tracers.zipkin"
        await send(f"http://{HOST}:{topology.web_inbound}", expect="web")
        (span,) = await zipkin.wait_for_spans()
        assert (span["kind"], span["localEndpoint"]["serviceName"]) == ("SERVER", "web")


async def test_policies_show_the_matched_traffic_trace_and_a_missing_backend(
    api: Api, topology: Topology, sidecars: StartSidecar
) -> None:
    async with ZipkinCollector() as zipkin:
        backend, web = await start_topology(
            api, topology, sidecars, zipkin_mesh(zipkin.url), yaml_doc(DOCS_TRAFFIC_TRACE)
        )
        policies = await api.policies("web-1")
        assert policies["matchedPolicies"] == {"TrafficTrace": ["trace-all-traffic"]}
        assert policies["tracing"] == {
            "enabled": True, "trafficTrace": "trace-all-traffic", "backend": "jaeger-collector", "type": "zipkin",
            "sampling": 100.0, "samplingSet": True,
        }  # fmt: skip
        assert [(row["listener"], row["traced"]) for row in policies["listeners"]] == [
            (topology.web_listener, True), (topology.outbound_listener, True)
        ]  # fmt: skip
        affected = await api.get("/meshes/default/traffic-traces/trace-all-traffic/dataplanes")
        assert sorted(item["name"] for item in affected["items"]) == ["backend-1", "web-1"]

        async with converging(api, web, backend):
            await api.apply(traffic_trace(backend="no-such-backend"))
        policies = await api.policies("web-1")
        assert policies["matchedPolicies"] == {"TrafficTrace": ["trace-all-traffic"]}
        assert policies["tracing"] == {
            "enabled": False, "trafficTrace": "trace-all-traffic", "backend": "no-such-backend",
            "reason": "backend_not_found",
            "message": "backend not found: the TrafficTrace names a backend the mesh does not define",
        }  # fmt: skip
        # No fallback to the mesh's defaultBackend: Envoy has no tracing at all (kuma-tracing.md §2.4).
        for sidecar in (web, backend):
            assert not any(name.startswith("tracing:") for name in await cluster_names(sidecar.envoy))
        async with no_spans(zipkin, web, backend):
            await send(topology.outbound_url, 2, expect="backend")
