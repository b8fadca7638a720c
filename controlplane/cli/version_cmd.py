"""`controlplane version`: the CLI's version and the server's (its `GET /`), as `kumactl version` prints them.

kumactl warns when the two differ (`CheckCompatibility`); so do we, on stderr, with the arguments in the
right order (kumactl's message swaps the server's product and version). Unlike kumactl, a control plane that
cannot be reached is an error (one line, exit 1) after the client line, not a zero exit: a script that asks
for the server's version gets a status it can test.
"""

from __future__ import annotations

import json

import click

from controlplane import __version__
from controlplane.cli.client import ApiClient, ApiFailure, api_url_option
from controlplane.cli.output import dump

PRODUCT = "controlplane"


def mismatch_warning(server: dict[str, object]) -> str | None:
    """kumactl's warning when the server is another version or another product, else None."""
    version, product = server.get("version"), server.get("product")
    if version == __version__ and product == PRODUCT:
        return None
    return (f"WARNING: You are using {PRODUCT} version {__version__} for {PRODUCT}, but the server returned "
            f"version: {version} for {product}")


@click.command("version")
@click.option("-a", "--detailed", is_flag=True, help="Print the server's whole index document.")
@api_url_option
def version(detailed: bool, api_url: str) -> None:
    """Print the client and server versions (and warn when they differ)."""
    click.echo(f"Client: {PRODUCT} {__version__}")
    try:
        body = ApiClient(api_url).request("GET", "/").body
    except ApiFailure as exc:
        raise click.ClickException(f"Unable to retrieve server version: {exc.message}") from None
    if not isinstance(body, dict) or "version" not in body:
        raise click.ClickException(f"Unable to retrieve server version: {api_url}/ is not a control plane's index "
                                   f"({json.dumps(body)[:100]})")
    if detailed:
        click.echo(f"Server: {dump(body, 'json')}")
    else:
        click.echo(f"Server: {body.get('product')} {body.get('version')}")
    warning = mismatch_warning(body)
    if warning:
        click.echo(warning, err=True)
