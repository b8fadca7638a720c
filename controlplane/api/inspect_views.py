"""JSON bodies of the inspection endpoints, from the typed views of controlplane/xds/inspect.py.

Presentation only: field names and shapes the CLI and users rely on (`matchedPolicies`, `tracing`,
`listeners`, per-type xDS versions). `xds_body` renders every resource with json_format, which is slow for
big resources, so the route runs it off the event loop.
"""

from __future__ import annotations

from google.protobuf import json_format

from controlplane.policies.plugin import Decision
from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.xds.inspect import DataplaneView, XdsView
from controlplane.xds.types import ADS_ORDER

PENDING = "the control plane has not generated this dataplane's configuration yet"


def policies_body(view: DataplaneView) -> dict[str, object]:
    if view.policies is None:
        matched: dict[str, list[str]] = {}
        tracing: dict[str, object] = {"enabled": False, "reason": "pending", "message": PENDING}
    else:
        matched = {d.kind: list(d.matched) for d in view.policies.decisions}
        decisions = view.policies.decisions
        tracing = tracing_summary(view.policies.applied or decisions[-1], decisions)
    return {
        "dataplane": {"mesh": view.mesh, "name": view.name},
        "matchedPolicies": matched,
        "tracing": tracing,
        "listeners": [
            {"listener": n.listener, "service": n.service, "protocol": n.protocol, "traced": n.traced,
             "reason": n.reason}
            for n in view.listeners
        ],
    }


def tracing_summary(decision: Decision, decisions: tuple[Decision, ...]) -> dict[str, object]:
    """The effective tracing of the deciding policy kind, or why there is none."""
    traffic_trace = next((d for d in decisions if d.kind == TRAFFIC_TRACE.name), None)
    tt_name = traffic_trace.matched[-1] if traffic_trace is not None and traffic_trace.matched else None
    tracing = decision.tracing
    if tracing is None:
        return {"enabled": False, "trafficTrace": tt_name, "backend": decision.backend or None,
                "reason": decision.reason or None, "message": decision.message}
    sampling = tracing.sampling.overall
    return {
        "enabled": True,
        "trafficTrace": tt_name,
        "backend": tracing.backend.name,
        "type": tracing.backend.type_name,
        "sampling": sampling if sampling is not None else 100.0,
        "samplingSet": sampling is not None,
    }


def xds_body(view: XdsView) -> dict[str, object]:
    types: dict[str, object] = {}
    snapshot, status = view.snapshot, view.status
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
    return {"nodeId": view.node_id, "connected": status is not None,
            "variant": status.variant if status is not None else None,
            "envoyVersion": str(status.envoy_version) if status and status.envoy_version else None,
            "types": types}
