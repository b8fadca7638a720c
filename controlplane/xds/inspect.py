"""Kuma-style inspection (implements `controlplane.api.inspection.Inspector`).

Answers "why does (or doesn't) this proxy trace?" from the same pure functions generation uses, so the
answer cannot disagree with the config that was sent. Reads the reconciler's mirror and the cache; no I/O.
"""

from __future__ import annotations

from typing import Final

from google.protobuf import json_format

from controlplane.errors import NotFound
from controlplane.policy import ResolutionReason, TracingResolution
from controlplane.policy.protocol import parse_protocol
from controlplane.resources.model import Kind, Resource, ResourceKey
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.generate import build_mesh_context, build_proxy
from controlplane.xds.generate.context import MeshContext, service_of
from controlplane.xds.generate.names import inbound_listener_name, outbound_listener_name
from controlplane.xds.observer import StatusRegistry
from controlplane.xds.reconciler import Reconciler, node_id
from controlplane.xds.types import ADS_ORDER

REASONS: Final = {
    ResolutionReason.NO_MATCHING_POLICY: "no TrafficTrace selects this dataplane",
    ResolutionReason.NO_BACKEND_NAMED_AND_NO_DEFAULT: "the TrafficTrace names no backend and the mesh has no defaultBackend",
    ResolutionReason.BACKEND_NOT_FOUND: "backend not found: the TrafficTrace names a backend the mesh does not define",
}


class XdsInspector:
    def __init__(self, reconciler: Reconciler, cache: SnapshotCache, status: StatusRegistry) -> None:
        self.reconciler, self.cache, self.status = reconciler, cache, status

    def _context(self, mesh: str) -> MeshContext:
        group = self.reconciler.world.mesh(mesh)
        if group.mesh is None:
            raise NotFound(f"mesh {mesh}")
        return build_mesh_context(group.mesh, list(group.traffic_traces.values()), list(group.dataplanes.values()))

    def _dataplane(self, mesh: str, name: str) -> Resource:
        found = self.reconciler.world.get(ResourceKey(Kind.DATAPLANE, mesh, name))
        if found is None:
            raise NotFound(f"dataplane {mesh}/{name}")
        return found

    async def dataplane_policies(self, mesh: str, name: str) -> dict[str, object]:
        dataplane = self._dataplane(mesh, name)
        proxy = build_proxy(self._context(mesh), dataplane)
        matched = [proxy.tracing.traffic_trace] if proxy.tracing.traffic_trace else []
        return {
            "dataplane": {"mesh": mesh, "name": name},
            "matchedPolicies": {"TrafficTrace": matched},
            "tracing": tracing_summary(proxy.tracing),
            "listeners": listener_tracing(self._context(mesh), dataplane, proxy.tracing),
        }

    async def traffic_trace_dataplanes(self, mesh: str, name: str) -> dict[str, object]:
        ctx = self._context(mesh)
        if name not in {t.name for t in ctx.traffic_traces}:
            raise NotFound(f"traffic trace {mesh}/{name}")
        items = [
            {"mesh": mesh, "name": dp.name}
            for dp in ctx.dataplanes
            if build_proxy(ctx, dp).tracing.traffic_trace == name
        ]
        return {"total": len(items), "items": items}

    async def dataplane_xds(self, mesh: str, name: str) -> dict[str, object]:
        self._dataplane(mesh, name)
        node = node_id(mesh, name)
        snapshot = self.cache.get_snapshot(node)
        status = self.status.status(node)
        types: dict[str, object] = {}
        for type_url in ADS_ORDER:
            entry: dict[str, object] = {}
            if snapshot is not None and type_url in snapshot.types:
                resources = snapshot.types[type_url]
                entry["version"] = resources.version
                entry["resources"] = [json_format.MessageToDict(e.message) for e in resources.entries.values()]
            type_status = status.types.get(type_url) if status is not None else None
            if type_status is not None:
                entry.update(versionSent=type_status.version_sent, versionAcked=type_status.version_acked,
                             lastNackVersion=type_status.nack_version, lastNackMessage=type_status.nack_message,
                             nacks=type_status.nacks)
            types[type_url.rsplit(".", 1)[-1]] = entry
        return {"nodeId": node, "connected": status is not None,
                "variant": status.variant if status is not None else None,
                "envoyVersion": str(status.envoy_version) if status and status.envoy_version else None,
                "types": types}


def tracing_summary(resolution: TracingResolution) -> dict[str, object]:
    backend = resolution.backend
    if backend is None:
        reason = resolution.reason
        return {"enabled": False, "trafficTrace": resolution.traffic_trace, "backend": resolution.backend_name or None,
                "reason": reason.value if reason else None, "message": REASONS.get(reason, "") if reason else ""}
    return {
        "enabled": True,
        "trafficTrace": resolution.traffic_trace,
        "backend": backend.name,
        "type": backend.type,
        "sampling": backend.sampling.value if backend.HasField("sampling") else 100.0,
        "samplingSet": backend.HasField("sampling"),
    }


def listener_tracing(ctx: MeshContext, dataplane: Resource, resolution: TracingResolution) -> list[dict[str, object]]:
    """Per listener: is it traced, and if not, why (protocol is not http/http2/grpc)."""
    rows: list[dict[str, object]] = []
    net = dataplane.spec.networking
    for inbound in net.inbound:
        protocol = parse_protocol(inbound.tags.get("kuma.io/protocol"))
        rows.append(_row(inbound_listener_name(inbound.address or net.address, inbound.port), service_of(inbound.tags),
                         protocol.value, protocol.is_http, resolution))
    for outbound in net.outbound:
        service = service_of(outbound.tags)
        protocol = ctx.protocol(service)
        rows.append(_row(outbound_listener_name(outbound.address or "127.0.0.1", outbound.port), service,
                         protocol.value, protocol.is_http, resolution))
    return rows


def _row(listener: str, service: str, protocol: str, http: bool, resolution: TracingResolution) -> dict[str, object]:
    traced = http and resolution.enabled
    why = "" if traced else ("protocol is not http, http2 or grpc" if not http else "tracing is off for this proxy")
    return {"listener": listener, "service": service, "protocol": protocol, "traced": traced, "reason": why}
