"""Unit tests run their event loops in asyncio debug mode (STYLE §4.8): a coroutine that is never awaited,
a callback that blocks the loop for more than 100 ms, or a non-threadsafe call from another thread is
reported as it happens instead of passing silently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture(autouse=True)
async def asyncio_debug() -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    yield
