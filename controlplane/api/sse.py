"""`GET /events`: the event hub (api/events.py) as a Server-Sent Events stream, what the GUI listens to.

The stream opens with `retry: 1000` (reconnect a second after a drop, e.g. a control-plane restart) and an
`event: hello` whose data names this control plane instance, then sends one `event: changes` per batch
(`{"resync": bool, "events": [{"type", "kind", "mesh", "name", "detail", "count"}]}`) and a comment line
(`: heartbeat`) after `heartbeat_s` of silence, so proxies and load balancers that cut idle connections
leave it alone. A client that goes away is noticed within `CHECK_S` (the handler looks at its transport
whenever it wakes) and unsubscribed; beyond the hub's client limit the answer is 503 with Kuma's error body.
On shutdown the hub is closed first (`on_shutdown`), which ends every stream, so the API stops promptly.

Reads are open, like `GET /dataplanes+insights`: events carry names and states that the open fleet views
show anyway, never configuration. Must not: decide what is an event (event_feed.py) or batch (events.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

import structlog
from aiohttp import web

from controlplane.api.errors import ApiError
from controlplane.api.events import EventHub, Subscription, TooManyClients
from controlplane.api.meta import INFO

log = structlog.get_logger(__name__)

CHECK_S: Final = 1.0
"""Longest a handler sleeps before looking whether its client is still there."""
RETRY_MS: Final = 1000
HEADERS: Final = {"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@dataclass(frozen=True, slots=True)
class LiveEvents:
    """The hub the stream reads, and how long a stream may stay silent before a heartbeat."""

    hub: EventHub
    heartbeat_s: float = 15.0


EVENTS: Final = web.AppKey("events", LiveEvents)


def message(event: str, data: object) -> bytes:
    """One SSE message (`data` is JSON on one line, so no field needs escaping)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def event_stream(request: web.Request) -> web.StreamResponse:
    live = request.app[EVENTS]
    try:
        subscription = live.hub.subscribe()
    except TooManyClients as exc:
        log.warning("event_client_refused", limit=exc.limit, remote=request.remote)
        raise ApiError(503, "Too many event clients", f"{exc}; close another GUI, or raise "
                                                      "--api-max-event-clients") from None
    with subscription:
        response = web.StreamResponse(headers=HEADERS)
        await response.prepare(request)
        log.info("event_client_connected", clients=live.hub.clients, remote=request.remote)
        try:
            await _follow(request, response, subscription, live.heartbeat_s)
        except ConnectionError:  # the client went away while we wrote
            pass
    log.info("event_client_disconnected", clients=live.hub.clients, remote=request.remote)
    return response


async def _follow(request: web.Request, response: web.StreamResponse, subscription: Subscription,
                  heartbeat_s: float) -> None:
    hello = {"instanceId": request.app[INFO].instance_id, "heartbeatSeconds": heartbeat_s}
    await response.write(f"retry: {RETRY_MS}\n".encode() + message("hello", hello))
    silent_since = _now(request)
    while not subscription.closed:
        batch = await subscription.next_batch(timeout=min(CHECK_S, heartbeat_s))
        if _gone(request):
            return
        if batch is not None:
            await response.write(message("changes", batch.body()))
            silent_since = _now(request)
        elif _now(request) - silent_since >= heartbeat_s:
            await response.write(b": heartbeat\n\n")
            silent_since = _now(request)


def _now(request: web.Request) -> float:
    return float(request.app[EVENTS].hub.clock())


async def _close_hub(app: web.Application) -> None:
    app[EVENTS].hub.close()


def add_routes(app: web.Application, live: LiveEvents) -> None:
    app[EVENTS] = live
    app.on_shutdown.append(_close_hub)
    app.router.add_get("/events", event_stream)
