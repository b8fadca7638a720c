"""`controlplane generate dataplane-token | admin-token` and `controlplane revoke dataplane-token | admin-token`.

The control plane issues tokens (it alone holds the signing key); these commands ask it through the API,
which needs an admin: from localhost that is the default, elsewhere pass an admin token (`--token`). The
token goes to stdout (or `-o FILE`, mode 0600), so `> token` or `$(...)` captures exactly the token.
Revoking takes the token's id (its `jti`) or the token file itself, whose id and kind are read without
verifying it (only the control plane can verify). With a token file, `revoke admin-token` refuses a dataplane
token and `revoke dataplane-token` an admin token, before anything is sent; a bare `--token-id` carries no
kind, so it is revoked as given. Revoking a token twice says so (and exits 0: the token is revoked either way).
"""

from __future__ import annotations

from pathlib import Path

import click
import jwt

from controlplane.auth.tokens import ADMIN, DATAPLANE
from controlplane.cli.client import ApiClient, ApiFailure, api_url_option
from controlplane.cli.output import emit_secret

ISSUE_ADMIN_TOKEN_HINT = (
    "hint: start `controlplane run --admin-token-file FILE` and pass --api-token-file FILE (or --token) to "
    "this command"
)
_OUTPUT = click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False, path_type=Path),
                       default=None, help="Write the token to this file (mode 0600) instead of stdout.")


@click.group()
def generate() -> None:
    """Generate tokens (issued and signed by the control plane)."""


@generate.command("dataplane-token")
@click.option("-m", "--mesh", required=True, help="Mesh of the Dataplane the token is bound to.")
@click.option("--name", required=True, help="Name of the Dataplane the token is bound to.")
@click.option("--valid-for", default="8760h", show_default=True, help="Lifetime: e.g. 24h, 30m, 7d, 1h30m.")
@_OUTPUT
@api_url_option
def dataplane_token(mesh: str, name: str, valid_for: str, output_path: Path | None, api_url: str) -> None:
    """A token for the Envoy of Dataplane NAME in MESH (`bootstrap --token-file`)."""
    body = ApiClient(api_url).request("POST", "/tokens/dataplane", {"mesh": mesh, "name": name,
                                                                     "validFor": valid_for}).body
    _emit(body, output_path)


@generate.command("admin-token")
@click.option("--valid-for", default="24h", show_default=True, help="Lifetime: e.g. 24h, 30m, 7d.")
@_OUTPUT
@api_url_option
def admin_token(valid_for: str, output_path: Path | None, api_url: str) -> None:
    """A token that allows API writes (`--token` / CONTROLPLANE_API_TOKEN) from anywhere."""
    try:
        body = ApiClient(api_url).request("POST", "/tokens/admin", {"validFor": valid_for}).body
    except ApiFailure as exc:
        if exc.status not in (401, 403):
            raise
        # The server's details and the generic hint both say "get one with generate admin-token": a circle.
        title = exc.body.get("title") if isinstance(exc.body, dict) else None
        raise click.ClickException(
            f"{title or f'HTTP {exc.status}'}: issuing an admin token takes an admin token when the control plane "
            f"runs with --no-api-localhost-is-admin or is not on this host\n{ISSUE_ADMIN_TOKEN_HINT}") from None
    _emit(body, output_path)


def _emit(token: object, output_path: Path | None) -> None:
    if not isinstance(token, str) or not token:
        raise click.ClickException(f"unexpected response from the control plane: {token!r}")
    emit_secret(token + "\n", output_path, "the token")


@click.group()
def revoke() -> None:
    """Revoke tokens: a revoked token is refused from then on."""


def _revoke_command(kind: str) -> click.Command:
    @click.option("--token-id", default=None, help="The token's id (its jti claim).")
    @click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                  help="The token itself; its id is read from it.")
    @api_url_option
    def command(token_id: str | None, token_file: Path | None, api_url: str) -> None:
        if (token_id is None) == (token_file is None):
            raise click.UsageError("pass exactly one of --token-id and --token-file")
        if token_file is not None:
            token_id = _id_of_kind(token_file.read_text(encoding="utf-8").strip(), kind, token_file)
        body = ApiClient(api_url).request("POST", "/tokens/revocations", {"id": token_id}).body
        if isinstance(body, dict) and body.get("alreadyRevoked"):
            click.echo(f"token {token_id} was already revoked")
        else:
            click.echo(f"revoked token {token_id}")

    command.__doc__ = f"Revoke a {kind} token by id or from the token file."
    return click.command(f"{kind}-token")(command)


def token_id_of(token: str) -> str:
    """The `jti` of a token, read without verifying it (only the control plane can verify)."""
    jti = _claims_of(token).get("jti")
    if not isinstance(jti, str):
        raise click.ClickException("the token has no id (jti claim)")
    return jti


def _id_of_kind(token: str, kind: str, source: Path) -> str:
    """The token's id, after checking it is a `kind` token (its `sub`), so the wrong command refuses it."""
    subject = _claims_of(token).get("sub")
    if subject != kind:
        raise click.ClickException(f"{source} holds {_a(subject)} token, not {_a(kind)} token; "
                                   f"use `controlplane revoke {subject}-token`" if subject in (ADMIN, DATAPLANE)
                                   else f"{source} is not a control plane token (sub={subject!r})")
    return token_id_of(token)


def _a(kind: object) -> str:
    return f"an {kind}" if str(kind)[:1] in "aeiou" else f"a {kind}"


def _claims_of(token: str) -> dict[str, object]:
    try:
        claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise click.ClickException(f"not a token: {exc}") from None
    return claims


revoke.add_command(_revoke_command("dataplane"))
revoke.add_command(_revoke_command("admin"))
