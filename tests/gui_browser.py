"""A real headless browser for the GUI tests: Debian's `chromium`, driven by Playwright (never a downloaded
browser: `playwright install` needs the network, which CI does not have; `.ci/run` installs chromium).

Responsible for: finding the binary (skip locally with the reason when it is missing, fail under CI=true, as
the PostgreSQL tests do), the launch flags, and collecting what the page logs so tests can assert that no
script error and no console error happened. Must not: know any view (tests/gui/ does).

Playwright reports the browser's own network log lines ("Failed to load resource: ... 401") as console
errors too; a test that provokes one on purpose (a protected read without a token, a restart) names the
status or pattern it expects with `ConsoleLog.allow`, everything else fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest

CHROMIUM_ARGS: Final = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")
VIEWPORT: Final = {"width": 1280, "height": 860}


def chromium_path() -> str:
    """Debian's chromium, or skip (locally) / fail (CI=true) naming what is missing."""
    found = os.environ.get("CONTROLPLANE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found and Path(found).exists():
        return found
    reason = "chromium is not installed (apt-get install chromium; .ci/run installs it)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def artifacts_dir(default: Path) -> Path:
    """Where screenshots go: $GUI_ARTIFACTS (e.g. docs/gui, to refresh the README's), else `default`."""
    path = Path(os.environ.get("GUI_ARTIFACTS") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class ConsoleLog:
    """Console messages of type error/warning and uncaught page errors of one page."""

    entries: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda message: self._console(message.type, message.text))
        page.on("pageerror", lambda error: self.entries.append(f"pageerror: {error}"))

    def _console(self, kind: str, text: str) -> None:
        if kind in ("error", "warning", "assert"):
            self.entries.append(f"console.{kind}: {text}")

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.entries if not any(p.search(e) for p in self.allowed)]
