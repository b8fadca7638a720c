"""`controlplane` command line: run the control plane, and kumactl-style apply/get/delete/inspect/config.

The connection options (`--api-url`, `--token`, `--api-token-file`, `--ca-cert-file`, `--config-file`) are
accepted here on the root as well as on every client command (client.py). With no arguments the command
prints its help and exits 0, like kumactl.
"""

from __future__ import annotations

import click

from controlplane import __version__
from controlplane.cli.apply import apply_all, decode_sources
from controlplane.cli.bootstrap import bootstrap
from controlplane.cli.client import ApiClient, ApiFailure, api_url_option, client_options, seg
from controlplane.cli.completion import (
    LIST_TYPES,
    ONE_TYPES,
    complete_name,
    complete_type,
    completion,
    kind_from_type_argument,
)
from controlplane.cli.config_cmd import config
from controlplane.cli.errors import OneLineErrorGroup
from controlplane.cli.inspect import inspect
from controlplane.cli.output import OUTPUT_FORMATS, dump, pagination_footer, table
from controlplane.cli.run import run
from controlplane.cli.sources import parse_vars, read_sources
from controlplane.cli.tokens import generate, revoke
from controlplane.cli.transfer import export_command, import_command
from controlplane.cli.version_cmd import version
from controlplane.dataplane.command import dataplane
from controlplane.demo.command import demo, demo_service
from controlplane.observability import configure_logging
from controlplane.resources.kind import Kind


@click.group(cls=OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"]},
             invoke_without_command=True)
@click.version_option(__version__, prog_name="controlplane")
@client_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Kuma-compatible Envoy xDS control plane with distributed tracing."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(0)
    # Client commands log only warnings, to stderr, so their stdout (YAML, JSON, tables) stays clean;
    # `run`, `demo` and `dataplane run` configure their own level.
    configure_logging("console", "warning")


for _command in (run, inspect, bootstrap, dataplane, demo, demo_service, generate, revoke, export_command,
                 import_command, version, completion, config):
    cli.add_command(_command)


@cli.command()
@click.option("-f", "--file", "path", required=True,
              help="YAML with one or more resources: a file, a directory (its *.yaml/*.yml files), an "
                   "http(s):// URL, or - for stdin.")
@click.option("-v", "--var", "variables", multiple=True,
              help="key=value (or a=b,c=d) substituted for {{ key }} (repeatable).")
@click.option("--dry-run", is_flag=True, help="Validate on the server; write nothing.")
@api_url_option
def apply(path: str, variables: tuple[str, ...], dry_run: bool, api_url: str) -> None:
    """Create or update resources from YAML (multi-document, like kumactl apply)."""
    resources = decode_sources(read_sources(path), parse_vars(variables))
    apply_all(ApiClient(api_url), resources, dry_run)


def _kind_for(type_arg: str) -> tuple[Kind, bool]:
    if type_arg in LIST_TYPES:
        return LIST_TYPES[type_arg], True
    if type_arg in ONE_TYPES:
        return ONE_TYPES[type_arg], False
    allowed = ", ".join([*LIST_TYPES, *ONE_TYPES])
    raise click.BadParameter(f"unknown TYPE: {type_arg}. Allowed values: {allowed}", param_hint="TYPE")


def _path(kind: Kind, mesh: str, name: str | None) -> str:
    base = f"/meshes/{seg(mesh)}/{kind.ws_path}" if kind.mesh_scoped else "/meshes"
    return f"{base}/{seg(name)}" if name else base


@cli.command()
@click.argument("type_arg", metavar="TYPE", shell_complete=complete_type(singular_only=False))
@click.argument("name", required=False, shell_complete=complete_name(kind_from_type_argument))
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
    footer = pagination_footer(body.get("next")) if is_list else ""
    if footer:
        click.echo(footer)


@cli.command()
@click.argument("type_arg", metavar="TYPE", shell_complete=complete_type(singular_only=True))
@click.argument("name", shell_complete=complete_name(kind_from_type_argument))
@click.option("-m", "--mesh", default="default", show_default=True)
@api_url_option
def delete(type_arg: str, name: str, mesh: str, api_url: str) -> None:
    """Delete one resource (deleting a mesh deletes everything in it)."""
    if type_arg not in ONE_TYPES:
        allowed = ", ".join(ONE_TYPES)
        raise click.BadParameter(f"unknown TYPE: {type_arg}. Allowed values: {allowed}", param_hint="TYPE")
    kind = ONE_TYPES[type_arg]
    try:
        ApiClient(api_url).request("DELETE", _path(kind, mesh, name))
    except ApiFailure as exc:
        if exc.status == 404:
            raise click.ClickException(f'there is no {kind.value} with name "{name}"') from None
        raise
    click.echo(f'deleted {kind.value} "{name}"')


def main() -> None:
    cli()
