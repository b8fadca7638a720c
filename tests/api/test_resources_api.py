"""Kuma's HTTP API contract (reference kuma-tracing.md §5.1-5.3) against the real app over a real socket.

Bodies are compared whole; creation/modification times are checked for RFC 3339 format and then removed.
The resources are the docs' YAML (examples/*.yaml), sent as JSON exactly as a user would write them.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from api_helpers import Api, parse_time, strip_times

from controlplane import __version__

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BOTH_STORES = pytest.mark.parametrize("api", ["memory", "sqlite"], indirect=True)
JAEGER_URL = "http://my-jaeger-collector:9411/api/v2/spans"
TT_PATH = "/meshes/default/traffic-traces/trace-all-traffic"


def docs_yaml(name: str) -> dict[str, Any]:
    """One of the docs' YAML documents, parsed exactly as written (short forms included)."""
    doc = yaml.safe_load((EXAMPLES / name).read_text())
    assert isinstance(doc, dict)
    return doc


ZIPKIN_CANONICAL = {
    "type": "Mesh",
    "name": "default",
    "tracing": {
        "defaultBackend": "jaeger-collector",
        "backends": [
            {"name": "jaeger-collector", "sampling": 100.0, "type": "zipkin", "conf": {"url": JAEGER_URL}}
        ],
    },
}
TRACE_ALL_CANONICAL = {
    "type": "TrafficTrace",
    "mesh": "default",
    "name": "trace-all-traffic",
    "labels": {"kuma.io/mesh": "default"},
    "selectors": [{"match": {"kuma.io/service": "*"}}],
    "conf": {"backend": "jaeger-collector"},
}


def traffic_trace(mesh: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TrafficTrace", "mesh": mesh, "name": name, "labels": {"kuma.io/mesh": mesh},
            "selectors": [{"match": {"kuma.io/service": "*"}}], **extra}


def dataplane(mesh: str, name: str) -> dict[str, Any]:
    return {"type": "Dataplane", "mesh": mesh, "name": name, "labels": {"kuma.io/mesh": mesh}, "networking": {
        "address": "10.0.0.1",
        "inbound": [{"port": 8080, "servicePort": 80, "tags": {"kuma.io/service": "web"}}],
    }}


async def put_ok(api: Api, path: str, body: dict[str, Any]) -> None:
    reply = await api.put(path, body)
    assert reply.status in (200, 201), reply.body


async def test_index(api: Api) -> None:
    """GET / answers Kuma's index document (the ids are checked in test_kuma_read_endpoints.py)."""
    reply = await api.get("/")
    assert reply.status == 200 and {"instanceId", "clusterId"} <= set(reply.body)
    assert {k: v for k, v in reply.body.items() if k not in ("instanceId", "clusterId")} == {
        "hostname": socket.gethostname(), "tagline": "Kuma-compatible tracing control plane",
        "version": __version__, "product": "controlplane", "gui": "/gui",
    }


@BOTH_STORES
async def test_put_mesh_created_unchanged_updated(api: Api) -> None:
    """PUT is 201 created, then 200 unchanged (nothing written), then 200 updated (modificationTime moves)."""
    mesh = docs_yaml("zipkin-mesh.yaml")
    first = await api.put("/meshes/default", mesh)
    assert (first.status, first.body) == (201, {"result": "created"})
    created = (await api.get("/meshes/default")).body

    again = await api.put("/meshes/default", mesh)
    assert (again.status, again.body) == (200, {"result": "unchanged"})
    assert (await api.get("/meshes/default")).body == created

    mesh["tracing"]["backends"][0]["sampling"] = 50.0
    changed = await api.put("/meshes/default", mesh)
    assert (changed.status, changed.body) == (200, {"result": "updated"})
    updated = (await api.get("/meshes/default")).body
    assert updated["creationTime"] == created["creationTime"]
    assert parse_time(updated["modificationTime"]) > parse_time(created["modificationTime"])
    assert strip_times(updated)["tracing"]["backends"][0]["sampling"] == 50.0


