"""Rendering of resources for humans (tables) and machines (yaml/json)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

import click
import yaml

OUTPUT_FORMATS: Final = ("table", "yaml", "json")


def dump(value: object, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(value, indent=2)
    text: str = yaml.safe_dump(value, sort_keys=False, default_flow_style=False)
    return text.rstrip("\n")


def age(timestamp: object, now: datetime | None = None) -> str:
    """Kuma's AGE column: 5s, 3m, 2h, 4d."""
    if not isinstance(timestamp, str):
        return "-"
    try:
        then = datetime.fromisoformat(timestamp)
    except ValueError:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def tracing_column(item: dict[str, object]) -> str:
    """`zipkin/jaeger-collector, datadog/dd` or `off`, like kumactl's TRACING column."""
    tracing = item.get("tracing")
    backends = tracing.get("backends", []) if isinstance(tracing, dict) else []
    names = [f"{b.get('type')}/{b.get('name')}" for b in backends if isinstance(b, dict)]
    return ", ".join(names) if names else "off"


def tags_column(item: dict[str, object]) -> str:
    networking = item.get("networking")
    inbound = networking.get("inbound", []) if isinstance(networking, dict) else []
    tags: dict[str, str] = {}
    for i in inbound if isinstance(inbound, list) else []:
        tags.update(i.get("tags", {}) if isinstance(i, dict) else {})
    return " ".join(f"{k}={v}" for k, v in sorted(tags.items()))


Column = tuple[str, Callable[[dict[str, object]], str]]

COLUMNS: Final[dict[str, Sequence[Column]]] = {
    "Mesh": (("NAME", lambda i: str(i.get("name"))), ("TRACING", tracing_column),
             ("AGE", lambda i: age(i.get("creationTime")))),
    "TrafficTrace": (("MESH", lambda i: str(i.get("mesh"))), ("NAME", lambda i: str(i.get("name"))),
                     ("AGE", lambda i: age(i.get("creationTime")))),
    "Dataplane": (("MESH", lambda i: str(i.get("mesh"))), ("NAME", lambda i: str(i.get("name"))),
                  ("TAGS", tags_column), ("AGE", lambda i: age(i.get("creationTime")))),
}


def table(type_name: str, items: Sequence[dict[str, object]]) -> str:
    columns = COLUMNS[type_name]
    rows = [[h for h, _ in columns]] + [[fn(item) for _, fn in columns] for item in items]
    widths = [max(len(r[c]) for r in rows) for c in range(len(columns))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def echo(text: str) -> None:
    click.echo(text)
