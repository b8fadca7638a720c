"""A small mesh for the service-graph and attachment tests, built and decided by the real codec, plugins and
generators: web → backend (http, traced), backend → db (db is tcp: not traced), web → external (nobody serves
it). TrafficTrace `all` selects every service, `web-only` outranks it on web-1, MeshTrace `db-trace` targets
db-1 (so `all` is displaced there)."""

from __future__ import annotations

from typing import Any

from controlplane.resources.codec import decode_resource
from controlplane.resources.model import Resource
from controlplane.spans.verdict import Verdict, judge
from controlplane.xds.entries import ResourceInterner
from controlplane.xds.generate.context import build_mesh_context, build_proxy
from controlplane.xds.generate.generators import generate
from controlplane.xds.node import node_id
from controlplane.xds.reconciler import ProxyRecord

ZIPKIN = {"name": "jaeger", "type": "zipkin", "conf": {"url": "http://127.0.0.1:9411/api/v2/spans"}}


def _dataplane(name: str, service: str, port: int, protocol: str, outbounds: list[tuple[int, str]]) -> dict[str, Any]:
    return {"type": "Dataplane", "mesh": "default", "name": name, "networking": {"address": "127.0.0.1", "inbound": [
        {"port": port, "servicePort": port + 1000, "tags": {"kuma.io/service": service, "kuma.io/protocol": protocol}}],
        "outbound": [{"port": p, "tags": {"kuma.io/service": s}} for p, s in outbounds]}}


MESH = decode_resource({"type": "Mesh", "name": "default", "tracing": {"backends": [ZIPKIN]}})
POLICIES = [decode_resource(doc) for doc in (
    {"type": "TrafficTrace", "mesh": "default", "name": "all", "selectors": [{"match": {"kuma.io/service": "*"}}],
     "conf": {"backend": "jaeger"}},
    {"type": "TrafficTrace", "mesh": "default", "name": "web-only", "selectors": [{"match": {"kuma.io/service": "web"}}],
     "conf": {"backend": "jaeger"}},
    {"type": "MeshTrace", "mesh": "default", "name": "db-trace", "spec": {
        "targetRef": {"kind": "Dataplane", "name": "db-1"},
        "default": {"backends": [{"type": "Zipkin", "zipkin": {"url": "http://127.0.0.1:9411/api/v2/spans"}}]}}},
)]
DATAPLANES = [decode_resource(doc) for doc in (
    _dataplane("web-1", "web", 20000, "http", [(10001, "backend"), (10002, "external")]),
    _dataplane("backend-1", "backend", 20010, "http", [(10003, "db")]),
    _dataplane("db-1", "db", 20020, "tcp", []),
)]


def records(dataplanes: list[Resource] = DATAPLANES) -> dict[str, ProxyRecord]:
    """What the reconciler would keep after publishing every proxy."""
    ctx = build_mesh_context(MESH, POLICIES, dataplanes)
    interner = ResourceInterner()
    found = {}
    for dataplane in ctx.dataplanes:
        proxy = build_proxy(ctx, dataplane)
        found[node_id("default", dataplane.name)] = ProxyRecord(proxy.policies, generate(ctx, proxy, interner))
    return found


def verdicts(recorded: dict[str, ProxyRecord]) -> dict[str, Verdict]:
    """No Envoy has reported: `no stats` where tracing applies, `not traced` elsewhere."""
    return {node: judge(record.policies, None, 0.0) for node, record in recorded.items()}
