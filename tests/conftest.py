"""Shared pytest configuration."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files from the current output (same as UPDATE_GOLDEN_FILES=1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # tests/golden.py reads only the environment, so both switches end up in one place.
    if config.getoption("--update-golden"):
        os.environ["UPDATE_GOLDEN_FILES"] = "1"


# Real PostgreSQL for the postgres store tests (tests/postgres_fixture.py: postgres_server, postgres_url,
# own_postgres); importing it costs nothing until a test asks for one of its fixtures.
pytest_plugins = ("postgres_fixture",)
