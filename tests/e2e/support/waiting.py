"""Deadline-bound waiting for end-to-end tests.

Envoy applies configuration and flushes spans asynchronously, so every e2e assertion waits for a
condition with a deadline (STYLE.md §4.8) instead of sleeping a fixed time and hoping: a fixed sleep
is either too short on a loaded CI machine or wastes time everywhere else.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Awaitable, Callable

import aiohttp


async def eventually(
    predicate: Callable[[], Awaitable[bool] | bool],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str,
) -> None:
    """Poll ``predicate`` (sync or async) until it is truthy; AssertionError(message) at the deadline.

    Exceptions raised by the predicate count as "not yet" (e.g. connection refused while Envoy
    starts); the last one is chained to the AssertionError so the failure explains itself.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
        except (AssertionError, OSError, ValueError, LookupError, TimeoutError, aiohttp.ClientError) as error:
            last_error = error
        if loop.time() >= deadline:
            raise AssertionError(f"{message} (not true after {timeout:.1f}s)") from last_error
        await asyncio.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago, for listeners that must have an explicit port.

    Racy by nature (another process may take it before Envoy binds), but the window is tiny and
    Envoy reports a bind failure clearly, which beats parsing port-0 listeners out of the admin API.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
