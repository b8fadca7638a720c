"""Kuma's read endpoints the ecosystem uses (issue 17 §5): `GET /` (index), `GET /_resources` (type
descriptors), `GET /config` (effective configuration, secrets redacted), `GET /mesh-insights[/{mesh}]`, and
`labels` on resources, compared whole with Kuma's shapes (pkg/api-server/testdata, app/kumactl/cmd/inspect/
testdata/inspect-meshes.golden.json).

A whole control plane runs in-process (`running`: memory store, ports 0) and a real ADS stream (raw gRPC
client from the xds-protos stubs) makes one dataplane online, so "online" is what the status registry says.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from controlplane import __version__
from controlplane.cli.run import ControlPlane, RunConfig, running

DEADLINE_S = 10.0
LISTENERS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def dataplane(name: str, port: int, mesh: str = "default") -> dict[str, Any]:
    return {"type": "Dataplane", "mesh": mesh, "name": name, "networking": {"address": "127.0.0.1", "inbound": [
        {"port": port, "servicePort": port + 1000, "tags": {"kuma.io/service": name, "kuma.io/protocol": "http"}}]}}


TRACE = {"type": "TrafficTrace", "mesh": "default", "name": "all", "selectors": [{"match": {"kuma.io/service": "*"}}],
         "conf": {"backend": "z"}}
MESH = {"type": "Mesh", "name": "default", "tracing": {"backends": [
    {"name": "z", "type": "zipkin", "conf": {"url": "http://zipkin:9411/api/v2/spans"}}]}}


class Plane:
    def __init__(self, cp: ControlPlane, session: aiohttp.ClientSession) -> None:
        self.cp, self.session, self.base = cp, session, f"http://127.0.0.1:{cp.api_port}"

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base + path) as response:
            return response.status, await response.json()

    async def put(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.session.put(self.base + path, json=body) as response:
            return response.status, await response.json()


@pytest.fixture
async def plane(tmp_path: Any) -> AsyncIterator[Plane]:
    config = RunConfig(store_url="memory", api_host="127.0.0.1", api_port=0, xds_host="127.0.0.1", xds_port=0,
                       debounce_s=0.01, max_wait_s=0.1)
    async with running(config) as cp, aiohttp.ClientSession() as session:
        served = Plane(cp, session)
        for path, body in [("/meshes/default", MESH), ("/meshes/other", {"type": "Mesh", "name": "other"}),
                           ("/meshes/default/traffic-traces/all", TRACE),
                           ("/meshes/default/dataplanes/web-1", dataplane("web-1", 20001)),
                           ("/meshes/default/dataplanes/web-2", dataplane("web-2", 20002))]:
            status, reply = await served.put(path, body)
            assert status == 201, reply
        yield served


async def online(plane: Plane, node: str) -> tuple[grpc.aio.Channel, Any]:
    """An ADS stream for `node`, once the status registry has it (a node without a snapshot is never
    answered, so the test waits on the registry, not on a response)."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{plane.cp.xds_port}")
    call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
    await call.write(discovery_pb2.DiscoveryRequest(type_url=LISTENERS, node=base_pb2.Node(id=node)))
    async with asyncio.timeout(DEADLINE_S):
        while node not in plane.cp.status.connected_nodes():
            await asyncio.sleep(0.01)
    return channel, call


async def test_index_has_kumas_fields(plane: Plane) -> None:
    status, body = await plane.get("/")
    assert status == 200
    assert re.fullmatch(re.escape(socket.gethostname()) + r"-[0-9a-f]{4}", body.pop("instanceId"))
    assert re.fullmatch(r"[0-9a-f-]{36}", body.pop("clusterId"))
    assert body == {"hostname": socket.gethostname(), "tagline": "Kuma-compatible tracing control plane",
                    "product": "controlplane", "version": __version__, "gui": "/gui"}


async def test_resource_type_descriptors_are_kumas(plane: Plane) -> None:
    """The entries of Kuma's _resources.golden.json for the kinds this control plane has, in name order."""
    status, body = await plane.get("/_resources")
    assert (status, body) == (200, {"resources": [
        {"includeInFederation": False, "name": "Dataplane", "path": "dataplanes", "pluralDisplayName": "Dataplanes",
         "readOnly": False, "scope": "Mesh", "singularDisplayName": "Dataplane"},
        {"includeInFederation": True, "name": "Mesh", "path": "meshes", "pluralDisplayName": "Meshes",
         "readOnly": False, "scope": "Global", "singularDisplayName": "Mesh"},
        {"includeInFederation": False, "name": "MeshInsight", "path": "mesh-insights",
         "pluralDisplayName": "Mesh Insights", "readOnly": True, "scope": "Global",
         "singularDisplayName": "Mesh Insight"},
        {"includeInFederation": True, "name": "MeshTrace", "path": "meshtraces", "pluralDisplayName": "Mesh Traces",
         "policy": {"hasFromTargetRef": False, "hasToTargetRef": False, "isFromAsRules": False, "isTargetRef": True},
         "readOnly": False, "scope": "Mesh", "singularDisplayName": "Mesh Trace"},
        {"includeInFederation": True, "name": "TrafficTrace", "path": "traffic-traces",
         "pluralDisplayName": "Traffic Traces", "policy": {"hasFromTargetRef": False, "hasToTargetRef": False,
                                                          "isFromAsRules": False, "isTargetRef": False},
         "readOnly": False, "scope": "Mesh", "singularDisplayName": "Traffic Trace"},
    ]})


