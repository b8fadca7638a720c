"""Pure parts of the scale benchmark: seeded workload, scenario plans, expected pushes, floor framing."""

from __future__ import annotations

from envoy.service.discovery.v3 import discovery_pb2

from bench.floor import sotw_body, with_nonce
from bench.scenarios import build_plan, states_of
from bench.workload import (
    ADS_TYPES,
    affected_counts,
    dataplane_doc,
    expected_configs,
    generate_workload,
    mesh_doc,
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
