"""Deciding once per distinct inbound tag sets: replicas share one decision object, and a MeshTrace that
targets a Dataplane by name (which reads more than the tags) turns the memo off, so each replica is decided
on its own."""

from __future__ import annotations

from typing import Any

from builders import dataplane, inbound, mesh, traffic_trace, zipkin_backend

from controlplane.policies.meshtrace.api import MESH_TRACE
from controlplane.policies.plugins import decide, prepare_policies
from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.resources.codec import decode_resource
from controlplane.resources.model import Resource

MESH = mesh(backends=[zipkin_backend(name="zipkin")])
REPLICAS = [dataplane(f"web-{i}", inbounds=[inbound(port=8080, service="web", tags={"version": "v1"})])
            for i in range(3)]
OTHER = dataplane("web-v2", inbounds=[inbound(port=8080, service="web", tags={"version": "v2"})])


def meshtrace(name: str, ref: dict[str, Any]) -> Resource:
    return decode_resource({"type": "MeshTrace", "mesh": "default", "name": name, "spec": {
        "targetRef": ref, "default": {"backends": [{"type": "Zipkin", "zipkin": {"url": "http://z:9411/api/v2/spans"}}]}}})


def test_replicas_with_equal_tags_share_one_decision() -> None:
    prepared = prepare_policies(MESH, {TRAFFIC_TRACE: [traffic_trace(backend="zipkin")]})
    first, *others = (decide(prepared, dp) for dp in REPLICAS)
    assert prepared.by_tags and all(other is first for other in others)
    assert decide(prepared, OTHER) == first and decide(prepared, OTHER) is not first  # its own key


def test_a_meshtrace_by_dataplane_name_is_decided_per_dataplane() -> None:
    by_name = meshtrace("web-1-only", {"kind": "Dataplane", "name": "web-1"})
    prepared = prepare_policies(MESH, {MESH_TRACE: [by_name]})
    assert not prepared.by_tags
    matched = [decide(prepared, dp).decision(MESH_TRACE).matched for dp in REPLICAS]
    assert matched == [(), ("web-1-only",), ()]
