"""A built-in zipkin-compatible span receiver for the demo (`POST /api/v2/spans`, JSON v2).

Responsible for: accepting what Envoy's zipkin tracer sends, grouping spans by trace id, and handing out
each trace once it looks complete. Envoy reports every span on its own (with `min_flush_spans: 1`) and from
several proxies, so "complete" is a judgement: every parent a span names has arrived and nothing new came
for `settle_s`, or nothing new came for `give_up_s` (a partial trace is still worth showing).
Must not: store spans forever (a trace is forgotten once handed out) or be lenient about the wire format.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from controlplane.demo.serving import LocalServer
from controlplane.demo.tree import Span

SPANS_PATH: Final = "/api/v2/spans"
MAX_BODY_BYTES: Final = 16 * 1024 * 1024


@dataclass
class _Pending:
    spans: list[Span] = field(default_factory=list)
    last_arrival: float = 0.0


@dataclass
class SpanReceiver:
    """aiohttp server on ``host:port`` (0 = any free port) collecting zipkin spans."""

    host: str = "127.0.0.1"
    port: int = 0
    settle_s: float = 0.3
    give_up_s: float = 3.0
    spans_received: int = 0
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _server: LocalServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{SPANS_PATH}"

    async def start(self) -> None:
        """Listen (again, on the same port after a `stop`: Envoy's collector cluster keeps pointing at it)."""
        if self._server is not None:
            return
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(SPANS_PATH, self._receive)
        self._server = LocalServer(self.host, self.port)
        self.port = await self._server.start(app)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def _receive(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.Response(status=415, text="only application/json (zipkin v2 JSON) is accepted")
        try:
            spans = json.loads(await request.read())
        except ValueError as exc:
            return web.Response(status=400, text=f"malformed JSON: {exc}")
        if not isinstance(spans, list) or not all(isinstance(s, dict) and "traceId" in s for s in spans):
            return web.Response(status=400, text="expected a JSON list of zipkin v2 spans")
        await self.add_spans(spans)
        return web.Response(status=202)

    async def add_spans(self, spans: Sequence[Span]) -> None:
        """Group spans (zipkin v2 JSON, each with a `traceId`) by trace; also how the OTLP receiver
        (`otlp_receiver.py`) hands over what it decoded."""
        now = asyncio.get_running_loop().time()
        async with self._arrived:
            for span in spans:
                pending = self._pending.setdefault(str(span["traceId"]), _Pending())
                pending.spans.append(span)
                pending.last_arrival = now
            self.spans_received += len(spans)
            self._arrived.notify_all()

    async def traces(self) -> AsyncIterator[list[Span]]:
        """Yield each trace once it looks complete, oldest first; runs until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            async with self._arrived:
                ready = self._take_ready(loop.time())
                if not ready:
                    # Woken by an arrival, or when the earliest pending trace may have settled.
                    try:
                        await asyncio.wait_for(self._arrived.wait(), self._next_check(loop.time()))
                    except TimeoutError:
                        pass
                    continue
            for spans in ready:
                yield spans

    def _take_ready(self, now: float) -> list[list[Span]]:
        ready = [trace_id for trace_id, pending in self._pending.items() if _is_ready(pending, now,
                                                                                       self.settle_s, self.give_up_s)]
        return [self._pending.pop(trace_id).spans for trace_id in ready]

    def _next_check(self, now: float) -> float:
        if not self._pending:
            return self.give_up_s
        earliest = min(pending.last_arrival for pending in self._pending.values())
        return max(0.05, min(earliest + self.settle_s - now, self.give_up_s))


def _is_ready(pending: _Pending, now: float, settle_s: float, give_up_s: float) -> bool:
    quiet = now - pending.last_arrival
    if quiet >= give_up_s:
        return True
    ids = {span.get("id") for span in pending.spans}
    closed = all(not span.get("parentId") or span.get("parentId") in ids for span in pending.spans)
    return closed and quiet >= settle_s
