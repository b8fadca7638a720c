"""Run an aiohttp application on a local address, port 0 meaning "any free port".

Shared by the demo's services and span receiver (and the tests' fake collectors and upstream apps), which
all need the same start-on-a-free-port / remember-the-port / clean-up steps.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from aiohttp import web


class LocalServer:
    """One running aiohttp app; `port` is the bound port once `start` returns."""

    def __init__(self, host: str, port: int = 0) -> None:
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self, app: web.Application) -> int:
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class Serving:
    """Mixin: `async with` a server object runs its `start()` and `stop()` (one copy of that boilerplate)."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
