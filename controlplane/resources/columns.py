"""Table columns shared by the kinds' `get` tables (kumactl prints MESH, NAME and AGE on every table).

Pure functions of a resource's JSON form and the current time, which the CLI passes in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from controlplane.resources.kind import Column, Item


def age(timestamp: object, now: datetime) -> str:
    """kumactl's AGE (`table.TimeSince` / `Duration`): 5s, 3m, 2h, 4d, 1y; `0s` for up to a second in the
    future (clock skew), `never` beyond; `-` when the resource carries no time."""
    if not isinstance(timestamp, str):
        return "-"
    try:
        then = datetime.fromisoformat(timestamp)
    except ValueError:
        return "-"
    return duration((now - then).total_seconds())


def duration(seconds_float: float) -> str:
    """Go's `int(d.Seconds())` truncates toward zero, and each unit is checked on the whole duration."""
    seconds = int(seconds_float)
    if seconds < -1:
        return "never"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    hours = seconds // 3600
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"


def _field(name: str) -> Column:
    def value(item: Item, now: datetime) -> str:
        return str(item.get(name))

    return Column(name.upper(), value)


MESH: Final = _field("mesh")
NAME: Final = _field("name")
AGE: Final = Column("AGE", lambda item, now: age(item.get("modificationTime"), now))
"""kumactl's AGE is the time since the last modification (`TimeSince(GetModificationTime())`)."""
