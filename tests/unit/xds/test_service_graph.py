"""The service graph (controlplane/xds/service_graph.py): services from inbounds plus services only reached,
edges from the published listener notes (traced or why not), pending proxies, verdicts and online counts."""

from __future__ import annotations

from fleet_topology import DATAPLANES, records, verdicts

from controlplane.xds.generate.notes import NOT_HTTP
from controlplane.xds.service_graph import (
    PENDING,
    ServiceEdge,
    ServiceGraph,
    ServiceNode,
    build_service_graph,
)


def test_services_edges_and_states_come_from_what_was_published() -> None:
    recorded = records()
    graph = build_service_graph("default", DATAPLANES, recorded, verdicts(recorded), ["default.web-1"])
    assert graph == ServiceGraph("default", services=(
        ServiceNode("backend", ("backend-1",), 0, {"no stats": 1}),
        ServiceNode("db", ("db-1",), 0, {"no stats": 1}),
        ServiceNode("external", (), 0, {}),
        ServiceNode("web", ("web-1",), 1, {"no stats": 1}),
    ), edges=(
        ServiceEdge("backend", "db", 1, 0, {NOT_HTTP: 1}),
        ServiceEdge("web", "backend", 1, 1, {}),
        ServiceEdge("web", "external", 1, 0, {NOT_HTTP: 1}),
    ))


def test_a_proxy_not_generated_yet_is_pending_on_its_edges() -> None:
    recorded = records()
    del recorded["default.web-1"]
    graph = build_service_graph("default", DATAPLANES, recorded, {}, [])
    assert [e for e in graph.edges if e.source == "web"] == [
        ServiceEdge("web", "backend", 1, 0, {PENDING: 1}), ServiceEdge("web", "external", 1, 0, {PENDING: 1})]
    assert [n.verdicts for n in graph.services] == [{}, {}, {}, {}]
