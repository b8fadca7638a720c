"""Pure parts of the scale benchmark: seeded workload, scenario plans, expected pushes, floor framing."""

from __future__ import annotations

from envoy.service.discovery.v3 import discovery_pb2

from bench.floor import sotw_body, with_nonce
from bench.measure import CP, FLOOR, ChangeResult, summarise
from bench.scenarios import build_plan, states_of
from bench.workload import (
    ADS_TYPES,
    affected_counts,
    dataplane_doc,
    expected_configs,
    generate_workload,
    mesh_doc,
    meshtrace_docs,
    resource_digest,
    traffic_trace_doc,
)
from controlplane.xds import types

CDS, EDS, LDS, RDS = ADS_TYPES


def test_workload_is_deterministic_for_a_seed() -> None:
    assert generate_workload(40, seed=7) == generate_workload(40, seed=7)
    assert generate_workload(40, seed=7) != generate_workload(40, seed=8)


def test_workload_shape() -> None:
    workload = generate_workload(10, instances=2, reach=3)
    assert len(workload.proxies) == 10
    assert len(workload.services) == 5
    for proxy in workload.proxies:
        assert len(proxy.outbounds) == 3
        assert proxy.service not in proxy.outbounds
        assert list(proxy.outbounds) == sorted(set(proxy.outbounds))
    assert len(workload.proxies_of("svc-0")) == 2


def _configs(workload, *extra):
    docs = [mesh_doc(), *extra, *(dataplane_doc(p) for p in workload.proxies)]
    return expected_configs(docs)


def test_mesh_wide_trace_pushes_cds_and_lds_only() -> None:
    # The tracing collector is a static cluster: no EDS cluster changes, so EDS is not re-sent in either mode.
    workload = generate_workload(6, reach=2)
    off, on = _configs(workload), _configs(workload, traffic_trace_doc("all"))
    assert set(affected_counts(off, on, "sotw").values()) == {frozenset({CDS, LDS})}
    assert set(affected_counts(off, on, "delta").values()) == {frozenset({CDS, LDS})}


def test_one_service_trace_affects_only_its_proxies() -> None:
    workload = generate_workload(8, reach=2)
    off, on = _configs(workload), _configs(workload, traffic_trace_doc("one", "svc-1"))
    pushes = affected_counts(off, on, "sotw")
    touched = {node for node, types_ in pushes.items() if types_}
    assert touched == {p.node_id for p in workload.proxies_of("svc-1")}


def test_sampling_change_pushes_only_lds() -> None:
    workload = generate_workload(4, reach=1)
    trace = traffic_trace_doc("all")
    before = expected_configs([mesh_doc(sampling=100.0), trace, *(dataplane_doc(p) for p in workload.proxies)])
    after = expected_configs([mesh_doc(sampling=50.0), trace, *(dataplane_doc(p) for p in workload.proxies)])
    assert set(affected_counts(before, after, "sotw").values()) == {frozenset({LDS})}


def test_delta_digest_matches_what_a_client_holding_the_resources_computes() -> None:
    config = _configs(generate_workload(4, reach=1))["default.dp-0"]
    for type_url in ADS_TYPES:
        held = {name: version for name, (version, _) in config.types[type_url].resources.items()}
        assert config.target(type_url, "delta") == resource_digest(held)


def test_plans_toggle_between_distinct_states() -> None:
    workload = generate_workload(6, reach=2)
    plan = build_plan("S2a", workload, rounds=3)
    docs, targets = states_of(plan)
    assert len(docs) == 2 and targets == [1, 0, 1, 0, 1, 0]
    assert [c.measured for c in plan.changes] == [True, False] * 3
    burst = build_plan("S2d", workload, rounds=2)
    assert all(len(c.puts) == 20 for c in burst.changes) and burst.max_pushes_per_type == 2
    assert states_of(burst)[1] == [1, 2]


def test_floor_nonce_is_appended_as_field_5() -> None:
    body = sotw_body(types.CLUSTER_TYPE, "v1", {})
    parsed = discovery_pb2.DiscoveryResponse.FromString(with_nonce(body, "42"))
    assert (parsed.version_info, parsed.type_url, parsed.nonce) == ("v1", types.CLUSTER_TYPE, "42")