async def test_get_returns_canonical_form(api: Api) -> None:
    """The docs' short forms (`url` under a backend, `backend` under TrafficTrace) come back under `conf`."""
    await put_ok(api, "/meshes/default", docs_yaml("zipkin-mesh.yaml"))
    await put_ok(api, TT_PATH, docs_yaml("trace-all-traffic.yaml"))
    mesh = await api.get("/meshes/default")
    assert (mesh.status, strip_times(mesh.body)) == (200, ZIPKIN_CANONICAL)
    trace = await api.get(TT_PATH)
    assert (trace.status, strip_times(trace.body)) == (200, TRACE_ALL_CANONICAL)


async def test_datadog_docs_mesh_round_trips(api: Api) -> None:
    """The docs' datadog Mesh is stored as written; its integer port stays an integer."""
    await put_ok(api, "/meshes/default", docs_yaml("datadog-mesh.yaml"))
    reply = await api.get("/meshes/default")
    assert strip_times(reply.body) == {"type": "Mesh", "name": "default", "tracing": {"backends": [{
        "name": "datadog-collector", "sampling": 100.0, "type": "datadog",
        "conf": {"address": "127.0.0.1", "port": 8126},
    }]}}


@BOTH_STORES
async def test_numbers_written_as_strings_are_accepted(api: Api) -> None:
    """protojson (Kuma) takes `sampling: "50"` and `port: "8126"`: stored as the number, or as written in a
    Struct conf (which is what Kuma stores too), and the conf still parses into its typed port."""
    body = {"type": "Mesh", "name": "default", "tracing": {"backends": [
        {"name": "dd", "type": "datadog", "sampling": "50", "conf": {"address": "127.0.0.1", "port": "8126"}}]}}
    await put_ok(api, "/meshes/default", body)
    reply = await api.get("/meshes/default")
    assert strip_times(reply.body) == {"type": "Mesh", "name": "default", "tracing": {"backends": [
        {"name": "dd", "sampling": 50.0, "type": "datadog", "conf": {"address": "127.0.0.1", "port": "8126"}}]}}
    assert (await api.put("/meshes/default", reply.body)).body == {"result": "unchanged"}


async def test_get_output_applies_back_unchanged(api: Api) -> None:
    """A GET body (timestamps included) can be PUT back as is, and is reported unchanged."""
    await put_ok(api, "/meshes/default", docs_yaml("zipkin-mesh.yaml"))
    body = (await api.get("/meshes/default")).body
    reply = await api.put("/meshes/default", body)
    assert (reply.status, reply.body) == (200, {"result": "unchanged"})


async def test_missing_type_name_and_mesh_are_taken_from_the_url(api: Api) -> None:
    """A body without type/name/mesh gets them from the URL (filled before validation) and is created."""
    created = await api.put("/meshes/bare", {})
    assert (created.status, created.body) == (201, {"result": "created"})
    assert strip_times((await api.get("/meshes/bare")).body) == {"type": "Mesh", "name": "bare"}
    trace = await api.put("/meshes/bare/traffic-traces/t", {"selectors": [{"match": {"app": "web"}}]})
    assert trace.status == 201
    assert strip_times((await api.get("/meshes/bare/traffic-traces/t")).body) == {
        "type": "TrafficTrace", "mesh": "bare", "name": "t", "labels": {"kuma.io/mesh": "bare"},
        "selectors": [{"match": {"app": "web"}}],
    }


async def test_list_paging_follows_absolute_next(api: Api) -> None:
    """Lists are {total, items, next}; `next` is an absolute URL with the next offset, null on the last page."""
    names = [f"mesh-{i}" for i in range(5)]
    for name in names:
        await put_ok(api, f"/meshes/{name}", {"type": "Mesh", "name": name})
    first = await api.get("/meshes?size=2")
    assert first.status == 200
    assert first.body["total"] == 5
    assert [m["name"] for m in first.body["items"]] == names[:2]
    next_url = urlsplit(first.body["next"])
    assert (next_url.scheme, next_url.netloc, next_url.path) == ("http", urlsplit(api.base).netloc, "/meshes")
    assert parse_qs(next_url.query) == {"size": ["2"], "offset": ["2"]}

    seen: list[str] = []
    url: str | None = f"{api.base}/meshes?size=2"
    while url is not None:
        page = await api.get(url.removeprefix(api.base))
        assert page.body["total"] == 5
        seen += [m["name"] for m in page.body["items"]]
        url = page.body["next"]
    assert seen == names

    last = await api.get("/meshes?size=2&offset=4")
    assert ([m["name"] for m in last.body["items"]], last.body["next"]) == (["mesh-4"], None)
    whole = await api.get("/meshes")
    assert (whole.body["total"], len(whole.body["items"]), whole.body["next"]) == (5, 5, None)


