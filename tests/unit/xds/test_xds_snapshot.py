"""Snapshot: content versions, EDS/CDS version mixing, interning, consistency (pure, no gRPC).

Shares its resource builders (tests/xds_resources.py) with the protocol tests.
"""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from xds_resources import CDS, EDS, LDS, RDS, cla, cluster, config, http_listener, route_config, tcp_listener

from controlplane.xds.snapshot import ResourceEntry, ResourceInterner, Snapshot


def test_versions_are_deterministic_and_content_derived() -> None:
    one, two = Snapshot.build(config()), Snapshot.build(config())
    assert one.versions() == two.versions()
    assert all(one.versions().values())
    other = Snapshot.build(config(endpoint_ports={"c1": 1}))
    assert other.version(EDS) != one.version(EDS)
    assert (other.version(CDS), other.version(LDS), other.version(RDS)) == (
        one.version(CDS), one.version(LDS), one.version(RDS)
    )


def test_cluster_change_changes_eds_version_but_not_cla_versions() -> None:
    one = Snapshot.build(config())
    two = Snapshot.build(config(connect_timeout_ms=5000))
    assert one.version(EDS) != two.version(EDS)
    assert one.resources(EDS)["c1"].version == two.resources(EDS)["c1"].version


def test_added_eds_cluster_changes_eds_version() -> None:
    one = Snapshot.build(config(clusters=("c1",)))
    two = Snapshot.build(config(clusters=("c1", "c2")))
    assert one.version(EDS) != two.version(EDS)


def test_static_cluster_change_leaves_eds_version_alone() -> None:
    # The tracing collector's cluster is static (inline load_assignment): adding, changing or removing it
    # warms no EDS cluster, so re-sending every ClusterLoadAssignment would be wasted work (§1.10).
    base = config()
    with_static = {**base, CDS: {**base[CDS], "zipkin": cluster("zipkin", eds=False)}}
    changed_static = {**base, CDS: {**base[CDS], "zipkin": cluster("zipkin", eds=False, connect_timeout_ms=9000)}}
    versions = {Snapshot.build(c).version(EDS) for c in (base, with_static, changed_static)}
    cds_versions = {Snapshot.build(c).version(CDS) for c in (base, with_static, changed_static)}
    assert len(versions) == 1
    assert len(cds_versions) == 3


def test_resource_version_is_hash_of_deterministic_bytes() -> None:
    snap = Snapshot.build(config())
    entry = snap.resources(CDS)["c1"]
    assert entry.packed.value == cluster("c1").SerializeToString(deterministic=True)
    assert entry.packed.type_url == CDS
    assert len(entry.version) == 16


def test_interner_shares_identical_resources() -> None:
    interner = ResourceInterner()
    one = Snapshot.build(config(), interner=interner)
    two = Snapshot.build(config(endpoint_ports={"c1": 1}), interner=interner)
    assert one.resources(CDS)["c1"] is two.resources(CDS)["c1"]
    assert one.resources(EDS)["c1"] is not two.resources(EDS)["c1"]


def test_interner_releases_dead_entries() -> None:
    interner = ResourceInterner()
    snap = Snapshot.build(config(), interner=interner)
    assert len(interner) == 4
    del snap
    assert len(interner) == 0


def test_precomputed_entries_are_used_as_is() -> None:
    shared = ResourceEntry.create(EDS, "c1", cla("c1", 1))
    cfg: dict[str, dict[str, object]] = dict(config())  # type: ignore[arg-type]
    cfg[EDS] = {"c1": shared}
    snap = Snapshot.build(cfg)  # type: ignore[arg-type]
    assert snap.resources(EDS)["c1"] is shared


def test_wrong_type_is_rejected_at_build() -> None:
    with pytest.raises(ValueError, match="listed under"):
        Snapshot.build({EDS: {"c1": cluster("c1")}})


def test_empty_snapshot_has_versions_for_all_types() -> None:
    snap = Snapshot.build({})
    assert snap.check_consistent() == []
    assert all(snap.versions().values())


def test_consistent_config_has_no_problems() -> None:
    assert Snapshot.build(config(clusters=["a", "b"])).check_consistent() == []


def test_every_problem_is_reported() -> None:
    cfg = config(clusters=["c1", "c2"])
    del cfg[EDS]["c2"]
    cfg[LDS]["l2"] = http_listener("l2", 2, "missing-route", zipkin_cluster="tracing:zipkin")
    cfg[LDS]["tcp"] = tcp_listener("tcp", 3, "missing-tcp-cluster")
    cfg[RDS]["r2"] = route_config("r2", "missing-route-cluster")
    cfg[CDS]["named"] = cluster("other-name")
    problems = Snapshot.build(cfg).check_consistent()
    assert sorted(problems) == sorted([
        f"{CDS} resource listed as 'named' is named 'other-name'",
        "EDS cluster 'c2' has no ClusterLoadAssignment 'c2'",
        "EDS cluster 'named' has no ClusterLoadAssignment 'other-name'",
        "listener 'l2' references missing route config 'missing-route'",
        "listener 'l2' references missing cluster 'tracing:zipkin'",
        "listener 'tcp' references missing cluster 'missing-tcp-cluster'",
        "route config 'r2' references missing cluster 'missing-route-cluster'",
    ])


def test_eds_service_name_and_static_clusters() -> None:
    cfg = config(clusters=["c1"])
    cfg[CDS]["svc"] = cluster("svc", service_name="svc-endpoints")
    cfg[CDS]["static"] = cluster("static", eds=False)
    cfg[EDS]["svc-endpoints"] = cla("svc-endpoints", 1)
    snap = Snapshot.build(cfg)
    assert dict(snap.eds_names) == {"c1": "c1", "svc": "svc-endpoints"}
    assert snap.check_consistent() == []
    assert snap.resources(CDS)["static"].message.type == cluster_pb2.Cluster.STATIC
