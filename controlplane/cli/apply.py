"""`controlplane apply -f FILE|DIR|URL|-`: kumactl apply semantics over the HTTP API.

Reading the sources and the `--var` values is `sources.py`'s job.

Every document is decoded and validated locally first; if any is invalid, nothing is sent (kumactl would
apply the documents before the bad one; an operator never wants half a file applied). Then each resource is
PUT in file order, so a Mesh and the TrafficTrace that needs it can live in one file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

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
    for resource in resources:
        query = "?dryRun=true" if dry_run else ""
        label = resource_label(resource.key)
        try:
            response = client.request("PUT", resource_path(resource) + query, encode_resource(resource))
        except ApiFailure as exc:
            raise click.ClickException(f"{label}: {exc.message}") from None
        body = response.body if isinstance(response.body, dict) else {}
        outcome = str(body.get("result", "applied"))
        click.echo(f"{label} {outcome}{' (dry run, nothing written)' if dry_run else ''}")
        for warning in body.get("warnings", []) or []:
            click.echo(f"warning: {label}: {warning}", err=True)
