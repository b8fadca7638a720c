"""Fixtures of the browser tests: one Chromium for the package (tests/gui_browser.py), a fresh browser context
and page per test whose console is checked at the end, and where screenshots go.

Control planes are real `controlplane run` processes (tests/cli/cli_helpers.py), one per module where the
module's tests can share it; fake proxies (fleet.py) give them connected streams and span flows.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gui_browser import CHROMIUM_ARGS, VIEWPORT, ConsoleLog, artifacts_dir, chromium_path
from playwright.sync_api import Browser, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))  # cli_helpers: the real console script
from cli_helpers import start_server

from .dataset import Plane, populate


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="package")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    """The shared control plane of dataset.py (memory store), with its fake proxies."""
    server = start_server("memory", tmp_path_factory.mktemp("gui-plane") / "controlplane.log")
    try:
        plane = populate(server)
        try:
            yield plane
        finally:
            plane.fleet.close()
    finally:
        server.stop()


@pytest.fixture(scope="package")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return artifacts_dir(tmp_path_factory.getbasetemp() / "gui-artifacts")


class Tab:
    """A page and its console log; `shot(name)` writes `<artifacts>/<name>.png`."""

    def __init__(self, page: Page, console: ConsoleLog, artifacts: Path) -> None:
        self.page, self.console, self._artifacts = page, console, artifacts

    def shot(self, name: str) -> Path:
        path = self._artifacts / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def __getattr__(self, name: str) -> Any:
        return getattr(self.page, name)


@pytest.fixture
def tab(browser: Browser, artifacts: Path) -> Iterator[Tab]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    console = ConsoleLog()
    console.attach(page)
    try:
        yield Tab(page, console, artifacts)
    finally:
        context.close()
    assert not console.unexpected(), "the page logged errors:\n" + "\n".join(console.unexpected())
