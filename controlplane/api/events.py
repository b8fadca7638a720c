"""Live change notifications for the GUI: a fan-out hub that coalesces what each client has not seen yet.

Responsible for: the set of subscribed clients (bounded: `subscribe` refuses beyond `max_clients`), handing
every published `Event` to each of them without waiting on any, and turning what a client has not been sent
yet into batches, at most one per `min_interval_s` (5 per second by default), with equal events collapsed
(the latest of one key wins). A client's backlog is bounded too: past `max_pending` distinct keys it is
replaced by one "resync" (refetch everything), so a mesh-wide change to 1 000 proxies costs a slow client a
flag, not a queue. Events are notifications, not data: a client refetches what they name from the API,
so dropping detail is always safe and nothing here has to be exact or ordered across keys.

Must not: know HTTP (api/sse.py writes the stream) or where events come from (api/event_feed.py). Loop
thread only: `publish` is synchronous and O(clients), so observers on hot paths can call it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

DEFAULT_MAX_CLIENTS: Final = 64
DEFAULT_MIN_INTERVAL_S: Final = 0.2
DEFAULT_MAX_PENDING: Final = 256


@dataclass(frozen=True, slots=True)
class Event:
    """One change notification.

    `type` is what changed: `resource` (a stored resource: `kind`, `mesh`, `name`, `detail` created /
    updated / deleted), `dataplane` (an ADS stream of `mesh`/`name`: `detail` connected / disconnected),
    `xds` (the proxy ACKed or NACKed: `detail` ack / nack), `spans` (the proxy's span-flow verdict is now
    `detail`) or `snapshot` (a regeneration pass published `count` proxies of `mesh`; mesh "" and count 0:
    a pass that published nothing, whose decisions inspection shows may still have changed).
    """

    type: str
    mesh: str = ""
    name: str = ""
    kind: str = ""
    detail: str = ""
    count: int = 0

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Events of one key replace each other in a client's backlog."""
        return self.type, self.kind, self.mesh, self.name

    def body(self) -> dict[str, object]:
        """The JSON form sent to clients (empty fields left out)."""
        body: dict[str, object] = {"type": self.type}
        for field, value in (("kind", self.kind), ("mesh", self.mesh), ("name", self.name), ("detail", self.detail)):
            if value:
                body[field] = value
        if self.count:
            body["count"] = self.count
        return body


@dataclass(frozen=True, slots=True)
class Batch:
    """What one client is sent at once: the events (oldest key first), or `resync` when its backlog
    overflowed and it must refetch everything."""

    events: tuple[Event, ...]
    resync: bool = False

    def body(self) -> dict[str, object]:
        return {"resync": self.resync, "events": [event.body() for event in self.events]}


class TooManyClients(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} clients may follow the event stream at once")
        self.limit = limit


class Subscription:
    """One client's backlog; use as a context manager so it is unsubscribed however the client leaves."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._pending: dict[tuple[str, str, str, str], Event] = {}
        self._overflow = False
        self._ready = asyncio.Event()
        self._not_before = 0.0
        self.closed = False

    def offer(self, event: Event) -> None:
        if self.closed:
            return
        if not self._overflow:
            if event.key in self._pending or len(self._pending) < self._hub.max_pending:
                self._pending.pop(event.key, None)  # re-inserted last: the batch is ordered by latest change
                self._pending[event.key] = event
            else:
                self._overflow = True
                self._pending.clear()
        self._ready.set()

    async def next_batch(self, timeout: float) -> Batch | None:
        """The next batch, waiting at most `timeout` seconds for something to send (None then, or when the
        subscription is closed). A batch is never handed out sooner than `min_interval_s` after the last."""
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return None
        wait = self._not_before - self._hub.clock()
        if wait > 0:
            await asyncio.sleep(wait)  # the coalescing window: what arrives meanwhile joins this batch
        if self.closed:
            return None
        self._ready.clear()
        batch = Batch(tuple(self._pending.values()), self._overflow)
        self._pending, self._overflow = {}, False
        self._not_before = self._hub.clock() + self._hub.min_interval_s
        return batch

    def close(self) -> None:
        """End the subscription: the consumer's `next_batch` returns None from now on."""
        if not self.closed:
            self.closed = True
            self._hub.unsubscribe(self)
            self._ready.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class EventHub:
    """Subscribed clients and the events published to them (see the module docstring)."""

    def __init__(self, *, max_clients: int = DEFAULT_MAX_CLIENTS, min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
                 max_pending: int = DEFAULT_MAX_PENDING, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_clients, self.min_interval_s, self.max_pending = max_clients, min_interval_s, max_pending
        self.clock = clock
        self._subscriptions: set[Subscription] = set()
        self._closed = False
        self.published = 0
        """Events published since start (whether or not anyone was subscribed)."""

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    def subscribe(self) -> Subscription:
        """A new client's subscription; TooManyClients when `max_clients` are subscribed."""
        if len(self._subscriptions) >= self.max_clients:
            raise TooManyClients(self.max_clients)
        subscription = Subscription(self)
        self._subscriptions.add(subscription)
        if self._closed:
            subscription.close()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, event: Event) -> None:
        self.published += 1
        for subscription in self._subscriptions:
            subscription.offer(event)

    def close(self) -> None:
        """End every subscription (the API is shutting down: streams must end for it to stop)."""
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.close()