async def test_lists_across_and_within_meshes(api: Api) -> None:
    """/traffic-traces and /dataplanes list every mesh, ordered by (mesh, name); /meshes/{m}/... only m."""
    for mesh in ("alpha", "beta"):
        await put_ok(api, f"/meshes/{mesh}", {"type": "Mesh", "name": mesh})
        for name in ("tt-2", "tt-1"):
            await put_ok(api, f"/meshes/{mesh}/traffic-traces/{name}", traffic_trace(mesh, name))
        await put_ok(api, f"/meshes/{mesh}/dataplanes/dp-1", dataplane(mesh, "dp-1"))

    everywhere = await api.get("/traffic-traces")
    assert everywhere.body["total"] == 4 and everywhere.body["next"] is None
    assert [strip_times(i) for i in everywhere.body["items"]] == [
        traffic_trace(m, n) for m in ("alpha", "beta") for n in ("tt-1", "tt-2")
    ]
    in_beta = await api.get("/meshes/beta/traffic-traces")
    assert [strip_times(i) for i in in_beta.body["items"]] == [traffic_trace("beta", n) for n in ("tt-1", "tt-2")]
    assert in_beta.body["total"] == 2

    dataplanes = await api.get("/dataplanes")
    assert [strip_times(i) for i in dataplanes.body["items"]] == [
        dataplane("alpha", "dp-1"), dataplane("beta", "dp-1")
    ]
    assert (await api.get("/meshes/nowhere/dataplanes")).body == {"total": 0, "items": [], "next": None}


@BOTH_STORES
async def test_delete_then_not_found(api: Api) -> None:
    """DELETE is 200 `{}`; afterwards GET and DELETE are 404 with Kuma's bodies."""
    await put_ok(api, "/meshes/default", docs_yaml("zipkin-mesh.yaml"))
    await put_ok(api, TT_PATH, docs_yaml("trace-all-traffic.yaml"))
    deleted = await api.delete(TT_PATH)
    assert (deleted.status, deleted.body) == (200, {})
    gone = await api.get(TT_PATH)
    assert (gone.status, gone.body) == (404, {"title": "Could not retrieve a resource", "details": "Not found"})
    again = await api.delete(TT_PATH)
    assert (again.status, again.body) == (404, {"title": "Could not delete a resource", "details": "Not found"})
    assert (await api.get("/meshes/default")).status == 200


@pytest.mark.parametrize("path", ["/meshes/nope", "/meshes/default/traffic-traces/nope", "/meshes/x/dataplanes/y"])
async def test_get_missing_is_404(api: Api, path: str) -> None:
    """GET of a missing resource (of any kind) is Kuma's 404 body."""
    reply = await api.get(path)
    assert (reply.status, reply.body) == (404, {"title": "Could not retrieve a resource", "details": "Not found"})


@BOTH_STORES
async def test_mesh_delete_cascades(api: Api) -> None:
    """Deleting a Mesh removes its TrafficTraces and Dataplanes and leaves other meshes alone."""
    for mesh in ("doomed", "kept"):
        await put_ok(api, f"/meshes/{mesh}", {"type": "Mesh", "name": mesh})
        await put_ok(api, f"/meshes/{mesh}/traffic-traces/tt", traffic_trace(mesh, "tt"))
        await put_ok(api, f"/meshes/{mesh}/dataplanes/dp", dataplane(mesh, "dp"))
    assert (await api.delete("/meshes/doomed")).status == 200
    snapshot = await api.snapshot()
    assert {kind: [(r.get("mesh"), r["name"]) for r in items] for kind, items in snapshot.items()} == {
        "Mesh": [(None, "kept")], "TrafficTrace": [("kept", "tt")], "MeshTrace": [], "Dataplane": [("kept", "dp")],
    }
    assert (await api.get("/meshes/doomed/traffic-traces/tt")).status == 404


