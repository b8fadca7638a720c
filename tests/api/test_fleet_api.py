"""Fleet, span-flow, Envoy-view and dry-run routes on a real in-process control plane (`running()`), with raw
ADS streams standing in for Envoys: Kuma's `dataplanes+insights` shape, the Envoys without a Dataplane, the
verdicts, the read auth of the per-dataplane routes, and `POST /dry-run` / `PUT ?dryRun=true` with changes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2

from controlplane.cli.run import ControlPlane, RunConfig, running
from controlplane.resources.codec import decode_resource

HOUR = timedelta(hours=1)
CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
MESH = {"type": "Mesh", "name": "default", "tracing": {"backends": [
    {"name": "jaeger", "type": "zipkin", "conf": {"url": "http://127.0.0.1:9411/api/v2/spans"}}]}}
TRACE = {"type": "TrafficTrace", "mesh": "default", "name": "all", "selectors": [{"match": {"kuma.io/service": "*"}}],
         "conf": {"backend": "jaeger"}}


def dataplane(name: str, port: int, service: str = "web") -> dict[str, Any]:
    return {"type": "Dataplane", "mesh": "default", "name": name, "networking": {"address": "127.0.0.1", "inbound": [
        {"port": port, "servicePort": port + 1, "tags": {"kuma.io/service": service, "kuma.io/protocol": "http"}}]}}


class Client:
    def __init__(self, plane: ControlPlane, session: aiohttp.ClientSession) -> None:
        self.plane, self.session, self.base = plane, session, f"http://127.0.0.1:{plane.api_port}"

    async def call(self, method: str, path: str, body: object = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.base + path, json=body, headers=headers) as response:
            return response.status, (await response.json() if response.content_type == "application/json"
                                     else await response.text())

    async def put(self, *docs: dict[str, Any], token: str | None = None) -> None:
        """PUT each document, then wait until the reconciler mirrored them (inspection reads the mirror)."""
        for doc in docs:
            path = f"/meshes/{doc['name']}" if doc["type"] == "Mesh" else \
                f"/meshes/{doc['mesh']}/{'dataplanes' if doc['type'] == 'Dataplane' else 'traffic-traces'}/{doc['name']}"
            status, body = await self.call("PUT", path, doc, token=token)
            assert status in (200, 201), body
        world = self.plane.reconciler.world

        async def mirrored() -> bool:
            return all(world.get(key) is not None for key in (decode_resource(doc).key for doc in docs))
        await eventually(mirrored)


@asynccontextmanager
async def control_plane(**overrides: Any) -> AsyncIterator[Client]:
    config = RunConfig(store_url="memory", api_host="127.0.0.1", api_port=0, xds_host="127.0.0.1", xds_port=0,
                       debounce_s=0.01, max_wait_s=0.05, **overrides)
    async with running(config) as plane, aiohttp.ClientSession() as session:
        yield Client(plane, session)


@pytest.fixture
async def cp() -> AsyncIterator[Client]:
    async with control_plane() as client:
        yield client


@asynccontextmanager
async def ads_stream(port: int, node: str) -> AsyncIterator[None]:
    """A SotW ADS stream for `node` asking for clusters, held open for the body (an Envoy, minus Envoy)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        method = channel.stream_stream("/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
                                       request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
                                       response_deserializer=discovery_pb2.DiscoveryResponse.FromString)
        call = method()
        await call.write(discovery_pb2.DiscoveryRequest(type_url=CDS, node={"id": node}))
        try:
            yield
        finally:
            call.cancel()


