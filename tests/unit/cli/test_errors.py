"""`to_click_exception`: what escapes a command becomes one line, exception groups included."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from controlplane.cli.errors import OneLineErrorGroup, to_click_exception
from controlplane.errors import StoreUnavailable


@pytest.mark.parametrize(("exc", "line"), [
    (StoreUnavailable("cannot open sqlite database /x.db: unable to open database file"),
     "cannot open sqlite database /x.db: unable to open database file"),
    (FileNotFoundError(2, "No such file or directory", "/etc/missing"), "/etc/missing: No such file or directory"),
    (ValueError("unsupported store URL 'mysql://x'\nsecond line"), "unsupported store URL 'mysql://x' second line"),
    (ExceptionGroup("unhandled errors in a TaskGroup", [ExceptionGroup("inner", [OSError(98, "Address in use")])]),
     "[Errno 98] Address in use"),
    (ExceptionGroup("two", [ValueError("a"), StoreUnavailable("b")]), "a; b"),
    (KeyError("x"), ("unexpected KeyError: 'x' (set CONTROLPLANE_TRACEBACK=1 to see the traceback, and please "
                    "report it)")),
    (ExceptionGroup("g", [click.ClickException("already one line")]), "already one line"),
], ids=["control-plane-error", "os-error-with-file", "multi-line", "nested-group", "two-in-group", "bug",
        "click-in-group"])
def test_one_line(exc: Exception, line: str) -> None:
    assert to_click_exception(exc).format_message() == line


def test_group_turns_a_subcommand_failure_into_click_exception() -> None:
    @click.group(cls=OneLineErrorGroup)
    def root() -> None:
        pass

    @root.command()
    def fail() -> None:
        raise StoreUnavailable("database is down")

    result = CliRunner().invoke(root, ["fail"])
    assert (result.exit_code, result.output) == (1, "Error: database is down\n")
