"""StatusRegistry: what the status API shows per connected node."""

from __future__ import annotations

from controlplane.xds.envoy_version import EnvoyVersion
from controlplane.xds.observer import CompositeObserver, NoopObserver, StatusRegistry

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


def test_status_tracks_sent_acked_and_nack() -> None:
    registry = StatusRegistry()
    observer = CompositeObserver([NoopObserver(), registry])
    observer.on_stream_open(1, "default.web", "sotw")
    observer.on_request(1, "default.web", CDS, "initial", "", "", "")
    observer.on_response(1, "default.web", CDS, "v1", "1", 3, 100)
    observer.on_request(1, "default.web", CDS, "ack", "v1", "1", "")
    observer.on_response(1, "default.web", CDS, "v2", "2", 3, 100)
    observer.on_request(1, "default.web", CDS, "nack", "v2", "2", "bad cluster")
    observer.on_request(1, "default.web", CDS, "stale", "v0", "0", "")
    status = registry.status("default.web")
    assert status is not None
    cds = status.types[CDS]
    assert (cds.version_sent, cds.version_acked, cds.nack_version, cds.nack_message) == (
        "v2", "v1", "v2", "bad cluster"
    )
    assert (cds.responses_sent, cds.nacks) == (2, 1)
    assert registry.connected_nodes() == ["default.web"]


def test_newest_stream_wins_and_close_forgets() -> None:
    registry = StatusRegistry()
    registry.on_stream_open(1, "default.web", "sotw")
    registry.on_stream_open(2, "default.web", "delta")
    status = registry.status("default.web")
    assert status is not None and (status.variant, status.stream_ids) == ("delta", (1, 2))
    registry.on_stream_close(1, "default.web")
    registry.on_stream_close(2, "default.web")
    assert registry.status("default.web") is None
    assert registry.connected_nodes() == []


def test_envoy_version_of_the_newest_stream_is_recorded() -> None:
    registry = StatusRegistry()
    CompositeObserver([NoopObserver(), registry]).on_stream_open(1, "default.web", "sotw", EnvoyVersion(1, 36, 2))
    first = registry.status("default.web")
    assert first is not None and first.envoy_version == EnvoyVersion(1, 36, 2)
    registry.on_stream_open(2, "default.web", "delta", EnvoyVersion(1, 40, 0))  # the Envoy was upgraded
    newest = registry.status("default.web")
    assert newest is not None and (newest.stream_ids, newest.envoy_version) == ((1, 2), EnvoyVersion(1, 40, 0))
    registry.on_stream_open(3, "default.grpc-client", "sotw")  # not an Envoy: nothing to record
    other = registry.status("default.grpc-client")
    assert other is not None and other.envoy_version is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"


def test_subscriptions_keep_connect_disconnect_and_per_type_counts() -> None:
    clock = Clock()
    registry = StatusRegistry("cp-1", clock=clock)
    registry.on_stream_open(7, "default.web", "sotw", EnvoyVersion(1, 40, 0))
    clock.now = 1001.0
    registry.on_response(7, "default.web", CDS, "v1", "1", 3, 100)
    registry.on_request(7, "default.web", CDS, "ack", "v1", "1", "")
    registry.on_response(7, "default.web", LDS, "l1", "2", 1, 100)
    clock.now = 1002.0
    registry.on_request(7, "default.web", LDS, "nack", "l1", "2", "bad listener")
    clock.now = 1010.0
    registry.on_stream_close(7, "default.web")
    (subscription,) = registry.subscriptions("default.web")
    assert (subscription.id, subscription.control_plane_instance_id, subscription.connect_time,
            subscription.disconnect_time, subscription.last_update_time, subscription.envoy_version) == (
        "7", "cp-1", 1000.0, 1010.0, 1010.0, EnvoyVersion(1, 40, 0))
    assert (subscription.responses_sent, subscription.responses_acknowledged, subscription.responses_rejected) == (
        2, 1, 1)
    assert not subscription.online and registry.connected_nodes() == [] and registry.status("default.web") is None


def test_a_node_keeps_its_last_subscriptions_and_offline_nodes_are_bounded() -> None:
    registry = StatusRegistry("cp-1", history=2, max_offline=2)
    for stream_id in (1, 2, 3):
        registry.on_stream_open(stream_id, "default.web", "sotw")
        registry.on_stream_close(stream_id, "default.web")
    assert [s.id for s in registry.subscriptions("default.web")] == ["2", "3"]
    registry.on_stream_open(4, "default.web", "delta")
    assert [(s.id, s.online) for s in registry.subscriptions("default.web")] == [("3", False), ("4", True)]
    for stream_id, node in ((5, "default.a"), (6, "default.b"), (7, "default.c")):
        registry.on_stream_open(stream_id, node, "sotw")
        registry.on_stream_close(stream_id, node)
    assert registry.subscriptions("default.a") == ()  # the longest offline is forgotten first
    assert [s.id for s in registry.subscriptions("default.c")] == ["7"]
    assert [s.id for s in registry.subscriptions("default.web")][-1] == "4"  # connected: never forgotten
