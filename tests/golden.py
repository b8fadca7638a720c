"""Golden-file assertions for generated Envoy configuration (STYLE §4.8).

`assert_golden(actual, path)` renders a protobuf message or a ResourceSet with json_format.MessageToDict
(camelCase, `@type` on Any), sorts keys, dumps YAML and compares with the file. Set UPDATE_GOLDEN_FILES=1
(or run pytest with --update-golden) to rewrite; empty output means the golden file must not exist.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message

REGENERATE = "UPDATE_GOLDEN_FILES=1 python -m pytest {test} (or: pytest --update-golden)"


def render(actual: Message | Mapping[str, Mapping[str, Message]]) -> Any:
    """Plain data for a message, or {type_url: {name: message}} for a ResourceSet-like mapping."""
    if isinstance(actual, Message):
        return _plain(json_format.MessageToDict(actual))
    return {
        type_url: {name: _plain(json_format.MessageToDict(message)) for name, message in by_name.items()}
        for type_url, by_name in actual.items()
    }


def _plain(value: Any) -> Any:
    """MessageToDict returns OrderedDicts for Any payloads; safe_dump wants plain dicts and lists."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True, width=120)


def update_requested() -> bool:
    return os.environ.get("UPDATE_GOLDEN_FILES", "").lower() in ("1", "true", "yes")


def assert_golden(actual: Message | Mapping[str, Mapping[str, Message]], path: Path | str) -> None:
    path = Path(path)
    data = render(actual)
    text = to_yaml(data) if data else ""
    if update_requested():
        _write(path, text)
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0] or "tests/"
    hint = REGENERATE.format(test=test)
    if not text:
        assert not path.exists(), f"output is empty but golden {path} exists; regenerate with: {hint}"
        return
    assert path.exists(), f"golden file {path} is missing; create it with: {hint}"
    expected = yaml.safe_load(path.read_text())
    if expected != data:
        diff = _diff(path.read_text(), text, path)
        raise AssertionError(
            f"{path} differs from the generated output; if intended, regenerate with: {hint}\n{diff}"
        )


def _write(path: Path, text: str) -> None:
    if not text:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _diff(expected: str, actual: str, path: Path) -> str:
    import difflib

    lines = difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True), str(path), "generated"
    )
    return "".join(lines)
