"""The mesh topology built from the previous one equals the one built from scratch, after any sequence of
Dataplane changes, and keeps every object that did not change (what generation compares by identity)."""

from __future__ import annotations

import random

from builders import dataplane, inbound, outbound

from controlplane.resources.model import Resource
from controlplane.xds.generate.context import Topology, build_topology


def replica(service: int, index: int, port: int = 8080, version: str = "v1") -> Resource:
    return dataplane(f"svc-{service}-{index}", address=f"10.0.{service}.{index + 1}",
                     inbounds=[inbound(port=port, service=f"svc-{service}", protocol="http", tags={"version": version})],
                     outbounds=[outbound(10001, f"svc-{(service + 1) % 5}")])


def same(a: Topology, b: Topology) -> None:
    assert a.dataplanes == b.dataplanes
    assert dict(a.destinations) == dict(b.destinations)
    assert list(a.destinations) == list(b.destinations)  # sorted by service either way
    assert {k: v for k, v in a.serving.items() if v} == dict(b.serving)


def test_incremental_builds_equal_full_builds_after_random_changes() -> None:
    rng = random.Random(7)
    world = {dp.name: dp for dp in (replica(s, i) for s in range(5) for i in range(4))}
    topology = build_topology(list(world.values()))
    for _ in range(200):
        action, service, index = rng.choice(("add", "change", "remove", "tcp")), rng.randrange(6), rng.randrange(6)
        name = f"svc-{service}-{index}"
        if action == "remove":
            world.pop(name, None)
        elif action == "tcp":
            world[name] = dataplane(name, address="10.9.9.9", inbounds=[inbound(port=9000, service=f"svc-{service}",
                                                                                  protocol="tcp")])
        else:
            world[name] = replica(service, index, port=8080 + rng.randrange(2), version=f"v{rng.randrange(3)}")
        topology = build_topology(list(world.values()), topology)
        same(topology, build_topology(list(world.values())))


def test_what_did_not_change_is_kept_by_identity() -> None:
    dataplanes = [replica(s, i) for s in range(3) for i in range(3)]
    before = build_topology(dataplanes)
    assert build_topology(list(dataplanes), before) is before  # nothing changed at all
    changed = [*dataplanes[:-1], replica(2, 2, version="v2")]  # svc-2's last replica gets a new tag
    after = build_topology(changed, before)
    assert after.destinations["svc-0"] is before.destinations["svc-0"]
    assert after.destinations["svc-1"] is before.destinations["svc-1"]
    assert after.destinations["svc-2"] is not before.destinations["svc-2"]
    assert after.indexed["svc-0-0"] is before.indexed["svc-0-0"]
    assert after.indexed["svc-2-2"] is not before.indexed["svc-2-2"]
