"""`controlplane` command line: run the control plane, and kumactl-style apply/get/delete/inspect."""

from __future__ import annotations

import chevron
import click

from controlplane import __version__
from controlplane.cli.apply import apply_all, decode_all, parse_vars, read_input
from controlplane.cli.bootstrap import bootstrap
from controlplane.cli.client import ApiClient, ApiFailure, api_url_option, seg
from controlplane.cli.errors import OneLineErrorGroup
from controlplane.cli.inspect import inspect
from controlplane.cli.output import OUTPUT_FORMATS, dump, table
from controlplane.cli.run import run
from controlplane.cli.tokens import generate, revoke
from controlplane.cli.transfer import export_command, import_command
from controlplane.dataplane.command import dataplane
from controlplane.demo.command import demo, demo_service
from controlplane.observability import configure_logging
from controlplane.resources.kind import Kind
from controlplane.resources.registry import KINDS

_LIST_KINDS = {k.plural: k for k in KINDS}
_ONE_KINDS = {k.singular: k for k in KINDS}


@click.group(cls=OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="controlplane")
def cli() -> None:
    """Kuma-compatible Envoy xDS control plane with distributed tracing."""
    # Client commands log only warnings, to stderr, so their stdout (YAML, JSON, tables) stays clean;
    # `run`, `demo` and `dataplane run` configure their own level.
    configure_logging("console", "warning")


cli.add_command(run)

cli.add_command(inspect)
cli.add_command(bootstrap)
cli.add_command(dataplane)
cli.add_command(demo)
cli.add_command(demo_service)
cli.add_command(generate)
cli.add_command(revoke)
cli.add_command(export_command)
cli.add_command(import_command)


@cli.command()
@click.option("-f", "--file", "path", required=True, help="YAML file with one or more resources, or - for stdin.")
@click.option("-v", "--var", "variables", multiple=True, help="key=value substituted for {{ key }} (repeatable).")
@click.option("--dry-run", is_flag=True, help="Validate on the server; write nothing.")
@api_url_option
def apply(path: str, variables: tuple[str, ...], dry_run: bool, api_url: str) -> None:
    """Create or update resources from YAML (multi-document, like kumactl apply)."""
    text = read_input(path)
    if variables:
        text = chevron.render(text, parse_vars(variables))
    apply_all(ApiClient(api_url), decode_all(text), dry_run)


def _kind_for(type_arg: str) -> tuple[Kind, bool]:
    if type_arg in _LIST_KINDS:
        return _LIST_KINDS[type_arg], True
    if type_arg in _ONE_KINDS:
        return _ONE_KINDS[type_arg], False
    allowed = ", ".join([*_LIST_KINDS, *_ONE_KINDS])
    raise click.BadParameter(f"unknown TYPE: {type_arg}. Allowed values: {allowed}", param_hint="TYPE")


def _path(kind: Kind, mesh: str, name: str | None) -> str:
    base = f"/meshes/{seg(mesh)}/{kind.ws_path}" if kind.mesh_scoped else "/meshes"
    return f"{base}/{seg(name)}" if name else base


@cli.command()
@click.argument("type_arg", metavar="TYPE")
@click.argument("name", required=False)
@click.option("-m", "--mesh", default="default", show_default=True)
@click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True)
@click.option("--size", type=int, default=None, help="Page size.")
@click.option("--offset", type=int, default=None, help="Page offset.")
@api_url_option
def get(type_arg: str, name: str | None, mesh: str, output: str, size: int | None, offset: int | None,
        api_url: str) -> None:
    """Show resources: a list (meshes, traffic-traces, dataplanes, ...) or one (mesh NAME, ...)."""
    kind, is_list = _kind_for(type_arg)
    if is_list == (name is not None):
        raise click.UsageError(f"use `get {kind.plural}` to list or `get {kind.singular} NAME` for one")
    client = ApiClient(api_url)
    query = "&".join(f"{k}={v}" for k, v in (("size", size), ("offset", offset)) if v is not None)
    try:
        body = client.request("GET", _path(kind, mesh, name) + (f"?{query}" if query else "")).body
    except ApiFailure as exc:
        if exc.status == 404 and name:
            raise click.ClickException(f'there is no {kind.value} with name "{name}"') from None
        raise
    if not isinstance(body, dict):
        raise click.ClickException(f"unexpected response: {body!r}")
    if output != "table":
        click.echo(dump(body, output))
        return
    items = body.get("items", []) if is_list else [body]
    click.echo(table(kind, items if isinstance(items, list) else []))
    if is_list and body.get("next"):
        shown = (offset or 0) + len(items if isinstance(items, list) else [])
        click.echo(f"Rerun command with --offset={shown} argument to retrieve more resources")


@cli.command()
@click.argument("type_arg", metavar="TYPE")
@click.argument("name")
@click.option("-m", "--mesh", default="default", show_default=True)
@api_url_option
def delete(type_arg: str, name: str, mesh: str, api_url: str) -> None:
    """Delete one resource (deleting a mesh deletes everything in it)."""
    if type_arg not in _ONE_KINDS:
        allowed = ", ".join(_ONE_KINDS)
        raise click.BadParameter(f"unknown TYPE: {type_arg}. Allowed values: {allowed}", param_hint="TYPE")
    kind = _ONE_KINDS[type_arg]
    try:
        ApiClient(api_url).request("DELETE", _path(kind, mesh, name))
    except ApiFailure as exc:
        if exc.status == 404:
            raise click.ClickException(f'there is no {kind.value} with name "{name}"') from None
        raise
    click.echo(f'deleted {kind.value} "{name}"')


def main() -> None:
    cli()
