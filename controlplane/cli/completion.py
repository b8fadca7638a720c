"""`controlplane completion bash|zsh|fish`, and what completes: subcommands and options (click does those),
resource types (`get <TAB>`), and resource names asked from the API (`get mesh <TAB>`,
`inspect dataplane <TAB>`, `delete traffic-trace <TAB> -m demo`).

The printed script is click's: the shell calls `controlplane` back with `_CONTROLPLANE_COMPLETE` set, and
click answers with the candidates of the word being completed, so completion always matches the installed
version. Name completion reads the API the command line points at (its `--api-url`/`--config-file`, else the
environment and the active control plane, as the command itself would), with a short timeout; any failure
(no control plane running, a 404) completes nothing rather than printing an error into the user's prompt.
Must not: write anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import click
from click.shell_completion import CompletionItem, get_completion_class

from controlplane.cli.client import ApiClient, ApiSettings, seg, settings_for
from controlplane.resources.kind import Kind
from controlplane.resources.registry import KINDS

SHELLS: Final = ("bash", "zsh", "fish")
PROG: Final = "controlplane"
COMPLETE_VAR: Final = "_CONTROLPLANE_COMPLETE"
NAME_TIMEOUT_S: Final = 3.0
MAX_NAMES: Final = 1000
LIST_TYPES: Final = {kind.plural: kind for kind in KINDS}
ONE_TYPES: Final = {kind.singular: kind for kind in KINDS}


def complete_type(singular_only: bool) -> Callable[[click.Context, click.Parameter, str], list[CompletionItem]]:
    """TYPE of `get` (lists and single resources) or `delete` (single resources)."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        names = list(ONE_TYPES) if singular_only else [*LIST_TYPES, *ONE_TYPES]
        return [CompletionItem(name) for name in names if name.startswith(incomplete)]

    return complete


def complete_name(kind_of: Callable[[click.Context], Kind | None]) -> Callable[
        [click.Context, click.Parameter, str], list[CompletionItem]]:
    """NAME of one resource of the kind `kind_of` finds on the command line so far."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        kind = kind_of(ctx)
        if kind is None:
            return []
        mesh = str(ctx.params.get("mesh") or "default")
        try:
            names = resource_names(settings_for(ctx), kind, mesh)
        except (click.ClickException, OSError, ValueError):
            return []
        return [CompletionItem(name) for name in names if name.startswith(incomplete)]

    return complete


def kind_from_type_argument(ctx: click.Context) -> Kind | None:
    """`get mesh <TAB>` / `delete traffic-trace <TAB>`: the singular TYPE given before NAME."""
    return ONE_TYPES.get(str(ctx.params.get("type_arg") or ""))


def resource_names(settings: ApiSettings, kind: Kind, mesh: str) -> list[str]:
    path = f"/meshes/{seg(mesh)}/{kind.ws_path}" if kind.mesh_scoped else "/meshes"
    body = ApiClient(settings=settings, timeout_s=NAME_TIMEOUT_S).request("GET", f"{path}?size={MAX_NAMES}").body
    items = body.get("items") if isinstance(body, dict) else None
    return [str(item["name"]) for item in items or [] if isinstance(item, dict) and "name" in item]


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    \b
    bash:  source <(controlplane completion bash)       (or save it to ~/.controlplane-completion and source that)
    zsh:   controlplane completion zsh > "${fpath[1]}/_controlplane"
    fish:  controlplane completion fish > ~/.config/fish/completions/controlplane.fish
    """
    root = ctx.find_root().command
    shell_class = get_completion_class(shell)
    assert shell_class is not None  # SHELLS are the ones click knows
    click.echo(shell_class(root, {}, PROG, COMPLETE_VAR).source())
