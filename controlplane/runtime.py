"""Process-level tuning and upkeep of the `controlplane run` process: the one place that changes how the
interpreter behaves. `serve()` (cli/run.py) applies it; library code (`running()`, `start_ads_server`, the
reconciler) never does, so tests, the demo and the benchmarks run on a normal runtime unless they opt in.
What it does: the garbage-collector/heap policy below, and grpc.aio's wake-up drain
(xds/grpc_wakeup.py). Loop-lag sampling is measurement, not tuning, and runs in every control plane.

Why a GC policy: with 1 000 streams the heap holds ≈ 300 k GC-tracked objects (snapshots, stream tasks,
grpc call objects), and every mesh-wide regeneration allocates enough long-lived objects to trigger one
full (generation 2) collection, which took 145–170 ms per push on the 2-core bench machine, a sixth of
the push's CPU and one long event-loop stall. After each regeneration pass the surviving objects are
moved to the permanent generation (`gc.freeze()`), so collections only scan what is new. The cost is that
cyclic garbage among frozen objects (a closed stream's task/coroutine cycles) is not found until the heap
is unfrozen; `MemoryKeeper` does that (one full collection) once streams have closed or after every
`CLEANUP_AFTER_PASSES` regeneration passes, and then returns
freed heap pages to the OS with glibc's `malloc_trim`, so RSS drops back after a mass disconnect.

The young-generation threshold is also raised (`GEN0_THRESHOLD`, CPython's default is 700): a pass
allocates millions of short-lived objects that reference counting frees anyway, and a gen-0 collection every
700 allocations was ≈ 14 % of a 1 000-proxy pass (in-process pass benchmark: 238 → 205 ms). Cycles are
still collected, just in larger, rarer batches.

Loop lag: a task asks to wake every `interval` and records how late it woke (`asyncio_loop_lag_seconds`):
the time any callback, stream or the reconciler held the loop without yielding.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable
from typing import Final

import structlog
from prometheus_client import Histogram

from controlplane.xds import grpc_wakeup
from controlplane.xds.snapshot import Snapshot

log = structlog.get_logger(__name__)

LAG_INTERVAL_S: Final = 0.05
CLEANUP_CHECK_S: Final = 1.0
GEN0_THRESHOLD: Final = 10_000
CLEANUP_AFTER_CLOSED: Final = 100
"""Streams closed since the last full collection that make the next check run one."""
CLEANUP_AFTER_PASSES: Final = 50
"""Regeneration passes since the last full collection that make the next check run one: garbage cycles
frozen by `on_pass_done` must be found even on a fleet whose streams never close."""


async def sample_loop_lag(histogram: Histogram, interval: float = LAG_INTERVAL_S) -> None:
    """Record, every `interval`, how much later than asked the loop woke this task (runs until cancelled)."""
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + interval
        await asyncio.sleep(interval)
        histogram.observe(max(0.0, loop.time() - expected))


def raise_gen0_threshold(threshold: int = GEN0_THRESHOLD) -> None:
    """Apply the young-generation threshold of the module doc (process-wide; `serve` calls it once)."""
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(threshold, gen1, gen2)


def _load_malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None on other C libraries (musl, macOS), where trimming is skipped."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def tune_process() -> None:
    """Everything applied once before a control plane process starts serving (`serve()` only)."""
    raise_gen0_threshold()


def tune_running_loop() -> None:
    """Everything applied once grpc.aio has bound the event loop (after the ADS server started)."""
    grpc_wakeup.install()


class MemoryKeeper:
    """Freezes the heap after regeneration passes and cleans up after streams close (see module doc).

    A reconciler observer (`on_pass_done`); `run()` is a task owned by `serve()`. `open_streams` (given
    here, or to `run` once the ADS server exists) is read once per `CLEANUP_CHECK_S`: an O(1) poll that
    costs nothing measurable when idle, simpler than another observer hook and fine at that resolution.
    """

    def __init__(self, open_streams: Callable[[], int] = lambda: 0) -> None:
        self._open_streams = open_streams
        self._trim = _load_malloc_trim()
        self._peak_since_cleanup = 0
        self._closed_since_cleanup = 0
        self._passes_since_cleanup = 0
        self._last = 0

    def on_published(self, node_id: str, snapshot: Snapshot, started: float) -> None:
        pass

    def on_pass_done(self, changes: int) -> None:
        """Move everything alive now (mostly the new snapshots) out of the collector's way."""
        gc.freeze()
        self._passes_since_cleanup += 1

    async def run(self, open_streams: Callable[[], int] | None = None) -> None:
        if open_streams is not None:
            self._open_streams = open_streams
        while True:
            await asyncio.sleep(CLEANUP_CHECK_S)
            self.check()

    def check(self) -> None:
        """Full collection + trim once the stream count has settled after all or many streams closed.

        Waiting for a settled count keeps a reconnect storm from paying one full collection per check.
        """
        current, previous = self._open_streams(), self._last
        self._last = current
        self._closed_since_cleanup += max(0, previous - current)
        self._peak_since_cleanup = max(self._peak_since_cleanup, current)
        if current != previous:
            return
        drained = current == 0 and self._peak_since_cleanup > 0
        many_closed = self._closed_since_cleanup >= CLEANUP_AFTER_CLOSED
        if drained or many_closed or self._passes_since_cleanup >= CLEANUP_AFTER_PASSES:
            self.cleanup()

    def cleanup(self) -> None:
        began = time.perf_counter()
        gc.unfreeze()
        collected = gc.collect()
        gc.freeze()
        trimmed = self._trim(0) if self._trim is not None else 0
        log.info("heap_cleaned", collected=collected, trimmed=bool(trimmed), streams=self._last,
                 seconds=round(time.perf_counter() - began, 3))
        self._closed_since_cleanup = 0
        self._passes_since_cleanup = 0
        self._peak_since_cleanup = self._last
