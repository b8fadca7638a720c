"""Scenarios S1-S6 of reference/performance.md §7.4 as data: base documents and a sequence of changes.

Responsible for *what* each scenario does to the mesh (pure, unit-tested); bench/driver.py applies the
changes to the control plane (HTTP API) and to the floor server (pre-built states) and measures them.

| id  | base                                | changes (each applied to CP and floor, interleaved)            |
| S1  | mesh + mesh-wide trace              | none: idle CPU and RSS with N streams (slope over N/2 → N)    |
| S2a | mesh with backend, no TrafficTrace  | TrafficTrace `*` on (measured) / off (not measured), × rounds  |
| S2b | same                                | TrafficTrace for one service on (measured) / off               |
| S2c | mesh + mesh-wide trace              | zipkin sampling 100 ↔ 50, every change measured                |
| S2d | mesh + mesh-wide trace              | 20 sampling edits 10 ms apart (200 ms burst), measured from the last |
| S3  | mesh + mesh-wide trace              | one extra instance of the most-reached service up / down       |
| S4  | mesh + mesh-wide trace              | every stream dropped, reconnecting within `spread` s           |
| S5  | mesh + mesh-wide trace, 1 NACKing   | sampling changes; proxy 0 NACKs LDS: no resend loop            |
| S6  | S2a at several N (driver loops)     |                                                                |
| S2m | mesh with backend, MeshTrace `defaults` (`backends: []`) | S2a with MeshTrace: `tracing` on (merged with `defaults`) / off |
| S2t | mesh with backend, no policy        | TrafficTrace vs MeshTrace in one run, per round: TT on, TT sampling 50, (TT off); (MT defaults), MT on, MT sampling 50, (MT off); compared per round |
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bench.workload import (
    ProxySpec,
    Workload,
    dataplane_doc,
    doc_key,
    mesh_doc,
    meshtrace_docs,
    traffic_trace_doc,
)

SCENARIOS: Final = ("S1", "S2a", "S2b", "S2c", "S2d", "S3", "S4", "S5", "S6", "S2m", "S2t")
BURST_EDITS: Final = 20
BURST_SPACING_S: Final = 0.01

Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    label: str
    puts: tuple[Doc, ...] = ()
    deletes: tuple[Doc, ...] = ()
    measured: bool = True
    spacing_s: float = 0.0
    group: str = ""
    """Measured changes of a kind, summarised together (S2t: `tt-toggle`, `mt-sampling`, ...)."""


@dataclass(frozen=True, slots=True)
class Plan:
    scenario: str
    base: tuple[Doc, ...]
    changes: tuple[Change, ...] = ()
    kind: str = "changes"  # changes | idle | storm
    max_pushes_per_type: int = 1
    nack_node: int | None = None
    extra_nodes: tuple[str, ...] = field(default=())
    comparisons: tuple[tuple[str, str, str], ...] = ()
    """(name, baseline group, candidate group): per-round ratios candidate / baseline in the summary."""


def apply_change(state: Mapping[tuple[str, str], Doc], change: Change) -> dict[tuple[str, str], Doc]:
    out = dict(state)
    for doc in change.deletes:
        out.pop(doc_key(doc), None)
    for doc in change.puts:
        out[doc_key(doc)] = doc
    return out


def state_id(state: Mapping[tuple[str, str], Doc]) -> str:
    return json.dumps([state[k] for k in sorted(state)], sort_keys=True)


def states_of(plan: Plan) -> tuple[list[list[Doc]], list[int]]:
    """Distinct document sets (index 0 = base) and, per change, the index of the state it leads to."""
    state = {doc_key(d): d for d in plan.base}
    distinct: dict[str, int] = {state_id(state): 0}
    docs = [list(state.values())]
    targets = []
    for change in plan.changes:
        state = apply_change(state, change)
        key = state_id(state)
        if key not in distinct:
            distinct[key] = len(docs)
            docs.append(list(state.values()))
        targets.append(distinct[key])
    return docs, targets


def build_plan(scenario: str, workload: Workload, rounds: int, extra: Sequence[ProxySpec] = ()) -> Plan:
    """The plan of `scenario` for `workload` (`extra` = real-Envoy proxies, part of the mesh too)."""
    dataplanes = tuple(dataplane_doc(p) for p in (*workload.proxies, *extra))
    traced = (mesh_doc(), traffic_trace_doc("all"), *dataplanes)
    trace_all = traffic_trace_doc("all")
    if scenario in ("S2a", "S6"):
        changes = [c for _ in range(rounds) for c in (
            Change("trace on", puts=(trace_all,)), Change("trace off", deletes=(trace_all,), measured=False))]
        return Plan(scenario, (mesh_doc(), *dataplanes), tuple(changes))
    if scenario == "S2b":
        one = traffic_trace_doc("one", workload.services[0])
        changes = [c for _ in range(rounds) for c in (
            Change("trace one service", puts=(one,)), Change("untrace", deletes=(one,), measured=False))]
        return Plan(scenario, (mesh_doc(), *dataplanes), tuple(changes))
    if scenario in ("S2c", "S5"):
        samplings = [50.0 if r % 2 == 0 else 100.0 for r in range(rounds)]
        changes = [Change(f"sampling {s:g}", puts=(mesh_doc(sampling=s),)) for s in samplings]
        return Plan(scenario, traced, tuple(changes), nack_node=0 if scenario == "S5" else None)
    if scenario == "S2d":
        changes = []
        for r in range(rounds):
            offset = 0 if r % 2 == 0 else BURST_EDITS
            edits = tuple(mesh_doc(sampling=float(offset + k + 1)) for k in range(BURST_EDITS))
            changes.append(Change(f"burst of {BURST_EDITS}", puts=edits, spacing_s=BURST_SPACING_S))
        return Plan(scenario, traced, tuple(changes), max_pushes_per_type=2)
    if scenario == "S3":
        churn = churn_instance(workload)
        changes = [c for _ in range(rounds) for c in (
            Change("instance up", puts=(churn,)), Change("instance down", deletes=(churn,)))]
        return Plan(scenario, traced, tuple(changes))
    if scenario in ("S2m", "S2t"):
        return _policy_plan(scenario, (mesh_doc(), *dataplanes), rounds)
    if scenario == "S1":
        return Plan(scenario, traced, kind="idle")
    if scenario == "S4":
        return Plan(scenario, traced, kind="storm")
    raise ValueError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")


def _policy_plan(scenario: str, base: tuple[Doc, ...], rounds: int) -> Plan:
    """S2m: MeshTrace on / off with every proxy merging two policies (`meshtrace_docs`: `defaults` stays, the
    toggle is `tracing`). S2t: the same toggle and a sampling change, for TrafficTrace and for MeshTrace in
    turn within each round, so each MeshTrace figure has a TrafficTrace twin measured a minute apart on the
    same machine (it is shared: only same-run ratios mean anything). Every measured change is one PUT, as
    S2a's (two PUTs in a row would take the full debounce instead of the first gap)."""
    trace_all = traffic_trace_doc("all")
    defaults, tracing = meshtrace_docs()
    meshtrace_on = Change("MeshTrace on", puts=(tracing,), group="mt-toggle")
    meshtrace_off = Change("MeshTrace off", deletes=(tracing,), measured=False)
    if scenario == "S2m":
        return Plan(scenario, (*base, defaults), tuple(c for _ in range(rounds) for c in (meshtrace_on, meshtrace_off)))
    changes = [c for _ in range(rounds) for c in (
        Change("TrafficTrace on", puts=(trace_all,), group="tt-toggle"),
        Change("TrafficTrace sampling 50", puts=(mesh_doc(sampling=50.0),), group="tt-sampling"),
        Change("TrafficTrace off", puts=(mesh_doc(),), deletes=(trace_all,), measured=False),
        Change("MeshTrace defaults", puts=(defaults,), measured=False),  # `backends: []`: no config change
        meshtrace_on,
        Change("MeshTrace sampling 50", puts=(meshtrace_docs(sampling=50.0)[0],), group="mt-sampling"),
        Change("MeshTrace off", puts=(defaults,), deletes=(tracing,), measured=False),
        Change("MeshTrace defaults off", deletes=(defaults,), measured=False))]
    comparisons = (("toggle", "tt-toggle", "mt-toggle"), ("sampling", "tt-sampling", "mt-sampling"))
    return Plan(scenario, base, tuple(changes), comparisons=comparisons)


def churn_instance(workload: Workload) -> Doc:
    """An extra Dataplane serving the most-reached service (no simulated client: only its endpoint matters)."""
    service = workload.most_reached_service()
    spec = ProxySpec("churn-0", service, "10.254.0.1", 8080, (), ())
    return dataplane_doc(spec)
