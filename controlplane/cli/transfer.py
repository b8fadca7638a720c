"""`controlplane export` / `controlplane import`: back up a control plane, or move it between stores.

Export writes every Mesh, TrafficTrace and Dataplane as multi-document YAML in Kuma's form, meshes first, so
`apply -f` (or `import -f`) restores it in a valid order. Two ways to reach the resources:
- through the HTTP API of a running control plane (default; `--api-url`), or
- directly on a store URL (`--store sqlite:PATH | postgres://...`) with no control plane running. This path
  keeps `creationTime`/`modificationTime` on import, which matters because TrafficTrace ranking breaks ties
  by creation time (kuma-tracing.md §2.3); through the API the target stamps new times, as `apply` does.
Import validates every document before writing anything, like `apply`, but without apply's caps: an
export of any size is read back document by document in bounded memory (`restore.py`). Export streams too,
one page of 1000 resources at a time, so neither command holds a whole store in memory.

An SQLite file has one owner (`store/lock.py`): `--store sqlite:PATH` is refused while a control plane runs
on it, since an import it does not see would never reach its Envoys, and an export would race its writes.
Go through that control plane's API instead (leave out `--store`). `export --store` of a file that does not
exist is an error, not an empty export and a new file.
"""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import IO

import click
import yaml

from controlplane.cli.apply import apply_all, resource_label
from controlplane.cli.client import ApiClient, ApiFailure, api_url_option, seg
from controlplane.cli.restore import KIND_ORDER, Restored, Spool, read_export
from controlplane.errors import AlreadyExists, ControlPlaneError, NotFound, StoreLocked
from controlplane.resources.codec import encode_resource, spec_equal
from controlplane.resources.mesh import MESH
from controlplane.resources.model import Resource, ResourceKey
from controlplane.store.base import Store
from controlplane.store.factory import check_store_url, open_store

PAGE_SIZE = 1000
WRITE_BATCH = 64
OWNER_HINT = "stop that control plane first, or export/import through its API (without --store)"
# libyaml's emitter when PyYAML has it: the same bytes as the pure-Python one, several times faster.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_yaml(documents: Iterable[dict[str, object]]) -> str:
    return yaml.dump_all(list(documents), Dumper=_DUMPER, sort_keys=False, default_flow_style=False,
                         explicit_start=True)


def api_pages(client: ApiClient) -> Iterator[list[dict[str, object]]]:
    """Every resource through the API, one page at a time, following `next` links."""
    for kind in KIND_ORDER:
        path: str | None = f"/{kind.ws_path}?size={PAGE_SIZE}"
        while path is not None:
            body = client.request("GET", path).body
            if not isinstance(body, dict):
                raise click.ClickException(f"unexpected response for {path}: {body!r}")
            yield [item for item in body.get("items", []) if isinstance(item, dict)]
            next_url = body.get("next")
            path = _path_of(next_url) if isinstance(next_url, str) else None


def _path_of(url: str) -> str:
    """Path and query of a `next` link, whatever host the server put in it (it may sit behind a proxy)."""
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def store_pages(store: Store) -> AsyncIterator[tuple[Resource, ...]]:
    for kind in KIND_ORDER:
        offset = 0
        while True:
            page = await store.list(kind, offset=offset, size=PAGE_SIZE)
            if page.items:
                yield page.items
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break


def _mesh_missing(mesh: str, where: str) -> click.ClickException:
    return click.ClickException(f"mesh of name {mesh} is not found: it is neither in the input nor {where}; "
                                "nothing was imported")


def _new_sqlite_file(url: str) -> bool:
    try:
        parsed = check_store_url(url)
    except (ValueError, ControlPlaneError):
        return False  # `_open` says what is wrong
    return parsed.backend == "sqlite" and not os.path.exists(parsed.location)


async def _open(url: str, *, create: bool) -> Store:
    """The store, or one line saying why not (bad URL, missing file or directory, held by a control plane)."""
    try:
        return await open_store(url, create=create)
    except StoreLocked as exc:
        raise click.ClickException(f"{exc}; {OWNER_HINT}") from None
    except (ValueError, ControlPlaneError) as exc:
        raise click.ClickException(str(exc)) from None


