"""Dry-run preview: each resource of a batch is credited with exactly the tracing changes it causes."""

from __future__ import annotations

from pathlib import Path

from builders import dataplane, inbound, load_resources, mesh, outbound, traffic_trace, zipkin_backend

from controlplane.resources.model import Resource
from controlplane.tracing.backend import Sampling
from controlplane.xds.preview import ProxyChange, TracingSummary, preview
from controlplane.xds.world import World

INPUT = Path(__file__).parents[2] / "golden" / "generate" / "backends-by-region.input.yaml"
RESOURCES = {r.name: r for r in load_resources(INPUT)}
EU = TracingSummary("TrafficTrace trace-eu", "zipkin-eu", "zipkin", Sampling(overall=25.0), (), "")
US = TracingSummary("TrafficTrace trace-us", "zipkin-us", "zipkin", Sampling(), (), "")
OFF = TracingSummary(None, None, None, None, (), "no MeshTrace or TrafficTrace targets this dataplane")


def world_of(*resources: Resource) -> World:
    world = World()
    for resource in resources:
        world.put(resource)
    return world


def listeners(summary: TracingSummary, *names: str) -> TracingSummary:
    return TracingSummary(summary.policy, summary.backend, summary.backend_type, summary.sampling, summary.tags,
                          summary.reason, tuple(sorted(names)))


def test_a_regional_traffic_trace_changes_exactly_that_regions_proxies() -> None:
    world = world_of(*(r for name, r in RESOURCES.items() if name != "trace-eu"))
    (effect,) = preview(world, [RESOURCES["trace-eu"]])
    assert effect.changes == (
        ProxyChange("default", "backend-eu-1", listeners(OFF), listeners(EU, "inbound:10.1.0.2:9090")),
        ProxyChange("default", "web-eu-1", listeners(OFF),
                    listeners(EU, "inbound:10.1.0.1:8080", "outbound:127.0.0.1:10001")),
    )
    assert "trace-eu" not in {p.name for p in world.mesh("default").all_policies()}  # the world is untouched


def test_a_dataplane_change_reaches_the_clients_of_its_service() -> None:
    world = world_of(*RESOURCES.values())
    tcp = dataplane("backend-us-1", address="10.2.0.2",
                    inbounds=[inbound(9090, "backend", "tcp", tags={"kuma.io/zone": "us-east", "region": "us"})])
    (effect,) = preview(world, [tcp])
    assert [(c.dataplane, c.before and c.before.traced_listeners, c.after.traced_listeners) for c in effect.changes] == [
        ("backend-us-1", ("inbound:10.2.0.2:9090",), ()),
        # backend now speaks http in eu and tcp in us: Kuma infers tcp, so web's outbound stops tracing
        ("web-eu-1", ("inbound:10.1.0.1:8080", "outbound:127.0.0.1:10001"), ("inbound:10.1.0.1:8080",)),
    ]


def test_each_resource_of_a_batch_is_credited_with_its_own_changes() -> None:
    batch = [mesh("other", backends=[zipkin_backend("z")]), traffic_trace("all", mesh="other", backend="z"),
             dataplane("api-1", mesh="other", inbounds=[inbound(8080, "api")], outbounds=[outbound(10001, "db")])]
    effects = preview(World(), batch)
    assert [e.key for e in effects] == [r.key for r in batch]
    assert [len(e.changes) for e in effects] == [0, 0, 1]
    (change,) = effects[2].changes
    assert (change.dataplane, change.before, change.after.policy, change.after.backend,
            change.after.traced_listeners) == ("api-1", None, "TrafficTrace all", "z", ("inbound:127.0.0.1:8080",))
