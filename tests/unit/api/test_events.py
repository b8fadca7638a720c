"""The GUI's event hub (controlplane/api/events.py): fan-out to every client, coalescing per client (one batch
per window, equal keys collapsed, the latest wins), a bounded backlog that turns into a resync, a bounded
number of clients, and closing that ends every consumer. A fake clock drives the window, so nothing waits on
wall time except the short real sleeps the window asks for."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.api.events import Batch, Event, EventHub, TooManyClients


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def changed(name: str, detail: str = "updated") -> Event:
    return Event("resource", "default", name, "Dataplane", detail)


async def test_every_client_gets_every_event_once_in_one_batch() -> None:
    hub = EventHub()
    first, second = hub.subscribe(), hub.subscribe()
    hub.publish(changed("web-1"))
    hub.publish(changed("web-2"))
    expected = Batch((changed("web-1"), changed("web-2")))
    assert [await first.next_batch(1.0), await second.next_batch(1.0)] == [expected, expected]
    assert hub.published == 2


async def test_equal_keys_collapse_to_the_latest_and_move_to_the_end() -> None:
    hub = EventHub()
    client = hub.subscribe()
    for event in (changed("web-1", "created"), changed("web-2"), changed("web-1", "deleted")):
        hub.publish(event)
    assert await client.next_batch(1.0) == Batch((changed("web-2"), changed("web-1", "deleted")))


async def test_a_second_batch_waits_for_the_window_and_takes_what_arrived_meanwhile() -> None:
    clock = Clock()
    hub = EventHub(min_interval_s=0.05, clock=clock)
    client = hub.subscribe()
    hub.publish(changed("web-1"))
    assert await client.next_batch(1.0) == Batch((changed("web-1"),))
    hub.publish(changed("web-2"))
    waiting = asyncio.create_task(client.next_batch(1.0))
    await asyncio.sleep(0)
    hub.publish(changed("web-3"))  # still inside the window: joins the same batch
    clock.now += 0.05
    assert await waiting == Batch((changed("web-2"), changed("web-3")))


async def test_at_most_one_batch_per_window_whatever_the_rate() -> None:
    """200 events over ~0.25 s reach a client in a handful of batches (window 0.1 s), none lost."""
    hub = EventHub(min_interval_s=0.1)
    client = hub.subscribe()
    batches: list[Batch] = []

    async def consume() -> None:
        while len({e.name for b in batches for e in b.events}) < 200:
            batch = await client.next_batch(2.0)
            assert batch is not None
            batches.append(batch)

    consumer = asyncio.create_task(consume())
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(200):
        hub.publish(changed(f"web-{i}"))
        await asyncio.sleep(0.00125)
    await asyncio.wait_for(consumer, 5.0)
    elapsed = loop.time() - started
    assert len(batches) <= elapsed / 0.1 + 2, (len(batches), elapsed)
    assert sorted(e.name for b in batches for e in b.events) == sorted(f"web-{i}" for i in range(200))


async def test_an_overflowing_backlog_becomes_one_resync() -> None:
    hub = EventHub(max_pending=3)
    client = hub.subscribe()
    for i in range(5):
        hub.publish(changed(f"web-{i}"))
    assert await client.next_batch(1.0) == Batch((), resync=True)
    hub.publish(changed("web-9"))
    assert await client.next_batch(1.0) == Batch((changed("web-9"),))


async def test_no_event_means_none_after_the_timeout() -> None:
    client = EventHub().subscribe()
    assert await client.next_batch(0.01) is None


async def test_clients_are_bounded_and_leaving_frees_a_place() -> None:
    hub = EventHub(max_clients=2)
    with hub.subscribe(), hub.subscribe():
        with pytest.raises(TooManyClients, match="at most 2 clients"):
            hub.subscribe()
        assert hub.clients == 2
    assert hub.clients == 0
    with hub.subscribe():
        hub.publish(changed("web-1"))
    assert hub.clients == 0


async def test_closing_the_hub_ends_every_consumer_and_later_subscriptions() -> None:
    hub = EventHub()
    client = hub.subscribe()
    waiting = asyncio.create_task(client.next_batch(10.0))
    await asyncio.sleep(0)
    hub.close()
    assert await asyncio.wait_for(waiting, 1.0) is None
    assert client.closed and hub.clients == 0
    late = hub.subscribe()
    assert late.closed and await late.next_batch(10.0) is None


def test_bodies_leave_out_empty_fields() -> None:
    assert Event("snapshot", "default", count=3).body() == {"type": "snapshot", "mesh": "default", "count": 3}
    assert Batch((Event("snapshot"),), resync=False).body() == {"resync": False, "events": [{"type": "snapshot"}]}
