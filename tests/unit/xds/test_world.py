"""World: the reconciler's mirror of the store, and its service → clients index."""

from __future__ import annotations

from builders import dataplane, inbound, outbound

from controlplane.xds.world import World


def test_clients_index_follows_puts_updates_and_removes() -> None:
    world = World()
    web = dataplane("web-1", inbounds=[inbound(port=8080, service="web")],
                    outbounds=[outbound(10001, "backend"), outbound(10002, "db")])
    api = dataplane("api-1", inbounds=[inbound(port=8081, service="api")], outbounds=[outbound(10001, "backend")])
    world.put(web)
    world.put(api)
    assert world.clients_of("default", {"backend"}) == {"web-1", "api-1"}
    assert world.clients_of("default", {"db", "nothing"}) == {"web-1"}

    # web-1 stops reaching backend: only api-1 is left as its client.
    world.put(dataplane("web-1", inbounds=[inbound(port=8080, service="web")], outbounds=[outbound(10002, "db")]))
    assert world.clients_of("default", {"backend"}) == {"api-1"}

    world.remove(api.key)
    assert world.clients_of("default", {"backend"}) == set()
    assert world.mesh("default").clients == {"db": {"web-1"}}
    assert world.clients_of("other-mesh", {"db"}) == set()
