"""MemoryKeeper: when it runs a full collection (the heap is frozen after every regeneration pass)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from controlplane import runtime
from controlplane.runtime import MemoryKeeper


class Counting(MemoryKeeper):
    def __init__(self, streams: list[int]) -> None:
        super().__init__(lambda: streams[0])
        self.cleanups = 0

    def cleanup(self) -> None:
        self.cleanups += 1
        super().cleanup()


@pytest.fixture(autouse=True)
def unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_frozen_garbage_is_collected_on_a_fleet_whose_streams_never_close() -> None:
    keeper = Counting([10])
    keeper.check()  # first look at the stream count
    for _ in range(runtime.CLEANUP_AFTER_PASSES - 1):
        keeper.on_pass_done(1)
    keeper.check()
    assert keeper.cleanups == 0
    keeper.on_pass_done(1)
    keeper.check()
    assert keeper.cleanups == 1
    assert gc.get_freeze_count() > 0  # what survived the collection is frozen again


def test_cleanup_after_all_streams_closed_waits_for_a_settled_count() -> None:
    streams = [5]
    keeper = Counting(streams)
    keeper.check()
    streams[0] = 0
    keeper.check()  # count just changed: a reconnect storm may be under way
    assert keeper.cleanups == 0
    keeper.check()
    assert keeper.cleanups == 1


def test_raise_gen0_threshold_keeps_the_older_generations() -> None:
    before = gc.get_threshold()
    try:
        runtime.raise_gen0_threshold(12_345)
        assert gc.get_threshold() == (12_345, before[1], before[2])
    finally:
        gc.set_threshold(*before)
