"""Envoy's log reader survives lines longer than its buffer (a dead reader would block Envoy on a full pipe)."""

from __future__ import annotations

import asyncio
from typing import Any

from controlplane.dataplane.envoy import LOG_LINE_LIMIT, stream_log


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[int, dict[str, Any]]] = []

    def log(self, level: int, event: str, **fields: Any) -> None:
        self.lines.append((level, fields))


async def test_overlong_line_is_cut_and_reading_goes_on() -> None:
    reader = asyncio.StreamReader(limit=LOG_LINE_LIMIT)
    reader.feed_data(b"[debug][config] " + b"x" * (3 * LOG_LINE_LIMIT) + b"\n")
    reader.feed_data(b"[warning][upstream] after the long one\n[info][main] last line without newline")
    reader.feed_eof()
    recorder = Recorder()
    await asyncio.wait_for(stream_log(reader, recorder), 5)  # type: ignore[arg-type]
    messages = [fields["message"] for _, fields in recorder.lines]
    assert "after the long one" in messages
    assert messages[-1] == "last line without newline"
    assert sum(len(m) for m in messages) >= 3 * LOG_LINE_LIMIT  # nothing was dropped, only split
