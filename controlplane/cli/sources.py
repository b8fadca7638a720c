"""Where `apply -f` (and `dataplane run -f`) reads resources from, and how `-v/--var` values are parsed.

Sources, as kumactl and kubectl take them: a file; `-` for stdin; an `http://` or `https://` URL, fetched
with a timeout (kumactl's 10 s) and a size cap, certificates checked against the system's CAs; a directory,
every `*.yaml` / `*.yml` file directly in it, in name order (kubectl's `-f DIR`; not recursive). One size
budget (`MAX_INPUT_BYTES`) covers everything one command reads, so a directory cannot get around the cap a
single file has. Every failure is one line naming the file or URL.

Variables are pflag's `StringToString`, which kumactl's `--var` is: `-v a=b,c=d` is two variables, flags
repeat and add up (a later one wins for the same key), a value with exactly one `=` is taken whole (commas
included, surrounding double quotes trimmed), and with more than one `=` the value is read as one CSV record
(so `-v '"url=http://x/?a=1,b=2"'` keeps its comma). Dotted keys nest for mustache (`{{ a.b }}`), as
kumactl's template package does (merged deeply here, where kumactl keeps only one of `a.b`/`a.c`).
Must not: decode or send resources (apply.py does).
"""

from __future__ import annotations

import csv
import http.client
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import click

MAX_INPUT_BYTES: Final = 8 * 1024 * 1024
FETCH_TIMEOUT_S: Final = 10.0
YAML_SUFFIXES: Final = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Source:
    """One input text and what to call it in messages (`-` is stdin)."""

    name: str
    text: str


def parse_vars(pairs: tuple[str, ...]) -> dict[str, object]:
    """`-v a.b=c -v d=e,f=g` → {"a": {"b": "c"}, "d": "e", "f": "g"} (see the module docstring)."""
    context: dict[str, object] = {}
    for name, value in string_to_string(pairs).items():
        node = context
        *parents, leaf = name.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise click.BadParameter(f"{name}: {part} is already a value", param_hint="--var")
            node = child
        if isinstance(node.get(leaf), dict):
            raise click.BadParameter(f"{name}: {leaf} already has nested variables", param_hint="--var")
        node[leaf] = value
    return context


def string_to_string(pairs: tuple[str, ...], option: str = "--var") -> dict[str, str]:
    """Repeated `option` values as one map, a later value winning for the same key (pflag)."""
    flat: dict[str, str] = {}
    for given in pairs:
        flat.update(_string_to_string(given, option))
    return flat


def _string_to_string(given: str, option: str) -> dict[str, str]:
    """One value, exactly as pflag's stringToStringValue.Set reads it."""
    count = given.count("=")
    if count == 0:
        raise click.BadParameter(f"{given} must be formatted as key=value", param_hint=option)
    if count == 1:
        items = [given.strip('"')]
    else:
        try:
            items = next(csv.reader([given], strict=True))
        except csv.Error as exc:
            raise click.BadParameter(f"{given}: {exc}", param_hint=option) from None
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item} must be formatted as key=value", param_hint=option)
        out[name] = value
    return out


def read_sources(path: str) -> list[Source]:
    """The texts `-f path` names (see the module docstring), within one size budget."""
    if path == "-":
        return [Source("-", _limited(path, lambda n: sys.stdin.read(n), MAX_INPUT_BYTES))]
    if path.startswith(("http://", "https://")):
        return [Source(path, fetch(path, MAX_INPUT_BYTES))]
    given = Path(path)
    if not given.is_dir():
        return [Source(path, _read_file(path, MAX_INPUT_BYTES))]
    files = sorted(p for p in given.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
    if not files:
        raise click.ClickException(f"{path}: no *.yaml or *.yml files in this directory")
    budget, sources = MAX_INPUT_BYTES, []
    for file in files:
        text = _read_file(str(file), budget)
        budget -= len(text.encode())
        sources.append(Source(str(file), text))
    return sources


def _read_file(path: str, budget: int) -> str:
    try:
        with open(path, encoding="utf-8") as stream:
            return _limited(path, stream.read, budget)
    except OSError as exc:  # missing file, no permission: one line, not a traceback
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _limited(path: str, read: Callable[[int], str], budget: int) -> str:
    text = read(budget + 1)
    if len(text) > budget:
        raise click.ClickException(f"{path}: input is larger than {MAX_INPUT_BYTES} bytes")
    return text


class _WebRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """Follow redirects (as kumactl's Go client does), but only to http(s): urllib would follow one to ftp."""

    def redirect_request(self, req: urllib.request.Request, fp: object, code: int, msg: str,
                         headers: object, newurl: str) -> urllib.request.Request | None:
        if not newurl.startswith(("http://", "https://")):
            raise urllib.error.URLError(f"redirected to {newurl!r}, which is not an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]


def fetch(url: str, budget: int) -> str:
    """GET `url` (kumactl's timeout, no cookies or auth), refusing a non-200 answer and a body over budget."""
    request = urllib.request.Request(url, headers={"Accept": "application/yaml, text/plain, */*"})
    opener = urllib.request.build_opener(_WebRedirectsOnly)
    try:
        with opener.open(request, timeout=FETCH_TIMEOUT_S) as resp:
            if resp.status != 200:
                raise click.ClickException(f"{url}: the server answered HTTP {resp.status}, expected 200")
            raw: bytes = resp.read(budget + 1)
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{url}: the server answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise click.ClickException(f"{url}: cannot fetch it: {reason}") from None
    if len(raw) > budget:
        raise click.ClickException(f"{url}: input is larger than {MAX_INPUT_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{url}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
