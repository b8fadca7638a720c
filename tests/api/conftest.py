"""In-process HTTP API server for the API tests: the real `create_app` on 127.0.0.1, port 0.

The server runs under aiohttp's AppRunner/TCPSite (not the aiohttp test client) so requests go through a
real socket, absolute `next` URLs carry a real host and port, and the body-size limit is enforced by the
server's own reader. Tests talk to it with a plain `aiohttp.ClientSession`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from api_helpers import Api

from controlplane.api.app import create_app
from controlplane.observability import Metrics
from controlplane.store.base import Store
from controlplane.store.memory import MemoryStore
from controlplane.store.sqlite import SqliteStore


async def _open_store(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        return await SqliteStore.open(tmp_path / "api.db")
    return MemoryStore()


@pytest.fixture
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """A server over MemoryStore; parametrise indirectly with "sqlite" to run on a SqliteStore file."""
    backend = getattr(request, "param", "memory")
    store = await _open_store(backend, tmp_path)
    runner = web.AppRunner(create_app(store, Metrics()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(f"http://{host}:{port}", store, session)
    finally:
        await runner.cleanup()
        await store.close()