async def test_traffic_trace_with_unknown_backend_is_created_with_warning(api: Api) -> None:
    """Kuma accepts a backend the mesh lacks (it may be added later); we store it and warn."""
    await put_ok(api, "/meshes/default", docs_yaml("zipkin-mesh.yaml"))
    reply = await api.put("/meshes/default/traffic-traces/t", traffic_trace("default", "t", backend="nope"))
    assert (reply.status, reply.body) == (201, {"result": "created", "warnings": [
        ('tracing backend "nope" is not defined in the mesh (defined: jaeger-collector); '
         "proxies selected by this TrafficTrace will not be traced until it is added")
    ]})
    assert strip_times((await api.get("/meshes/default/traffic-traces/t")).body)["conf"] == {"backend": "nope"}


@BOTH_STORES
async def test_dry_run_reports_and_validates_but_writes_nothing(api: Api) -> None:
    """?dryRun=true answers as a real PUT would (created/updated/unchanged, 400s) and leaves the store alone."""
    mesh = docs_yaml("zipkin-mesh.yaml")
    await put_ok(api, "/meshes/default", mesh)
    before = await api.snapshot()

    created = await api.put("/meshes/other?dryRun=true", {"type": "Mesh", "name": "other"})
    assert (created.status, created.body) == (201, {"result": "created", "dryRun": True})
    unchanged = await api.put("/meshes/default?dryRun=true", mesh)
    assert (unchanged.status, unchanged.body) == (200, {"result": "unchanged", "dryRun": True})
    changed = await api.put("/meshes/default?dryRun=true", {"type": "Mesh", "name": "default"})
    assert (changed.status, changed.body) == (200, {"result": "updated", "dryRun": True})
    warned = await api.put("/meshes/default/traffic-traces/t?dryRun=true", traffic_trace("default", "t", backend="x"))
    assert (warned.status, warned.body["result"], len(warned.body["warnings"])) == (201, "created", 1)

    invalid = await api.put("/meshes/default/traffic-traces/t?dryRun=true", traffic_trace("default", "t", selectors=[]))
    assert (invalid.status, invalid.body) == (400, {
        "title": "Could not create a resource", "details": "Resource is not valid",
        "causes": [{"field": "selectors", "message": "must have at least one element"}],
    })
    no_mesh = await api.put("/meshes/ghost/traffic-traces/t?dryRun=true", traffic_trace("ghost", "t"))
    assert (no_mesh.status, no_mesh.body["details"]) == (400, "Mesh is not found")
    assert await api.snapshot() == before


@pytest.mark.parametrize(
    ("query", "details", "cause"),
    [
        ("size=abc", "Invalid page size", ("size", "must be an integer in the range [1, 1000]")),
        ("size=0", "Invalid page size", ("size", "must be an integer in the range [1, 1000]")),
        ("size=1001", "Invalid page size", ("size", "must be an integer in the range [1, 1000]")),
        ("offset=-1", "Invalid offset", ("offset", "must be a non-negative integer")),
        ("offset=x", "Invalid offset", ("offset", "must be a non-negative integer")),
    ],
    ids=["size-text", "size-zero", "size-too-big", "offset-negative", "offset-text"],
)
@pytest.mark.parametrize("path", ["/meshes", "/traffic-traces", "/meshes/default/dataplanes"])
async def test_invalid_paging(api: Api, path: str, query: str, details: str, cause: tuple[str, str]) -> None:
    """Bad size/offset are 400 with Kuma's details, on every list route."""
    reply = await api.get(f"{path}?{query}")
    assert (reply.status, reply.body) == (400, {
        "title": "Could not list resources", "details": details,
        "causes": [{"field": cause[0], "message": cause[1]}],
    })


async def test_metrics_counts_api_requests(api: Api) -> None:
    """GET /metrics is Prometheus text and counts API requests by method, route and status."""
    await api.get("/")
    await api.get("/meshes/nope")
    async with api.session.get(api.base + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert '# TYPE api_requests_total counter' in text
    assert 'api_requests_total{method="GET",route="/",status="200"} 1.0' in text
    assert 'api_requests_total{method="GET",route="/meshes/{name}",status="404"} 1.0' in text
