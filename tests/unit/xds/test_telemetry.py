"""MetricsObserver: convergence samples only for types a snapshot changed, observed on the matching ACK."""

from __future__ import annotations

from typing import Any

from controlplane.observability import Metrics
from controlplane.xds.telemetry import MetricsObserver
from controlplane.xds.types import CLUSTER_TYPE, LISTENER_TYPE


class FakeSnapshot:
    def __init__(self, versions: dict[str, str]) -> None:
        self._versions = versions

    def versions(self) -> dict[str, str]:
        return dict(self._versions)


def samples(metrics: Metrics, type_url: str) -> float:
    value = metrics.registry.get_sample_value("xds_convergence_seconds_count", {"type_url": type_url})
    return value or 0.0


def publish(observer: MetricsObserver, versions: dict[str, str]) -> None:
    snapshot: Any = FakeSnapshot(versions)
    observer.on_published("default.web-1", snapshot, 0.0)


def test_only_changed_types_are_pending() -> None:
    metrics = Metrics()
    observer = MetricsObserver(metrics)
    publish(observer, {CLUSTER_TYPE: "c1", LISTENER_TYPE: "l1"})
    observer.on_request(1, "default.web-1", CLUSTER_TYPE, "ack", "c1", "1", "")
    observer.on_request(1, "default.web-1", LISTENER_TYPE, "ack", "l1", "2", "")
    publish(observer, {CLUSTER_TYPE: "c1", LISTENER_TYPE: "l2"})  # only LDS changed
    observer.on_request(2, "default.web-1", CLUSTER_TYPE, "ack", "c1", "1", "")  # e.g. after a reconnect
    assert samples(metrics, CLUSTER_TYPE) == 1.0
    observer.on_request(2, "default.web-1", LISTENER_TYPE, "ack", "l2", "2", "")
    assert samples(metrics, LISTENER_TYPE) == 2.0


def test_ack_of_another_version_is_not_a_sample() -> None:
    metrics = Metrics()
    observer = MetricsObserver(metrics)
    publish(observer, {LISTENER_TYPE: "l1"})
    observer.on_request(1, "default.web-1", LISTENER_TYPE, "ack", "l0", "1", "")
    assert samples(metrics, LISTENER_TYPE) == 0.0
