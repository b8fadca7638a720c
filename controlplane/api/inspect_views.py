"""JSON bodies of the inspection endpoints, from the typed views of controlplane/xds/inspect.py.

Presentation only: field names and shapes the CLI and users rely on (`matchedPolicies`, `tracing`,
`listeners`, per-type xDS versions). `xds_body` renders every resource with json_format, which is slow for
big resources, so the route runs it off the event loop.
"""

from __future__ import annotations

from google.protobuf import json_format

from controlplane.policies.plugin import Decision
from controlplane.policies.plugins import ProxyPolicies
from controlplane.policies.traffictrace.api import TRAFFIC_TRACE
from controlplane.spans.verdict import NO_MATCHING_POLICY, untargeted_message
from controlplane.tracing.backend import CustomTag
from controlplane.xds.inspect import DataplaneView, XdsView
from controlplane.xds.types import ADS_ORDER

PENDING = "the control plane has not generated this dataplane's configuration yet"


def policies_body(view: DataplaneView) -> dict[str, object]:
    """Kuma's `/policies` (matched policies by kind, only kinds that match) with the effective tracing and
    each generated listener's tracing."""
    if view.policies is None:
        matched: dict[str, list[str]] = {}
        tracing: dict[str, object] = {"enabled": False, "reason": "pending", "message": PENDING}
    else:
        matched = {d.kind: list(d.matched) for d in view.policies.decisions if d.matched}
        tracing = tracing_summary(view.policies)
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


def tracing_summary(policies: ProxyPolicies) -> dict[str, object]:
    """The effective tracing of the deciding policy kind, or why there is none. TrafficTrace-era keys
    (`trafficTrace`, `backend`, `type`, `sampling`, `samplingSet`) stay as they were; MeshTrace adds its merge
    order, the sampling trio and tags; a policy of another kind that also targets the proxy is listed under
    `notApplied` with the reason."""
    decisions = policies.decisions
    traffic_trace = next((d for d in decisions if d.kind == TRAFFIC_TRACE.name), None)
    tt_name = traffic_trace.matched[-1] if traffic_trace is not None and traffic_trace.matched else None
    decision = policies.applied
    if decision is None:
        if len(decisions) == 1:
            return {"enabled": False, "trafficTrace": tt_name, "backend": decisions[0].backend or None,
                    "reason": decisions[0].reason or None, "message": decisions[0].message}
        return {"enabled": False, "trafficTrace": None, "backend": None, "reason": NO_MATCHING_POLICY,
                "message": untargeted_message(decisions)}
    summary = _decision_summary(decision, tt_name)
    displaced = [{"kind": d.kind, "name": d.matched[-1],
                  "message": f"{d.kind} {d.matched[-1]} not applied: {decision.kind} {decision.matched[-1]} "
                             "targets this proxy"} for d in policies.displaced()]
    if displaced:
        summary["notApplied"] = displaced
    return summary


def _decision_summary(decision: Decision, tt_name: str | None) -> dict[str, object]:
    tracing = decision.tracing
    if tracing is None:
        summary: dict[str, object] = {"enabled": False, "trafficTrace": tt_name, "backend": decision.backend or None,
                                      "reason": decision.reason or None, "message": decision.message}
    else:
        sampling = tracing.sampling.overall
        summary = {"enabled": True, "trafficTrace": tt_name, "backend": tracing.backend.name,
                   "type": tracing.backend.type_name, "sampling": sampling if sampling is not None else 100.0,
                   "samplingSet": sampling is not None}
    if decision.kind != TRAFFIC_TRACE.name:
        summary["policy"] = decision.kind
        summary["policies"] = list(decision.matched)
        if tracing is not None:
            summary["samplingAll"] = {k: v for k, v in (("overall", tracing.sampling.overall),
                                                         ("client", tracing.sampling.client),
                                                         ("random", tracing.sampling.random)) if v is not None}
            summary["tags"] = [_tag(tag) for tag in tracing.tags]
    return summary


def _tag(tag: CustomTag) -> dict[str, object]:
    if tag.header is not None:
        header: dict[str, object] = {"name": tag.header}
        if tag.default:
            header["default"] = tag.default
        return {"name": tag.tag, "header": header}
    return {"name": tag.tag, "literal": tag.literal}


def rules_body(view: DataplaneView) -> dict[str, object]:
    """Kuma 2.11's `/meshes/{mesh}/dataplanes/{name}/_rules` for the kinds that merge (MeshTrace: a
    single-item policy, so its merged conf is the `proxyRule`; reference kuma-meshtrace.md §5)."""
    rules: list[dict[str, object]] = []
    for decision in view.policies.decisions if view.policies is not None else ():
        if decision.conf is None:
            continue
        origin = [{"labels": {}, "mesh": view.mesh, "name": name, "type": decision.kind} for name in decision.matched]
        rules.append({"type": decision.kind, "warnings": [], "toRules": [], "toResourceRules": [], "fromRules": [],
                      "inboundRules": [], "proxyRule": {"conf": dict(decision.conf), "origin": origin}})
    return {"httpMatches": [], "resource": {"labels": {}, "mesh": view.mesh, "name": view.name, "type": "Dataplane"},
            "rules": rules}


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
    return {"nodeId": view.node_id, "connected": status is not None, "published": view.published,
            "variant": status.variant if status is not None else None,
            "envoyVersion": str(status.envoy_version) if status and status.envoy_version else None,
            "types": types}
