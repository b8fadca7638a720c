"""The layering rules of docs/architecture.md, checked on the imports of every module of the package.

A rule names a set of modules (by path prefix) and the imports they must not have. Imports are read with
`ast` (module level and inside functions alike), so a rule cannot be dodged by importing late.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "controlplane"

IO: tuple[str, ...] = ("asyncio", "grpc", "aiohttp", "sqlite3", "asyncpg", "structlog", "logging", "time", "os",
                       "socket", "subprocess", "threading", "controlplane.store", "controlplane.api",
                       "controlplane.cli", "controlplane.demo", "controlplane.dataplane",
                       "controlplane.observability", "controlplane.runtime")
"""What pure code must not import: I/O, clocks, the environment, logging, and the layers above it."""

RULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("controlplane/resources/", IO + ("controlplane.xds.reconciler", "controlplane.xds.server"),
     "resources are pure: schema, codec, validation"),
    ("controlplane/tracing/", IO + ("controlplane.policies", "controlplane.xds.generate.context"),
     "backend modules are pure and know no policy"),
    ("controlplane/policies/", IO + ("controlplane.xds.generate.context", "controlplane.xds.snapshot",
                                     "controlplane.xds.cache"),
     "policy plugins are pure and generate nothing themselves"),
    ("controlplane/xds/generate/", IO + ("controlplane.xds.snapshot", "controlplane.xds.cache",
                                         "controlplane.xds.server", "controlplane.xds.reconciler"),
     "generation is pure: no store, no API, no snapshot cache"),
    ("controlplane/store/", ("controlplane.xds", "controlplane.policies", "controlplane.tracing",
                             "controlplane.api", "controlplane.cli"),
     "stores depend only on resources"),
    ("controlplane/xds/", ("controlplane.api", "controlplane.cli", "controlplane.demo", "controlplane.dataplane"),
     "the xDS side knows nothing of the API or the CLI"),
)

# A policy kind's api.py is imported by resources/registry.py: it must stay in the resource layer.
POLICY_API_ALLOWED = ("controlplane.errors", "controlplane.resources", "google.protobuf", "__future__", "typing", "copy",
                      "collections", "dataclasses", "datetime", "decimal", "enum", "math", "re")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "generated" not in p.parts)


@pytest.mark.parametrize(("prefix", "forbidden", "why"), RULES, ids=[rule[0] for rule in RULES])
def test_layer_imports(prefix: str, forbidden: tuple[str, ...], why: str) -> None:
    offenders = []
    for path in _modules():
        relative = path.relative_to(ROOT).as_posix()
        if not relative.startswith(prefix):
            continue
        for name in sorted(_imports(path)):
            if any(_matches(name, banned) for banned in forbidden):
                offenders.append(f"{relative} imports {name}")
    assert not offenders, f"{why}:\n" + "\n".join(offenders)


def test_policy_api_modules_stay_in_the_resource_layer() -> None:
    offenders = []
    for path in sorted((PACKAGE / "policies").glob("*/api.py")):
        for name in sorted(_imports(path)):
            if not any(_matches(name, allowed) for allowed in POLICY_API_ALLOWED):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "a policy's api.py may import only the resource layer:\n" + "\n".join(offenders)


def test_rules_see_the_modules_they_govern() -> None:
    """Guard against a rule that silently matches nothing after a move."""
    relative = [p.relative_to(ROOT).as_posix() for p in _modules()]
    for prefix, _, _ in RULES:
        assert any(r.startswith(prefix) for r in relative), prefix
    assert list((PACKAGE / "policies").glob("*/api.py"))
