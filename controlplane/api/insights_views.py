"""JSON bodies of the fleet and span-flow endpoints, from the typed views of controlplane/xds/inspect.py.

Presentation only. `overview_body` is Kuma's `DataplaneOverview` (`GET /meshes/{mesh}/dataplanes+insights`,
reference: kumahq/kuma release-2.11 `api/mesh/v1alpha1/dataplane_insight.proto` and `pkg/api-server`
goldens): `dataplane` is the spec, `dataplaneInsight.subscriptions` one entry per ADS stream (id, control
plane instance, connect/disconnect time, per-type `responsesSent`/`Acknowledged`/`Rejected` as protojson
writes uint64s: strings, zeros left out), and the span-flow verdict in `dataplaneInsight.metadata.tracing`
(Kuma's free-form `metadata` Struct, so a Kuma client reads the body unchanged).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Final

from controlplane.resources.codec import encode_resource, format_time
from controlplane.spans.flow import Rates, outcome
from controlplane.spans.stats import Counts
from controlplane.spans.verdict import State, Verdict
from controlplane.xds.attachments import Attachment
from controlplane.xds.ghosts import Ghost
from controlplane.xds.inspect import DataplaneOverview, MeshSpans
from controlplane.xds.observer import SubscriptionStatus, TypeStatus
from controlplane.xds.service_graph import ServiceGraph

_ENVELOPE: Final = ("type", "mesh", "name", "creationTime", "modificationTime", "labels")
_KUMA_TYPES: Final = (("cds", "Cluster"), ("eds", "ClusterLoadAssignment"), ("lds", "Listener"),
                      ("rds", "RouteConfiguration"))


def timestamp(seconds: float | None) -> str | None:
    return format_time(datetime.fromtimestamp(seconds, UTC)) if seconds is not None else None


def overview_body(overview: DataplaneOverview) -> dict[str, object]:
    resource = encode_resource(overview.dataplane)
    body: dict[str, object] = {"type": "DataplaneOverview", "mesh": overview.dataplane.mesh,
                               "name": overview.dataplane.name}
    for key in ("creationTime", "modificationTime"):
        if key in resource:
            body[key] = resource[key]
    body["dataplane"] = {k: v for k, v in resource.items() if k not in _ENVELOPE}
    insight: dict[str, object] = {}
    if overview.subscriptions:
        insight["subscriptions"] = [subscription_body(s) for s in overview.subscriptions]
    insight["metadata"] = {"tracing": spans_body(overview.spans), "xds": xds_state_body(overview.subscriptions)}
    body["dataplaneInsight"] = insight
    return body


def subscription_body(s: SubscriptionStatus) -> dict[str, object]:
    status: dict[str, object] = {"lastUpdateTime": timestamp(s.last_update_time),
                                 "total": _stats(s.responses_sent, s.responses_acknowledged, s.responses_rejected)}
    for key, suffix in _KUMA_TYPES:
        type_status = next((t for url, t in s.types.items() if url.endswith("." + suffix)), None)
        status[key] = _type_stats(type_status)
    body: dict[str, object] = {"id": s.id, "controlPlaneInstanceId": s.control_plane_instance_id,
                               "connectTime": timestamp(s.connect_time)}
    if s.disconnect_time is not None:
        body["disconnectTime"] = timestamp(s.disconnect_time)
    body["status"] = status
    if s.envoy_version is not None:
        body["version"] = {"envoy": {"version": str(s.envoy_version)}}
    return body


def xds_state_body(subscriptions: tuple[SubscriptionStatus, ...]) -> dict[str, object]:
    """The config state of the newest open stream: `nacked` when Envoy rejected the version it was last sent
    of some type (those types listed, with the version; Envoy's message is on the protected `/xds` route),
    `pending` while a sent version awaits its ACK, `acked`; `offline` without an open stream."""
    online = [s for s in subscriptions if s.online]
    if not online:
        return {"state": "offline"}
    types = online[-1].types.values()
    nacked = [t for t in types if t.nack_version and t.nack_version == t.version_sent]
    pending = [t for t in types if t.version_sent and t.version_sent not in (t.version_acked, t.nack_version)]
    body: dict[str, object] = {"state": "nacked" if nacked else "pending" if pending else "acked"}
    if nacked:
        body["nacked"] = [{"type": t.type_url.rsplit(".", 1)[-1], "version": t.nack_version} for t in nacked]
    return body


def _type_stats(status: TypeStatus | None) -> dict[str, str]:
    if status is None:
        return {}
    return _stats(status.responses_sent, status.acks, status.nacks)


def _stats(sent: int, acked: int, rejected: int) -> dict[str, str]:
    """protojson of `DiscoveryServiceStats`: uint64 as strings, zero values omitted."""
    values = (("responsesSent", sent), ("responsesAcknowledged", acked), ("responsesRejected", rejected))
    return {key: str(value) for key, value in values if value}


def spans_body(v: Verdict) -> dict[str, object]:
    """One Spans block: the verdict, why, and the numbers (per minute over the last minute, and totals)."""
    body: dict[str, object] = {"verdict": v.state.value, "message": v.message, "backend": v.backend,
                               "type": v.backend_type, "policyKind": v.kind}
    if v.reason is not None:
        body["reason"] = v.reason
    if v.rates is not None:
        body["perMinute"] = rates_body(v.rates)
    if v.totals is not None:
        body["totals"] = totals_body(v.totals)
    body.update(asOf=timestamp(v.as_of), lastSeen=timestamp(v.last_seen), lastReport=timestamp(v.last_report))
    return body


def rates_body(rates: Rates) -> dict[str, float]:
    return {"spansSent": round(rates.spans_sent, 1), "accepted": round(rates.accepted, 1),
            "dropped": round(rates.dropped, 1), "failed": round(rates.failed, 1),
            "requests": round(rates.requests, 1), "sampled": round(rates.sampled, 1),
            "windowSeconds": round(rates.window_s, 1)}


def totals_body(totals: Counts) -> dict[str, float]:
    result = outcome(totals)
    return {"spansSent": totals.spans_sent, "accepted": result.accepted, "dropped": result.dropped,
            "failed": result.failed, "requests": totals.requests, "sampled": totals.sampled}


def dataplane_spans_body(mesh: str, name: str, v: Verdict) -> dict[str, object]:
    return {"dataplane": {"mesh": mesh, "name": name}, "spans": [spans_body(v)]}


def mesh_spans_body(view: MeshSpans) -> dict[str, object]:
    """Per backend: how many proxies are in each verdict, and their summed per-minute rates."""
    states: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    rates: defaultdict[tuple[str, str], list[Rates]] = defaultdict(list)
    not_traced: Counter[str] = Counter()
    for _, verdict in view.verdicts:
        if verdict.state is State.NOT_TRACED or verdict.backend is None:
            not_traced[verdict.message] += 1
            continue
        key = (verdict.backend, verdict.backend_type or "")
        states[key][verdict.state.value] += 1
        if verdict.rates is not None:
            rates[key].append(verdict.rates)
    backends = []
    for (backend, type_name), counts in sorted(states.items()):
        summed = {"spansSent": 0.0, "accepted": 0.0, "dropped": 0.0, "failed": 0.0}
        for r in rates[(backend, type_name)]:
            for field, value in (("spansSent", r.spans_sent), ("accepted", r.accepted), ("dropped", r.dropped),
                                 ("failed", r.failed)):
                summed[field] += value
        backends.append({"backend": backend, "type": type_name,
                         "proxies": {s.value: counts[s.value] for s in State if s.value in counts},
                         "perMinute": {k: round(v, 1) for k, v in summed.items()}})
    return {"mesh": view.mesh, "dataplanes": len(view.verdicts), "backends": backends,
            "notTraced": [{"reason": message, "proxies": n} for message, n in sorted(not_traced.items())]}


def ghosts_body(ghosts: list[Ghost]) -> dict[str, object]:
    return {"total": len(ghosts), "items": [
        {"nodeId": g.node_id, "mesh": g.mesh, "name": g.name, "connectTime": timestamp(g.connected_since),
         "message": g.message} for g in ghosts]}


def service_graph_body(graph: ServiceGraph) -> dict[str, object]:
    return {"mesh": graph.mesh,
            "services": [{"name": n.name, "dataplanes": list(n.dataplanes), "online": n.online,
                          "verdicts": dict(n.verdicts)} for n in graph.services],
            "edges": [{"source": e.source, "destination": e.destination, "outbounds": e.outbounds, "traced": e.traced,
                       "notTraced": [{"reason": reason, "outbounds": n} for reason, n in e.not_traced.items()]}
                      for e in graph.edges]}


def attachments_body(mesh: str, attachments: list[Attachment]) -> dict[str, object]:
    items = []
    for a in attachments:
        item: dict[str, object] = {"mesh": mesh, "name": a.dataplane, "role": a.role}
        if a.position:
            item["position"] = a.position
        if a.by:
            item["by"] = {"type": a.by_kind, "name": a.by}
        items.append(item)
    return {"total": len(items), "items": items}
