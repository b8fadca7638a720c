"""`controlplane apply -f FILE|DIR|URL|-`: kumactl apply semantics over the HTTP API.

Reading the sources and the `--var` values is `sources.py`'s job.

Every document is decoded and validated locally first; if any is invalid, nothing is sent (kumactl would
apply the documents before the bad one; an operator never wants half a file applied). Then each resource is
PUT in file order, so a Mesh and the TrafficTrace that needs it can live in one file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import chevron
import click

from controlplane.cli.client import ApiClient, ApiFailure, seg
from controlplane.cli.sources import Source
from controlplane.errors import ValidationError
from controlplane.resources.codec import decode_resource, encode_resource
from controlplane.resources.model import Resource, ResourceKey
from controlplane.resources.yaml_loader import MAX_DOCUMENTS, load_documents

NOTHING_APPLIED: Final = "nothing was applied"


def decode_all(text: str) -> list[Resource]:
    return decode_sources([Source("-", text)], {})


def decode_sources(sources: Sequence[Source], variables: dict[str, object]) -> list[Resource]:
    """Every document of every source, rendered with `variables` (mustache, when any are given) and
    decoded; errors of all sources are collected (named by file when there are several) and nothing is
    returned unless every document is valid."""
    resources: list[Resource] = []
    errors: list[str] = []
    for source in sources:
        text = chevron.render(source.text, variables) if variables else source.text
        where = f"{source.name}: " if len(sources) > 1 else ""
        try:
            documents = load_documents(text)
        except ValidationError as exc:
            errors.append(where + "\n".join(str(v) for v in exc.violations))
            continue
        for i, doc in enumerate(documents):
            try:
                resources.append(decode_resource(doc))
            except ValidationError as exc:
                errors.append(f"{where}{_label(doc, i)} is not valid:\n" + "\n".join(f"  {v}" for v in exc.violations))
    if errors:  # a YAML error alone (one source) is its own message, as before directories were read
        alone = len(sources) == 1 and len(errors) == 1 and " is not valid:\n" not in errors[0]
        raise click.ClickException("\n".join(errors) + ("" if alone else "\n" + NOTHING_APPLIED))
    if not resources:
        raise click.ClickException("no resource(s) passed to apply")
    if len(resources) > MAX_DOCUMENTS:
        raise click.ClickException(f"more than {MAX_DOCUMENTS} documents; split the input into several applies")
    return resources


def _label(doc: object, i: int) -> str:
    if isinstance(doc, dict) and doc.get("type") and doc.get("name"):
        return f'document {i + 1} ({doc["type"]} "{doc["name"]}")'
    return f"document {i + 1}"


def resource_label(key: ResourceKey) -> str:
    """`TrafficTrace "default/web"`: how apply and import name a resource in what they print."""
    return f'{key.kind.value} "{key.mesh + "/" if key.mesh else ""}{key.name}"'


def resource_path(resource: Resource) -> str:
    if resource.kind.mesh_scoped:
        return f"/meshes/{seg(resource.mesh)}/{resource.kind.ws_path}/{seg(resource.name)}"
    return f"/meshes/{seg(resource.name)}"


def apply_all(client: ApiClient, resources: Iterable[Resource], dry_run: bool) -> None:
    """PUT each resource in order; with `dry_run`, validate the batch as one unit and show what it would change.

    A real apply is not atomic (kumactl's isn't either): when a PUT fails, the documents before it stay
    applied, so the error says precisely which were applied, which failed and which were not sent."""
    batch = list(resources)
    if dry_run:
        dry_run_all(client, batch)
        return
    for index, resource in enumerate(batch):
        try:
            response = client.request("PUT", resource_path(resource), encode_resource(resource))
        except ApiFailure as exc:
            raise click.ClickException(_partial_failure(batch, index, exc.message)) from None
        except click.ClickException as exc:  # unreachable: from the start (as it is), or gone mid-way
            if index == 0:
                raise
            raise click.ClickException(_partial_failure(batch, index, exc.message)) from None
        body = response.body if isinstance(response.body, dict) else {}
        click.echo(f"{resource_label(resource.key)} {body.get('result', 'applied')}")
        for warning in body.get("warnings", []) or []:
            click.echo(f"warning: {resource_label(resource.key)}: {warning}", err=True)


def _partial_failure(batch: list[Resource], index: int, message: str) -> str:
    failed = f"{resource_label(batch[index].key)}: {message}"
    if len(batch) == 1:
        return failed
    applied = ", ".join(resource_label(r.key) for r in batch[:index]) or "none"
    skipped = ", ".join(resource_label(r.key) for r in batch[index + 1:]) or "none"
    return (f"{failed}\ndocument {index + 1} of {len(batch)} failed; applied before it: {applied}; "
            f"not sent: {skipped}")


def dry_run_all(client: ApiClient, batch: list[Resource]) -> None:
    """`POST /dry-run`: per resource its outcome and warnings or violations, and the proxies whose tracing it
    would change (before → after); exit 1 if any resource is invalid. Nothing is written."""
    try:
        response = client.request("POST", "/dry-run", {"items": [encode_resource(r) for r in batch]})
        body = response.body
    except ApiFailure as exc:
        if exc.status != 400 or not isinstance(exc.body, dict) or "results" not in exc.body:
            raise
        body = exc.body
    results = body.get("results", []) if isinstance(body, dict) else []
    invalid = []
    for resource, result in zip(batch, results, strict=False):
        if result.get("result") == "invalid":
            causes = "".join(f"\n  {c.get('field')}: {c.get('message')}" for c in result.get("causes") or [])
            invalid.append(f"{resource_label(resource.key)} would fail: {result.get('details')}{causes}")
            continue
        click.echo(f"{resource_label(resource.key)} {result.get('result')} (dry run, nothing written)")
        for warning in result.get("warnings") or []:
            click.echo(f"warning: {resource_label(resource.key)}: {warning}", err=True)
        for change in result.get("changes") or []:
            click.echo(f"  {change_line(change)}")
    if invalid:
        raise click.ClickException("\n".join(invalid) + "\nnothing was written")


def change_line(change: dict[str, Any]) -> str:
    """`default/web-1: backend zipkin-eu → zipkin-us, sampling 100% → 25%` (or the new proxy's tracing)."""
    name = f"{change.get('mesh')}/{change.get('dataplane')}"
    before, after = change.get("before"), change.get("after") or {}
    if before is None:
        return f"{name}: new proxy: {_tracing_text(after)}"
    parts = [f"{field} {_show(field, before)} → {_show(field, after)}" for field in change.get("changed") or []]
    return f"{name}: " + "; ".join(parts)


def _tracing_text(summary: dict[str, Any]) -> str:
    if not summary.get("backend"):
        return f"tracing off ({summary.get('reason')})"
    return (f"{summary.get('type')} backend {summary.get('backend')} ({summary.get('policy')}), sampling "
            f"{_show('sampling', summary)}, listeners traced {_show('tracedListeners', summary)}")


def _show(field: str, summary: dict[str, Any]) -> str:
    value = summary.get(field)
    if field == "backend" and not value:
        return f"off ({summary.get('reason')})" if summary.get("reason") else "off"
    if field == "sampling":
        if not summary.get("backend"):
            return "-"
        set_ = {k: v for k, v in (value or {}).items() if v is not None}
        return ", ".join(f"{k} {v:g}%" for k, v in set_.items()) if set_ else "100% (default)"
    if field == "tags":
        return ", ".join(str(t.get("tag")) for t in value or []) or "none"
    if field == "tracedListeners":
        return ", ".join(value) if value else "none"
    return str(value) if value else "none"