async def eventually(check: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


def times_checked(value: Any) -> Any:
    """`value` with every RFC 3339 timestamp replaced by "<time>" (after checking its format)."""
    if isinstance(value, dict):
        return {k: ("<time>" if k.endswith("Time") and TIME.match(str(v)) else times_checked(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [times_checked(v) for v in value]
    return value


async def test_dataplanes_insights_has_kumas_shape_online_then_offline(cp: Client) -> None:
    await cp.put(MESH, TRACE, dataplane("web-1", 20001), dataplane("idle-1", 20003, "idle"))
    async with ads_stream(cp.plane.xds_port, "default.web-1"):
        async def sent() -> bool:
            subscriptions = cp.plane.status.subscriptions("default.web-1")
            return bool(subscriptions) and subscriptions[-1].responses_sent > 0
        await eventually(sent)
        status, online = await cp.call("GET", "/meshes/default/dataplanes+insights/web-1")
    assert status == 200
    subscription = {"id": "1", "controlPlaneInstanceId": cp.plane.status.instance_id, "connectTime": "<time>",
                    "status": {"lastUpdateTime": "<time>", "total": {"responsesSent": "1"},
                               "cds": {"responsesSent": "1"}, "eds": {}, "lds": {}, "rds": {}}}
    assert times_checked(online) == {
        "type": "DataplaneOverview", "mesh": "default", "name": "web-1", "creationTime": "<time>",
        "modificationTime": "<time>", "dataplane": {"networking": dataplane("web-1", 20001)["networking"]},
        "dataplaneInsight": {"subscriptions": [subscription], "metadata": {"tracing": {
            "verdict": "no stats", "backend": "jaeger", "type": "zipkin", "policyKind": "TrafficTrace",
            "message": "Envoy has not reported its stats (it runs without the control plane's stats sink, or has "
                       "not flushed them yet)", "asOf": None, "lastSeen": None, "lastReport": None},
            "xds": {"state": "pending"}}},  # CDS sent, not ACKed yet (this client never ACKs)
    }

    async def offline() -> bool:
        return not cp.plane.status.is_connected("default.web-1")
    await eventually(offline)
    _, listed = await cp.call("GET", "/meshes/default/dataplanes+insights")
    assert [(i["name"], [s.get("disconnectTime") is not None for s in i["dataplaneInsight"].get("subscriptions", [])])
            for i in listed["items"]] == [("idle-1", []), ("web-1", [True])]
    assert (listed["total"], listed["next"]) == (2, None)
    _, filtered = await cp.call("GET", "/dataplanes+insights?tag=kuma.io/service:idle")
    assert [i["name"] for i in filtered["items"]] == ["idle-1"]
    assert (await cp.call("GET", "/meshes/nowhere/dataplanes+insights"))[0] == 404


async def test_an_envoy_without_a_dataplane_is_listed(cp: Client) -> None:
    await cp.put(MESH)
    async with ads_stream(cp.plane.xds_port, "default.ghost"):
        async def listed() -> bool:
            return bool((await cp.call("GET", "/unknown-dataplanes"))[1]["items"])
        await eventually(listed)
        _, body = await cp.call("GET", "/unknown-dataplanes")
    assert times_checked(body) == {"total": 1, "items": [
        {"nodeId": "default.ghost", "mesh": "default", "name": "ghost", "connectTime": "<time>",
         "message": "Envoy `default.ghost` is connected but no Dataplane default/ghost exists"}]}


async def test_span_verdicts_of_a_dataplane_and_of_a_mesh(cp: Client) -> None:
    await cp.put(MESH, dataplane("web-1", 20001))
    _, off = await cp.call("GET", "/meshes/default/dataplanes/web-1/spans")
    assert off == {"dataplane": {"mesh": "default", "name": "web-1"}, "spans": [
        {"verdict": "not traced", "message": "no MeshTrace or TrafficTrace targets this dataplane", "backend": None,
         "type": None, "policyKind": None, "reason": "no_matching_policy", "asOf": None, "lastSeen": None,
         "lastReport": None}]}
    await cp.put(TRACE)

    async def traced() -> bool:
        return (await cp.call("GET", "/meshes/default/spans"))[1]["backends"] != []
    await eventually(traced)
    _, mesh = await cp.call("GET", "/meshes/default/spans")
    assert mesh == {"mesh": "default", "dataplanes": 1, "notTraced": [], "backends": [
        {"backend": "jaeger", "type": "zipkin", "proxies": {"no stats": 1},
         "perMinute": {"spansSent": 0.0, "accepted": 0.0, "dropped": 0.0, "failed": 0.0}}]}
    assert (await cp.call("GET", "/meshes/default/dataplanes/nobody/spans"))[0] == 404


async def test_envoy_views_need_a_runner_and_the_dataplanes_token() -> None:
    async with control_plane(dataplane_auth="token", api_localhost_is_admin=False) as cp:
        await cp.put(MESH, dataplane("web-1", 20001), token=cp.plane.tokens.issue_admin(HOUR))
        other = cp.plane.tokens.issue_dataplane("default", "web-2", HOUR)
        own = cp.plane.tokens.issue_dataplane("default", "web-1", HOUR)
        for path in ("/meshes/default/dataplanes/web-1/spans", "/meshes/default/dataplanes/web-1/config-dump"):
            assert (await cp.call("GET", path))[0] == 401
            assert (await cp.call("GET", path, token=other))[0] == 403
        assert (await cp.call("GET", "/meshes/default/dataplanes/web-1/spans", token=own))[0] == 200
        status, body = await cp.call("GET", "/meshes/default/dataplanes/web-1/stats", token=own)
    assert (status, body["title"]) == (502, "Could not reach the Envoy")
    assert body["details"].startswith("no runner serves the Envoy of default.web-1")


async def test_dry_run_validates_a_batch_as_a_unit_and_lists_the_changes(cp: Client) -> None:
    await cp.put(MESH, dataplane("web-1", 20001))
    other_mesh = {"type": "Mesh", "name": "other"}
    other_trace = {**TRACE, "mesh": "other", "conf": {}}
    status, body = await cp.call("POST", "/dry-run", {"items": [other_mesh, other_trace, TRACE]})
    assert status == 200, body
    assert [(r["name"], r["result"]) for r in body["results"]] == [("other", "created"), ("all", "created"),
                                                                    ("all", "created")]
    (change,) = body["results"][2]["changes"]
    assert change == {"mesh": "default", "dataplane": "web-1", "changed": ["policy", "backend", "sampling",
                                                                            "tracedListeners"],
                      "before": {"policy": None, "backend": None, "type": None, "sampling": None, "tags": [],
                                 "reason": "no MeshTrace or TrafficTrace targets this dataplane",
                                 "tracedListeners": []},
                      "after": {"policy": "TrafficTrace all", "backend": "jaeger", "type": "zipkin", "sampling": {},
                                "tags": [], "tracedListeners": ["inbound:127.0.0.1:20001"]}}
    assert (await cp.call("GET", "/meshes/other"))[0] == 404  # nothing was written
    status, invalid = await cp.call("POST", "/dry-run", {"items": [{**TRACE, "mesh": "nowhere"}]})
    assert (status, invalid["valid"], invalid["results"][0]["causes"]) == (
        400, False, [{"field": "mesh", "message": "mesh of name nowhere is not found"}])
    status, put = await cp.call("PUT", "/meshes/default/traffic-traces/all?dryRun=true", TRACE)
    assert (status, put["result"], [c["dataplane"] for c in put["changes"]]) == (201, "created", ["web-1"])
