"""Rendering of resources for humans (tables) and machines (yaml/json), and writing secrets to files."""

from __future__ import annotations

import json
import os
import stat
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import click
import yaml

from controlplane.resources.kind import Kind

OUTPUT_FORMATS: Final = ("table", "yaml", "json")


def dump(value: object, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(value, indent=2)
    text: str = yaml.safe_dump(value, sort_keys=False, default_flow_style=False)
    return text.rstrip("\n")


def table(kind: Kind, items: Sequence[Mapping[str, object]], now: datetime | None = None) -> str:
    """The kind's `get` table (its descriptor's columns)."""
    moment = now or datetime.now(UTC)
    return plain_table([c.header for c in kind.columns], [[c.value(item, moment) for c in kind.columns]
                                                         for item in items])


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """kumactl's tables (Go's tabwriter, padding 3): left-aligned, three spaces between columns, the last
    column not padded."""
    lines = [list(headers), *(list(r) for r in rows)]
    widths = [max(len(r[c]) for r in lines) for c in range(len(headers))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in lines)


def pagination_footer(next_url: object) -> str:
    """kumactl's hint under a page that is not the last: a blank line, then the offset of the next page
    (read from the API's `next` link)."""
    if not isinstance(next_url, str) or not next_url:
        return ""
    offset = urllib.parse.parse_qs(urllib.parse.urlsplit(next_url).query).get("offset", [""])[0]
    return f"\nRerun command with --offset={offset} argument to retrieve more resources" if offset else ""


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
