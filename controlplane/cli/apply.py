"""`controlplane apply -f FILE|-`: kumactl apply semantics over the HTTP API.

Every document is decoded and validated locally first; if any is invalid, nothing is sent (kumactl would
apply the documents before the bad one; an operator never wants half a file applied). Then each resource is
PUT in file order, so a Mesh and the TrafficTrace that needs it can live in one file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Final

import click

from controlplane.cli.client import ApiClient, ApiFailure, seg
from controlplane.errors import ValidationError
from controlplane.resources.codec import decode_resource, encode_resource
from controlplane.resources.model import Resource
from controlplane.resources.yaml_loader import load_documents

MAX_INPUT_BYTES: Final = 8 * 1024 * 1024


def parse_vars(pairs: tuple[str, ...]) -> dict[str, object]:
    """`--var a.b=c` → {"a": {"b": "c"}} so mustache `{{ a.b }}` works like kumactl's dotted keys."""
    context: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--var")
        node = context
        *parents, leaf = name.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise click.BadParameter(f"{name}: {part} is already a value", param_hint="--var")
            node = child
        node[leaf] = value
    return context


def read_input(path: str) -> str:
    try:
        stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
        with stream:
            text = stream.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:  # missing file, directory, no permission: one line, not a traceback
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if len(text) > MAX_INPUT_BYTES:
        raise click.ClickException(f"{path}: input is larger than {MAX_INPUT_BYTES} bytes")
    return text


def decode_all(text: str) -> list[Resource]:
    try:
        documents = load_documents(text)
    except ValidationError as exc:
        raise click.ClickException("\n".join(str(v) for v in exc.violations)) from None
    if not documents:
        raise click.ClickException("no resource(s) passed to apply")
    resources, errors = [], []
    for i, doc in enumerate(documents):
        try:
            resources.append(decode_resource(doc))
        except ValidationError as exc:
            label = _label(doc, i)
            errors.append(f"{label} is not valid:\n" + "\n".join(f"  {v}" for v in exc.violations))
    if errors:
        raise click.ClickException("\n".join(errors) + "\nnothing was applied")
    return resources


def _label(doc: object, i: int) -> str:
    if isinstance(doc, dict) and doc.get("type") and doc.get("name"):
        return f'document {i + 1} ({doc["type"]} "{doc["name"]}")'
    return f"document {i + 1}"


def resource_path(resource: Resource) -> str:
    if resource.kind.mesh_scoped:
        return f"/meshes/{seg(resource.mesh)}/{resource.kind.ws_path}/{seg(resource.name)}"
    return f"/meshes/{seg(resource.name)}"


def apply_all(client: ApiClient, resources: Iterable[Resource], dry_run: bool) -> None:
    for resource in resources:
        query = "?dryRun=true" if dry_run else ""
        label = f'{resource.kind.value} "{resource.mesh + "/" if resource.mesh else ""}{resource.name}"'
        try:
            response = client.request("PUT", resource_path(resource) + query, encode_resource(resource))
        except ApiFailure as exc:
            raise click.ClickException(f"{label}: {exc.message}") from None
        body = response.body if isinstance(response.body, dict) else {}
        outcome = str(body.get("result", "applied"))
        click.echo(f"{label} {outcome}{' (dry run, nothing written)' if dry_run else ''}")
        for warning in body.get("warnings", []) or []:
            click.echo(f"warning: {label}: {warning}", err=True)