async def test_config_is_the_effective_configuration(plane: Plane) -> None:
    status, body = await plane.get("/config")
    assert status == 200
    assert body == {
        "environment": "universal", "mode": "zone", "store": {"type": "memory"},
        "apiServer": {"http": {"interface": "127.0.0.1", "port": plane.cp.api_port},
                      "https": {"enabled": False, "tlsCertFile": "", "tlsKeyFile": ""},
                      "authn": {"localhostIsAdmin": True, "readAuth": "auto"}, "allowedHosts": [],
                      "maxConnections": None, "gui": {"enabled": True, "basePath": "/gui", "maxEventClients": 64}},
        "dpServer": {"interface": "127.0.0.1", "port": plane.cp.xds_port, "tls": False,
                     "authn": {"dpProxy": {"type": "none"}}, "maxReceiveBytes": 4194304, "maxConnections": None},
        "xdsServer": {"debounce": "0.01s", "debounceFirst": "0.02s", "maxWait": "0.1s"},
        "tokens": {"signingKeyFile": "", "adminTokenFile": "", "revocationPollInterval": "2.0s"},
    }


def stat(total: int, online: int) -> dict[str, int]:
    return {"total": total, "online": online, "offline": total - online}


async def test_mesh_insights_count_dataplanes_online_by_ads_stream_and_policies_by_type(plane: Plane) -> None:
    channel, call = await online(plane, "default.web-1")
    try:
        status, body = await plane.get("/mesh-insights/default")
        assert status == 200
        assert RFC3339.match(body.pop("creationTime")) and RFC3339.match(body.pop("modificationTime"))
        assert body == {
            "type": "MeshInsight", "name": "default",
            "dataplanes": stat(2, 1),
            "dataplanesByType": {"standard": stat(2, 1), "gateway": stat(0, 0), "gatewayBuiltin": stat(0, 0),
                                 "gatewayDelegated": stat(0, 0)},
            "policies": {"TrafficTrace": {"total": 1}},
            "dpVersions": {"kumaDp": {}, "envoy": {"unknown": stat(2, 1)}},  # a raw client reports no version
            "resources": {"Dataplane": {"total": 2}, "TrafficTrace": {"total": 1}},
        }
    finally:
        call.cancel()
        await channel.close()
    async with asyncio.timeout(DEADLINE_S):  # the stream is gone: offline again
        while (await plane.get("/mesh-insights/default"))[1]["dataplanes"] != stat(2, 0):
            await asyncio.sleep(0.01)


async def test_a_stream_of_an_unregistered_node_is_not_online(plane: Plane) -> None:
    channel, call = await online(plane, "default.ghost")
    try:
        assert (await plane.get("/mesh-insights/default"))[1]["dataplanes"] == stat(2, 0)
    finally:
        call.cancel()
        await channel.close()


async def test_mesh_insights_list_pages_like_every_list(plane: Plane) -> None:
    status, body = await plane.get("/mesh-insights?size=1")
    assert status == 200
    assert (body["total"], [i["name"] for i in body["items"]]) == (2, ["default"])
    assert body["next"] == f"{plane.base}/mesh-insights?size=1&offset=1"
    _, last = await plane.get("/mesh-insights?size=1&offset=1")
    assert [(i["name"], i["dataplanes"], i["policies"], i["resources"]) for i in last["items"]] == [
        ("other", stat(0, 0), {}, {})]
    assert last["next"] is None
    status, missing = await plane.get("/mesh-insights/nope")
    assert (status, missing) == (404, {"title": "Could not retrieve a resource", "details": "Not found"})


async def test_labels_are_kept_and_returned_as_kuma_does(plane: Plane) -> None:
    """`labels` comes after `modificationTime`, with the computed kuma.io/mesh; a labels-only change is an
    update; a kuma.io/mesh that differs from the mesh is Kuma's violation."""
    labelled = {**TRACE, "labels": {"team": "core"}}
    assert await plane.put("/meshes/default/traffic-traces/all", labelled) == (200, {"result": "updated"})
    status, body = await plane.get("/meshes/default/traffic-traces/all")
    assert status == 200
    assert list(body)[:6] == ["type", "mesh", "name", "creationTime", "modificationTime", "labels"]
    assert body["labels"] == {"kuma.io/mesh": "default", "team": "core"}
    assert await plane.put("/meshes/default/traffic-traces/all", body) == (200, {"result": "unchanged"})
    assert (await plane.get("/meshes/other"))[1].get("labels") is None  # global and unlabelled: no key
    status, refused = await plane.put("/meshes/default/traffic-traces/all",
                                      {**TRACE, "labels": {"kuma.io/mesh": "other"}})
    assert (status, refused) == (400, {"title": "Could not update a resource", "details": "Resource is not valid",
                                       "causes": [{"field": 'labels["kuma.io/mesh"]', "message":
                                                   "kuma.io/mesh label must not differ from mesh set on resource"}]})
    assert (await plane.get("/meshes/default/traffic-traces/all"))[1]["labels"] == body["labels"]
