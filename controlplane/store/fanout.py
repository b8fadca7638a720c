"""Fan-out of committed changes to every open watcher, shared by the memory and sqlite backends.

Each watcher owns an unbounded asyncio.Queue, so a slow consumer never stalls a writer or another watcher
(go-control-plane delivers into watch channels under its cache lock, so one stuck consumer blocks every
`SetSnapshot`; STYLE.md §1 says not to copy that). A watcher is registered when `subscribe()` is called, not
on its first `__anext__`, so it sees every change committed after `Store.watch()` returns, as base.py
promises. An async generator would register lazily and could miss changes, which is why this is a class.

Everything here runs on the event loop thread only; backends that commit on another thread hand changes
over with `loop.call_soon_threadsafe(fanout.publish, ...)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable

from controlplane.store.base import Change


class ChangeStream(AsyncIterator[Change]):
    """One watcher: yields changes in commit order; ends after the store closes or `aclose()` is called."""

    def __init__(self, unregister: Callable[[ChangeStream], None]) -> None:
        # None marks the end of the stream; a Change is never None.
        self._queue: asyncio.Queue[Change | None] = asyncio.Queue()
        self._unregister = unregister
        self._done = False

    def __aiter__(self) -> ChangeStream:
        return self

    async def __anext__(self) -> Change:
        if self._done:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            self._finish()
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        """Stop watching; changes still queued are dropped."""
        self._finish()

    def deliver(self, change: Change) -> None:
        self._queue.put_nowait(change)

    def end(self) -> None:
        """Let the consumer drain what is queued, then stop."""
        self._queue.put_nowait(None)

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._unregister(self)


class ChangeFanout:
    """The set of open watchers of one store."""

    def __init__(self) -> None:
        self._streams: set[ChangeStream] = set()
        self._closed = False

    def subscribe(self) -> ChangeStream:
        stream = ChangeStream(self._streams.discard)
        if self._closed:
            stream.end()
        else:
            self._streams.add(stream)
        return stream

    def publish(self, changes: Iterable[Change]) -> None:
        if self._closed:
            return
        batch = tuple(changes)
        for stream in self._streams:
            for change in batch:
                stream.deliver(change)

    def close(self) -> None:
        """End every watcher; later subscribers get an already-ended stream."""
        self._closed = True
        for stream in self._streams:
            stream.end()
        self._streams.clear()

    @property
    def watcher_count(self) -> int:
        return len(self._streams)
