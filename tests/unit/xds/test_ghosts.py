"""Envoys connected with a node id that names no Dataplane: found after a grace period, logged once."""

from __future__ import annotations

import structlog
from builders import dataplane, mesh

from controlplane.observability import Metrics
from controlplane.xds.ghosts import Ghost, GhostWatch
from controlplane.xds.observer import StatusRegistry
from controlplane.xds.world import World


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_ghost_is_reported_after_the_grace_period_logged_once_and_counted() -> None:
    clock, world, metrics = Clock(), World(), Metrics()
    world.put(mesh())
    world.put(dataplane("web-1"))
    status = StatusRegistry("cp", clock=clock)
    watch = GhostWatch(status, world, metrics, clock=clock, grace_s=2.0)
    status.on_stream_open(1, "default.web-1", "sotw")
    status.on_stream_open(2, "default.ghost", "sotw")
    with structlog.testing.capture_logs() as logs:
        assert watch.check() == []  # too young: `dataplane run` registers and starts Envoy at once
        clock.now = 102.5
        assert watch.check() == [Ghost("default.ghost", "default", "ghost", 100.0)]
        watch.check()
    assert logs == [{"event": "ghost_node", "log_level": "warning", "node_id": "default.ghost",
                     "message": "Envoy `default.ghost` is connected but no Dataplane default/ghost exists"}]
    assert metrics.registry.get_sample_value("xds_nodes_without_dataplane") == 1.0
    world.put(dataplane("ghost"))
    assert watch.check() == []
    assert metrics.registry.get_sample_value("xds_nodes_without_dataplane") == 0.0
    assert watch.ghosts(with_grace=False) == []
