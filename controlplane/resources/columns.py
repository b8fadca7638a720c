"""Table columns shared by the kinds' `get` tables (kumactl prints MESH, NAME and AGE on every table).

Pure functions of a resource's JSON form and the current time, which the CLI passes in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from controlplane.resources.kind import Column, Item


def age(timestamp: object, now: datetime) -> str:
    """Kuma's AGE column: 5s, 3m, 2h, 4d."""
    if not isinstance(timestamp, str):
        return "-"
    try:
        then = datetime.fromisoformat(timestamp)
    except ValueError:
        return "-"
    seconds = int((now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _field(name: str) -> Column:
    def value(item: Item, now: datetime) -> str:
        return str(item.get(name))

    return Column(name.upper(), value)


MESH: Final = _field("mesh")
NAME: Final = _field("name")
AGE: Final = Column("AGE", lambda item, now: age(item.get("creationTime"), now))
