"""The one place where a failing CLI command becomes one line on stderr and a non-zero exit.

Commands raise `click.ClickException` for what they anticipate (a missing Dataplane, an API error with
Kuma's causes). Anything else that escapes a command (an `OSError` binding a port, the store factory's
`ValueError` for an unknown URL, `StoreUnavailable`, the `ExceptionGroup` a TaskGroup wraps them in) would
reach click's `main` as a Python traceback, which tells an operator nothing and buries the one line that
matters. `OneLineErrorGroup` is the root group: its `invoke` wraps every subcommand, so a new command is
covered without doing anything.

The translation keeps the exception's own message (they name the file, port or URL) on one line. A
programming error (anything that is neither a `ControlPlaneError`, `OSError` nor `ValueError`) is shown as
"unexpected TypeName: message"; `CONTROLPLANE_TRACEBACK=1` lets it through with its traceback for a bug
report. Must not: decide exit codes of commands that return one on purpose (`sys.exit`, click's `Exit`),
or swallow Ctrl-C (click turns KeyboardInterrupt into "Aborted!").
"""

from __future__ import annotations

import os
from typing import Any, Final

import click

from controlplane.errors import ControlPlaneError

TRACEBACK_ENV: Final = "CONTROLPLANE_TRACEBACK"
_EXPECTED: Final = (ControlPlaneError, OSError, ValueError)


class OneLineErrorGroup(click.Group):
    """A click group whose subcommands' unexpected exceptions end as `Error: <one line>`, exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # click shows these itself (a broken stdout pipe exits quietly, as `| head` expects)
        except Exception as exc:  # the process edge: every command's failure ends here
            if os.environ.get(TRACEBACK_ENV):
                raise
            raise to_click_exception(exc) from None


def to_click_exception(exc: BaseException) -> click.ClickException:
    """`exc` as a one-line ClickException; an exception group becomes the failures inside it."""
    if isinstance(exc, click.ClickException):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        leaves = _leaves(exc)
        if len(leaves) == 1:
            return to_click_exception(leaves[0])
        return click.ClickException("; ".join(_one_line(leaf) for leaf in leaves))
    return click.ClickException(_one_line(exc))


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, click.ClickException):
        text = exc.format_message()
    elif isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    if not isinstance(exc, (*_EXPECTED, click.ClickException)):
        text = (f"unexpected {type(exc).__name__}: {text} "
                f"(set {TRACEBACK_ENV}=1 to see the traceback, and please report it)")
    return text