async def export_store(url: str, out: IO[str]) -> None:
    store = await _open(url, create=False)
    try:
        async for page in store_pages(store):
            out.write(to_yaml(encode_resource(r) for r in page))
    except ControlPlaneError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        await store.close()


async def import_store(url: str, spool: Spool) -> None:
    """Create or update each resource on the store directly, keeping exported timestamps on create."""
    missing = sorted(spool.missing_meshes())
    # A store that does not exist yet holds no mesh: refuse before creating it, so nothing is left behind.
    if missing and _new_sqlite_file(url):
        raise _mesh_missing(missing[0], "in the store")
    store = await _open(url, create=True)
    written = 0
    try:
        for mesh in missing:
            try:
                await store.get(ResourceKey(MESH, "", mesh))
            except NotFound:
                raise _mesh_missing(mesh, "in the store") from None
        for batch in _batches(spool):
            # A batch in flight at once: the store still commits one resource per transaction, in order,
            # but without a round trip through the event loop between them (about a third faster).
            outcomes = await asyncio.gather(*(_write(store, item) for item in batch), return_exceptions=True)
            for item, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    raise outcome
                written += 1
                click.echo(f"{resource_label(item.resource.key)} {outcome}")
    except ControlPlaneError as exc:
        raise click.ClickException(f"{exc}; {written} of {spool.count} resources were imported") from None
    finally:
        await store.close()


def _batches(spool: Spool) -> Iterator[list[Restored]]:
    """Up to WRITE_BATCH resources of one kind: every mesh is committed before anything that lives in it."""
    batch: list[Restored] = []
    for item in spool:
        if batch and (len(batch) == WRITE_BATCH or batch[0].resource.kind is not item.resource.kind):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


async def _write(store: Store, item: Restored) -> str:
    """The outcome in `apply`'s words: created, updated, or unchanged (then nothing is written, as the API
    does not write an unchanged resource)."""
    resource = item.resource
    try:
        await store.create(replace(resource, creation_time=item.created, modification_time=item.modified))
        return "created"
    except AlreadyExists:
        current = await store.get(resource.key)
        if spec_equal(current, resource):
            return "unchanged"
        await store.update(resource, expected_version=current.version)
        return "updated"


def import_api(client: ApiClient, spool: Spool) -> None:
    for mesh in sorted(spool.missing_meshes()):
        try:
            client.request("GET", f"/meshes/{seg(mesh)}")
        except ApiFailure as exc:
            if exc.status != 404:
                raise
            raise _mesh_missing(mesh, "on the control plane") from None
    apply_all(client, (item.resource for item in spool), dry_run=False)


@click.command("export")
@click.option("--store", "store_url", default=None, help="Read this store directly instead of the API.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None, help="File (default stdout).")
@api_url_option
def export_command(store_url: str | None, output: str | None, api_url: str) -> None:
    """Every resource as multi-document YAML that `apply`/`import` restores."""
    if output is None:
        _export(store_url, api_url, sys.stdout)
        return
    partial = f"{output}.partial"  # renamed into place when complete: a failed export leaves no half file
    try:
        with open(partial, "w", encoding="utf-8") as out:
            _export(store_url, api_url, out)
        os.replace(partial, output)
    except OSError as exc:
        raise click.ClickException(f"{output}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _export(store_url: str | None, api_url: str, out: IO[str]) -> None:
    if store_url:
        asyncio.run(export_store(store_url, out))
        return
    for page in api_pages(ApiClient(api_url)):
        out.write(to_yaml(page))


@click.command("import")
@click.option("-f", "--file", "path", required=True, help="An export (multi-document YAML), or - for stdin.")
@click.option("--store", "store_url", default=None, help="Write this store directly (keeps timestamps).")
@api_url_option
def import_command(path: str, store_url: str | None, api_url: str) -> None:
    """Restore an export: through the API (like apply, meshes first) or straight into a store."""
    with ExitStack() as stack:
        spool = read_export(path, stack)
        if store_url:
            asyncio.run(import_store(store_url, spool))
        else:
            import_api(ApiClient(api_url), spool)
