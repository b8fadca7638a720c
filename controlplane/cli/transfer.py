"""`controlplane export` / `controlplane import`: back up a control plane, or move it between stores.

Export writes every Mesh, TrafficTrace and Dataplane as multi-document YAML in Kuma's form, meshes first, so
`apply -f` (or `import -f`) restores it in a valid order. Two ways to reach the resources:
- through the HTTP API of a running control plane (default; `--api-url`), or
- directly on a store URL (`--store sqlite:PATH | postgres://...`) with no control plane running. This path
  keeps `creationTime`/`modificationTime` on import, which matters because TrafficTrace ranking breaks ties
  by creation time (kuma-tracing.md §2.3); through the API the target stamps new times, as `apply` does.
Import validates every document before writing anything, like `apply`.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

import click
import yaml

from controlplane.cli.apply import apply_all, decode_all, read_input
from controlplane.cli.client import ApiClient, api_url_option
from controlplane.errors import NotFound
from controlplane.resources.codec import encode_resource
from controlplane.resources.model import Resource
from controlplane.resources.registry import KINDS
from controlplane.resources.yaml_loader import load_documents
from controlplane.store.base import Store
from controlplane.store.factory import open_store

KIND_ORDER = KINDS.all()  # meshes first, dataplanes last: an order `apply` accepts
PAGE_SIZE = 1000


def to_yaml(documents: Iterable[dict[str, object]]) -> str:
    return yaml.safe_dump_all(list(documents), sort_keys=False, default_flow_style=False, explicit_start=True)


def api_documents(client: ApiClient) -> list[dict[str, object]]:
    """Every resource through the API, following `next` links page by page."""
    documents: list[dict[str, object]] = []
    for kind in KIND_ORDER:
        path: str | None = f"/{kind.ws_path}?size={PAGE_SIZE}"
        while path is not None:
            body = client.request("GET", path).body
            if not isinstance(body, dict):
                raise click.ClickException(f"unexpected response for {path}: {body!r}")
            documents.extend(item for item in body.get("items", []) if isinstance(item, dict))
            next_url = body.get("next")
            path = _path_of(next_url) if isinstance(next_url, str) else None
    return documents


def _path_of(url: str) -> str:
    """Path and query of a `next` link, whatever host the server put in it (it may sit behind a proxy)."""
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def store_resources(store: Store) -> list[Resource]:
    resources: list[Resource] = []
    for kind in KIND_ORDER:
        offset = 0
        while True:
            page = await store.list(kind, offset=offset, size=PAGE_SIZE)
            resources.extend(page.items)
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
    return resources


async def export_store(url: str) -> str:
    store = await open_store(url)
    try:
        return to_yaml(encode_resource(r) for r in await store_resources(store))
    finally:
        await store.close()


def _times(documents: list[object]) -> list[tuple[datetime | None, datetime | None]]:
    """creationTime/modificationTime of each document (RFC 3339 with a zone), or a clear error."""
    def parse(index: int, field: str, value: object) -> datetime | None:
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise click.ClickException(f"document {index + 1}: {field}: must be an RFC 3339 time with a zone, "
                                       f"e.g. 2024-01-02T03:04:05Z, got {value!r}")
        return parsed

    return [(parse(i, "creationTime", d.get("creationTime")), parse(i, "modificationTime", d.get("modificationTime")))
            if isinstance(d, dict) else (None, None) for i, d in enumerate(documents)]


async def import_store(url: str, text: str) -> list[str]:
    """Create or update each resource on the store directly, keeping exported timestamps on create."""
    resources = decode_all(text)
    times = _times(load_documents(text))
    ordered = sorted(zip(resources, times, strict=True), key=lambda pair: KIND_ORDER.index(pair[0].kind))
    store = await open_store(url)
    lines = []
    try:
        for resource, (created, modified) in ordered:
            try:
                current = await store.get(resource.key)
            except NotFound:
                await store.create(replace(resource, creation_time=created, modification_time=modified))
                lines.append(f"{resource.key} created")
                continue
            await store.update(resource, expected_version=current.version)
            lines.append(f"{resource.key} updated")
    finally:
        await store.close()
    return lines


@click.command("export")
@click.option("--store", "store_url", default=None, help="Read this store directly instead of the API.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None, help="File (default stdout).")
@api_url_option
def export_command(store_url: str | None, output: str | None, api_url: str) -> None:
    """Every resource as multi-document YAML that `apply`/`import` restores."""
    text = asyncio.run(export_store(store_url)) if store_url else to_yaml(api_documents(ApiClient(api_url)))
    if output:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        click.echo(text, nl=False)


@click.command("import")
@click.option("-f", "--file", "path", required=True, help="An export (multi-document YAML), or - for stdin.")
@click.option("--store", "store_url", default=None, help="Write this store directly (keeps timestamps).")
@api_url_option
def import_command(path: str, store_url: str | None, api_url: str) -> None:
    """Restore an export: through the API (like apply, meshes first) or straight into a store."""
    text = read_input(path)
    if store_url:
        for line in asyncio.run(import_store(store_url, text)):
            click.echo(line)
        return
    resources = sorted(decode_all(text), key=lambda r: KIND_ORDER.index(r.kind))
    apply_all(ApiClient(api_url), resources, dry_run=False)