def test_meshtrace_pair_merges_to_the_traffictraces_tracing() -> None:
    """The MeshTrace side of S2m/S2t changes what the TrafficTrace side changes: a toggle pushes CDS + LDS to
    every proxy, a sampling change LDS only, so the two convergence figures measure the same work."""
    workload = generate_workload(6, reach=2)
    dataplanes = [dataplane_doc(p) for p in workload.proxies]
    defaults, tracing = meshtrace_docs()
    off = expected_configs([mesh_doc(), *dataplanes])
    traffic_trace = expected_configs([mesh_doc(), traffic_trace_doc("all"), *dataplanes])
    mesh_trace = expected_configs([mesh_doc(), defaults, tracing, *dataplanes])
    half = expected_configs([mesh_doc(), meshtrace_docs(sampling=50.0)[0], tracing, *dataplanes])
    assert expected_configs([mesh_doc(), defaults, *dataplanes]) == off  # `backends: []` alone: no tracing
    assert set(affected_counts(off, traffic_trace, "sotw").values()) == {frozenset({CDS, LDS})}
    assert set(affected_counts(off, mesh_trace, "sotw").values()) == {frozenset({CDS, LDS})}
    assert set(affected_counts(mesh_trace, half, "sotw").values()) == {frozenset({LDS})}
    assert meshtrace_docs(sampling=12.5)[0]["spec"]["default"]["sampling"] == {"overall": "12.5"}


def test_s2t_interleaves_traffictrace_and_meshtrace_rounds() -> None:
    workload = generate_workload(6, reach=2)
    plan = build_plan("S2t", workload, rounds=2)
    docs, targets = states_of(plan)
    assert [(c.label, c.group) for c in plan.changes[:8]] == [
        ("TrafficTrace on", "tt-toggle"), ("TrafficTrace sampling 50", "tt-sampling"), ("TrafficTrace off", ""),
        ("MeshTrace defaults", ""), ("MeshTrace on", "mt-toggle"), ("MeshTrace sampling 50", "mt-sampling"),
        ("MeshTrace off", ""), ("MeshTrace defaults off", "")]
    assert [c.measured for c in plan.changes] == [True, True, False, False, True, True, False, False] * 2
    assert all(len(c.puts) + len(c.deletes) == 1 for c in plan.changes if c.measured)  # one PUT, as S2a
    assert len(docs) == 6 and targets == [1, 2, 0, 3, 4, 5, 3, 0] * 2  # every round ends on the base state
    assert plan.comparisons == (("toggle", "tt-toggle", "mt-toggle"), ("sampling", "tt-sampling", "mt-sampling"))
    toggle_only = build_plan("S2m", workload, rounds=2)
    assert [(c.label, c.measured) for c in toggle_only.changes] == [("MeshTrace on", True), ("MeshTrace off", False)] * 2
    assert [d["name"] for d in toggle_only.base if d["type"] == "MeshTrace"] == ["defaults"]


def _result(group: str, p99: float, cpu: float) -> ChangeResult:
    return ChangeResult(CP, group, [p99 / 2, p99], True, [], cpu, 0.0, 0, group=group)


def test_groups_are_summarised_and_compared_round_by_round() -> None:
    cp = [_result("tt", 1.0, 0.5), _result("mt", 0.9, 0.5), _result("tt", 2.0, 1.0), _result("mt", 2.2, 1.0)]
    summary = summarise({CP: cp, FLOOR: []}, [("toggle", "tt", "mt")])
    assert summary["groups"]["mt"]["p99_s"] == 1.55 and summary["groups"]["tt"]["p99_s"] == 1.5
    assert summary["comparisons"]["toggle"] == {
        "baseline": "tt", "candidate": "mt", "rounds": 2, "p50_ratio": 1.0, "p50_ratio_range": [0.9, 1.1],
        "p99_ratio": 1.0, "p99_ratio_range": [0.9, 1.1], "cpu_ratio": 1.0, "cpu_ratio_range": [1.0, 1.0]}
    assert "groups" not in summarise({CP: [_result("", 1.0, 1.0)], FLOOR: []})
