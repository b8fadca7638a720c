"""The harness's client of the control plane's HTTP API: apply documents, and time the API as a lag probe.

Changes reach the control plane only through its public HTTP API (as users' do), so a measured change
includes request parsing and the store write. Must not: time convergence; it only reports HTTP errors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import aiohttp

from bench.workload import doc_path

LOAD_CONCURRENCY: Final = 16
LOAD_ORDER: Final = {"Mesh": 0, "TrafficTrace": 1, "MeshTrace": 1}
SAMPLE_EVERY_S: Final = 0.02


class ControlPlaneApi:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def put(self, doc: Mapping[str, Any]) -> None:
        async with self.session.put(self.base + doc_path(doc), json=doc) as response:
            if response.status >= 300:
                raise RuntimeError(f"PUT {doc_path(doc)}: {response.status} {await response.text()}")

    async def delete(self, doc: Mapping[str, Any]) -> None:
        async with self.session.delete(self.base + doc_path(doc)) as response:
            if response.status >= 300 and response.status != 404:
                raise RuntimeError(f"DELETE {doc_path(doc)}: {response.status}")

    async def load(self, docs: Sequence[Mapping[str, Any]]) -> None:
        """The mesh first (everything else refers to it), then the rest 16 at a time to keep loading short."""
        ordered = sorted(docs, key=lambda d: LOAD_ORDER.get(d["type"], 2))
        for doc in ordered[:1]:
            await self.put(doc)
        semaphore = asyncio.Semaphore(LOAD_CONCURRENCY)

        async def put(doc: Mapping[str, Any]) -> None:
            async with semaphore:
                await self.put(doc)
        await asyncio.gather(*(put(d) for d in ordered[1:]))

    async def counter(self, name: str) -> float:
        """A label-less counter of the control plane's `/metrics` (e.g. `stats_reports_total`), 0 if absent."""
        async with self.session.get(self.base + "/metrics") as response:
            text = await response.text()
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return float(value)
        return 0.0

    async def wait_counter(self, name: str, at_least: float, timeout: float) -> None:
        """Until `counter(name)` reaches `at_least`; RuntimeError after `timeout` seconds."""
        deadline = time.perf_counter() + timeout
        while (value := await self.counter(name)) < at_least:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{name} is {value:g} after {timeout:g} s, expected at least {at_least:g}")
            await asyncio.sleep(0.5)

    async def sample_latency(self, lag: list[float]) -> None:
        """API round-trip every 20 ms while a change runs: a stand-in for event-loop lag (no CP hook)."""
        while True:
            began = time.perf_counter()
            try:
                async with self.session.get(self.base + "/ready") as response:
                    await response.read()
            except aiohttp.ClientError:
                pass
            lag.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(SAMPLE_EVERY_S)
