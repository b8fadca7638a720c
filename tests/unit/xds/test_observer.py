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
