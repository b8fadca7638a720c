"""Rendering of resources for humans (tables) and machines (yaml/json), and writing secrets to files."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
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


def write_private_file(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (tokens, bootstraps carrying a token)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        if stat.S_ISREG(os.fstat(out.fileno()).st_mode):  # O_CREAT's mode only applies to a new file
            os.fchmod(out.fileno(), 0o600)
        out.write(text)


def emit_secret(text: str, output_path: Path | None, what: str) -> None:
    """`text` to stdout, or (`-o FILE`) to a private file with a note on stderr; a write error exits 1."""
    if output_path is None:
        click.echo(text, nl=False)
        return
    try:
        write_private_file(output_path, text)
    except OSError as exc:
        raise click.ClickException(f"{output_path}: {exc.strerror or exc}") from None
    click.echo(f"wrote {what} to {output_path}", err=True)
