"""`controlplane config control-planes add|list|switch|remove` and `config view`: kumactl's commands, words
and table, over the per-user configuration file (`contexts.py`).

`add` checks, like kumactl, that the address answers as this control plane's API (`GET /` with the given CA
and token; `--skip-check` to skip) before anything is written, and makes the new control plane active.
Authentication: `--token-file F` stores the file's path (the token stays in its file), kumactl's
`--auth-type tokens --auth-conf token=T` stores the token itself (the configuration file is mode 0600).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from controlplane.cli import contexts
from controlplane.cli.client import ApiClient, ApiSettings, config_file_option, given_options, url_error
from controlplane.cli.output import plain_table
from controlplane.cli.sources import string_to_string
from controlplane.cli.version_cmd import PRODUCT

_EXISTING = click.Path(exists=True, dir_okay=False, path_type=Path)
NO_ACTIVE = ("there is no active Control Plane left. Use `controlplane config control-planes add` to add a "
             "Control Plane and make it active")


def _location() -> contexts.ConfigLocation:
    given = given_options().get("config_file")
    return contexts.locate(str(given) if given else None)


@click.group("config")
@config_file_option
def config() -> None:
    """Manage the CLI's known control planes (the configuration file, ~/.config/controlplane/config.yaml)."""


@config.command("view")
@config_file_option
def view() -> None:
    """Print the CLI configuration (tokens masked)."""
    loaded = contexts.load(_location())
    masked = replace(loaded, control_planes=tuple(contexts.without_secrets(cp) for cp in loaded.control_planes))
    click.echo(contexts.render(masked).rstrip("\n"))


@config.group("control-planes")
@config_file_option
def control_planes() -> None:
    """Manage known Control Planes."""


@control_planes.command("list")
@config_file_option
def list_control_planes() -> None:
    """List Control Planes (ACTIVE, NAME, ADDRESS)."""
    loaded = contexts.load(_location())
    rows = [["*" if cp.name == loaded.current else "", cp.name, cp.url] for cp in loaded.control_planes]
    click.echo(plain_table(["ACTIVE", "NAME", "ADDRESS"], rows))


def _check_address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    problem = url_error(value.strip())
    if problem:
        raise click.BadParameter(problem, ctx, param)
    return value.strip().rstrip("/")


@control_planes.command("add")
@click.option("--name", required=True, help="Reference name for the Control Plane.")
@click.option("--address", required=True, callback=_check_address,
              help="URL of the Control Plane API Server, e.g. http://localhost:5681 or https://cp.example:5682.")
@click.option("--ca-cert-file", "ca_file", type=_EXISTING, default=None,
              help="CA certificate that signs the API's certificate (only its path is stored).")
@click.option("--token-file", type=_EXISTING, default=None,
              help="File holding an admin token sent to this Control Plane (only its path is stored).")
@click.option("--auth-type", type=click.Choice([contexts.TOKENS_AUTH]), default=None,
              help='Authentication type (kumactl\'s "tokens"), with --auth-conf token=TOKEN.')
@click.option("--auth-conf", multiple=True, help="Authentication configuration, key=value (token=TOKEN).")
@click.option("--overwrite", is_flag=True, help="Replace an existing Control Plane of the same name.")
@click.option("--skip-check", is_flag=True, help="Do not check that the address answers as a control plane.")
@config_file_option
def add(name: str, address: str, ca_file: Path | None, token_file: Path | None, auth_type: str | None,
        auth_conf: tuple[str, ...], overwrite: bool, skip_check: bool) -> None:
    """Add a Control Plane and make it active."""
    control_plane = name
    token = _token_from_auth(auth_type, auth_conf)
    if token and token_file:
        raise click.UsageError("give the token either with --token-file or with --auth-conf token=..., not both")
    where = _location()
    loaded = contexts.load(where, creating=True)
    if loaded.find(control_plane) is not None and not overwrite:
        raise click.ClickException(f'Control Plane with name "{control_plane}" already exists. Use --overwrite to '
                                   "replace an existing one.")
    entry = contexts.ControlPlane(control_plane, address, str(ca_file or ""), str(token_file or ""), token)
    if not skip_check:
        _check_connection(entry)
    contexts.save(where, loaded.with_control_plane(entry))
    click.echo(f'added Control Plane "{control_plane}"')
    click.echo(f'switched active Control Plane to "{control_plane}"')


def _token_from_auth(auth_type: str | None, auth_conf: tuple[str, ...]) -> str:
    conf = string_to_string(auth_conf, "--auth-conf")
    if auth_type is None:
        if conf:
            raise click.UsageError("--auth-conf needs --auth-type tokens")
        return ""
    if not conf.get("token"):
        raise click.BadParameter("provide token=YOUR_TOKEN", param_hint="--auth-conf")
    return conf["token"]


def _check_connection(entry: contexts.ControlPlane) -> None:
    """kumactl's `ValidateCpCoordinates`: the address answers `GET /` as this product's API."""
    token = entry.token or (Path(entry.token_file).read_text(encoding="utf-8").strip() if entry.token_file else "")
    settings = ApiSettings(entry.url, token or None, Path(entry.ca_cert_file) if entry.ca_cert_file else None)
    try:
        body = ApiClient(settings=settings).request("GET", "/").body
    except click.ClickException as exc:
        raise click.ClickException(f"could not connect to the Control Plane API Server: {exc.format_message()}; "
                                   "use --skip-check to add it anyway") from None
    product = body.get("product") if isinstance(body, dict) else None
    if product != PRODUCT:
        raise click.ClickException(f"this CLI is for {PRODUCT} but the control plane you're connected to is "
                                   f"{product or 'something else'}. Please use the CLI for your control plane")


@control_planes.command("switch")
@click.option("--name", "control_plane", required=True, help="Reference name of the Control Plane.")
@config_file_option
def switch(control_plane: str) -> None:
    """Switch the active Control Plane."""
    where = _location()
    loaded = contexts.load(where)
    if loaded.find(control_plane) is None:
        raise click.ClickException(f'there is no Control Plane with name "{control_plane}"')
    contexts.save(where, replace(loaded, current=control_plane))
    click.echo(f'switched active Control Plane to "{control_plane}"')


@control_planes.command("remove")
@click.option("--name", "control_plane", required=True, help="Reference name of the Control Plane.")
@config_file_option
def remove(control_plane: str) -> None:
    """Remove a Control Plane (the first remaining one becomes active if it was)."""
    where = _location()
    loaded = contexts.load(where)
    if loaded.find(control_plane) is None:
        raise click.ClickException(f'there is no Control Plane with name "{control_plane}"')
    left = loaded.without(control_plane)
    contexts.save(where, left)
    click.echo(f'removed Control Plane "{control_plane}"')
    click.echo(f'switched active Control Plane to "{left.current}"' if left.current else NO_ACTIVE)
